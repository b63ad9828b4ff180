// Package imagelib is what rootfs needs from the image library
// (go.podman.io/image/v5) beyond the store: what a short name stands for,
// and the config of an image whose manifest rootfs does not read itself. It
// is linked by rl-image only: the library's package set-up (the reference
// grammar's regular expressions, ~0.6 ms) would otherwise be paid by every
// rl-core start, on rl run's critical path. rl-core asks rl-image for these
// (rootfs.Library), and keeps short names' answers in its run dir.
package imagelib

import (
	"context"
	"fmt"
	"slices"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rlcontainers/rl/rootfs"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/configfile"
)

// Library is the image library's side of rootfs.Library.
var Library = rootfs.Library{Candidates: Candidates, Config: Config}

// Candidates are the names a short name stands for in the store, in the
// order a pull tries them: its alias, else localhost/NAME and NAME at each
// unqualified-search registry; then docker.io's reading of it. A name that
// is not short stands for itself (with :latest when untagged). cacheable
// says whether the files rootfs keys its cache with are the ones the
// library read (its search paths are registries.conf's as configfile finds
// them).
func Candidates(name string) (cands []string, cacheable bool, err error) {
	sys := &types.SystemContext{}
	named, err := shortnames.ResolveLocally(sys, name)
	if err != nil {
		return nil, false, err
	}
	if _, err := sysregistriesv2.UnqualifiedSearchRegistries(sys); err == nil && shortnames.IsShortName(name) {
		if n, err := reference.ParseNormalizedNamed(name); err == nil {
			named = append(named, reference.TagNameOnly(n))
		}
	}
	cands = make([]string, len(named))
	for i, n := range named {
		cands[i] = n.String()
	}
	paths, err := configfile.GetSearchPaths(rootfs.RegistriesConfig())
	cacheable = err == nil && fmt.Sprintf("%q", slices.Concat(paths.MainFiles, paths.DropInDirectories)) == sysregistriesv2.ConfigurationSourceDescription(nil)
	return cands, cacheable, nil
}

// Config reads an image's OCI config as the library does: any manifest
// format it knows (schema1 included).
func Config(ctx context.Context, store storage.Store, img *storage.Image) (*imgspecv1.Image, error) {
	ref, err := istorage.Transport.NewStoreReference(store, nil, img.ID)
	if err != nil {
		return nil, err
	}
	image, err := ref.NewImage(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", img.ID[:12], err)
	}
	defer image.Close()
	cfg, err := image.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the config of image %s: %w", img.ID[:12], err)
	}
	return cfg, nil
}
