package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/internal/helper"
	"github.com/rlcontainers/rl/rootfs"
	"go.podman.io/storage"
)

// imageLibrary asks rl-image what only the image library knows
// (rootfs.Library): rl-core does not link the library, whose package
// set-up alone was ~0.6 ms of every rl-core start. Both questions are rare:
// a short name the run dir's cache has no answer for, and (set by rl run,
// which knows the store's flags: withImageConfig) an image whose manifest
// rootfs does not read itself.
func imageLibrary() rootfs.Library {
	return rootfs.Library{Candidates: func(name string) ([]string, bool, error) {
		out, err := helper.Output(context.Background(), imageHelper(), []string{cli.ResolveArg, name}, nil)
		if err != nil {
			return nil, false, err
		}
		var r cli.Resolved
		if err := json.Unmarshal(out, &r); err != nil {
			return nil, false, fmt.Errorf("%s %s: %w: reinstall rl (make install)", cli.Image, cli.ResolveArg, err)
		}
		return r.Candidates, r.Cacheable, nil
	}}
}

// withImageConfig adds the image config question to lib, for the store c's
// global flags name.
func withImageConfig(lib rootfs.Library, c *cli.CLI) rootfs.Library {
	lib.Config = func(ctx context.Context, _ storage.Store, img *storage.Image) (*imgspecv1.Image, error) {
		args := append(append([]string{}, c.Globals.Args()...), cli.ImageConfigCommand, img.ID)
		out, err := helper.Output(ctx, imageHelper(), args, nil)
		if err != nil {
			return nil, err
		}
		var cfg imgspecv1.Image
		if err := json.Unmarshal(out, &cfg); err != nil {
			return nil, fmt.Errorf("%s %s: %w: reinstall rl (make install)", cli.Image, cli.ImageConfigCommand, err)
		}
		return &cfg, nil
	}
	return lib
}

// imageHelper is rl-image's path.
func imageHelper() string { return filepath.Join(os.Getenv(cli.EnvLibexec), cli.Image) }
