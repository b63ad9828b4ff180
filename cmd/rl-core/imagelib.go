package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rlcontainers/rl/cmd/internal/cli"
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
		out, err := imageHelper(context.Background(), []string{cli.ResolveArg, name}, true)
		if err != nil {
			return nil, false, err
		}
		var r cli.Resolved
		if err := json.Unmarshal(out, &r); err != nil {
			return nil, false, fmt.Errorf("%s %s: %w", cli.Image, cli.ResolveArg, err)
		}
		return r.Candidates, r.Cacheable, nil
	}}
}

// withImageConfig adds the image config question to lib, for the store c's
// global flags name.
func withImageConfig(lib rootfs.Library, c *cli.CLI) rootfs.Library {
	lib.Config = func(ctx context.Context, _ storage.Store, img *storage.Image) (*imgspecv1.Image, error) {
		args := append(append([]string{}, c.Globals.Args()...), cli.ImageConfigCommand, img.ID)
		out, err := imageHelper(ctx, args, false)
		if err != nil {
			return nil, err
		}
		var cfg imgspecv1.Image
		if err := json.Unmarshal(out, &cfg); err != nil {
			return nil, fmt.Errorf("%s %s: %w", cli.Image, cli.ImageConfigCommand, err)
		}
		return &cfg, nil
	}
	return lib
}

// imageHelper runs rl-image with args in this user namespace and returns
// what it wrote on stdout. Its error line becomes the error (quiet), or
// it reaches the user's stderr itself, and its exit code ours.
func imageHelper(ctx context.Context, args []string, quiet bool) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(os.Getenv(cli.EnvLibexec), cli.Image))
	cmd.Args = append([]string{"rl"}, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if quiet {
		cmd.Stderr = &stderr
	}
	// A killed supervisor must not leave it running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if msg := strings.TrimPrefix(strings.TrimSpace(stderr.String()), "rl: "); quiet && msg != "" {
			return nil, errors.New(msg)
		}
		if errors.As(err, &ee) && !quiet {
			return nil, cli.ExitCode(ee.ExitCode())
		}
		return nil, fmt.Errorf("running %s: %w", cli.Image, err)
	}
	return stdout.Bytes(), nil
}
