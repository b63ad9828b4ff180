package rootfs

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// ErrImageUnknown is returned when no local image matches a name.
var ErrImageUnknown = errors.New("no such image")

// LookupImage finds a local image by full name, short name (resolved as a
// pull would), id or unique id prefix.
func LookupImage(store storage.Store, name string) (*storage.Image, error) {
	if img, err := store.Image(name); err == nil {
		return img, nil
	}
	candidates, err := cachedCandidates(filepath.Join(store.RunRoot(), "rl", shortNameCacheFile), name)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %w", name, err)
	}
	for _, c := range candidates {
		if img, err := store.Image(c); err == nil {
			return img, nil
		}
	}
	return nil, fmt.Errorf("%w %q: see rl images", ErrImageUnknown, name)
}

// localCandidates are the names a short name stands for in the store, in
// the order a pull tries them: its alias, else localhost/NAME and NAME at
// each unqualified-search registry; then docker.io's reading of it. A name
// that is not short stands for itself (with :latest when untagged).
func localCandidates(name string) ([]string, error) {
	sys := &types.SystemContext{}
	named, err := shortnames.ResolveLocally(sys, name)
	if err != nil {
		return nil, err
	}
	if _, err := sysregistriesv2.UnqualifiedSearchRegistries(sys); err == nil && shortnames.IsShortName(name) {
		if n, err := reference.ParseNormalizedNamed(name); err == nil {
			named = append(named, reference.TagNameOnly(n))
		}
	}
	out := make([]string, len(named))
	for i, n := range named {
		out[i] = n.String()
	}
	return out, nil
}

// RemoveImage deletes an image; it refuses while containers use it unless
// force, in which case those containers go first.
func RemoveImage(store storage.Store, name string, force bool) (string, error) {
	img, err := LookupImage(store, name)
	if err != nil {
		return "", err
	}
	containers, err := store.Containers()
	if err != nil {
		return "", err
	}
	var users []string
	for _, c := range containers {
		if c.ImageID == img.ID {
			users = append(users, c.ID[:12])
		}
	}
	if len(users) > 0 && !force {
		return "", fmt.Errorf("image %s is in use by container(s) %s: remove them first (rl rm) or use rmi -f", name, strings.Join(users, ", "))
	}
	for _, id := range users {
		if err := store.DeleteContainer(id); err != nil {
			return "", fmt.Errorf("removing container %s: %w", id, err)
		}
	}
	if _, err := store.DeleteImage(img.ID, true); err != nil {
		return "", fmt.Errorf("removing image %s: %w", name, err)
	}
	return img.ID, nil
}
