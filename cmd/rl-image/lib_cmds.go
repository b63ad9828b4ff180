package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/rootfs/imagelib"
)

// resolve is `rl-image __resolve NAME` (cli.ResolveArg): rl-core's
// question for what a short name stands for (rootfs.Library.Candidates),
// when its cache has no answer. It writes a cli.Resolved as JSON on stdout.
func resolve(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "rl: usage: rl-image __resolve NAME")
		return initproc.ExitRlError
	}
	cands, cacheable, err := imagelib.Candidates(args[0])
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(cli.Resolved{Candidates: cands, Cacheable: cacheable})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rl:", err)
		return initproc.ExitRlError
	}
	return 0
}

// runImageConfig is `rl-image __image-config ID`: rl-core's question for
// the OCI config of an image whose manifest it does not read itself
// (rootfs.Library.Config). It writes the config as JSON on stdout.
func runImageConfig(c *cli.CLI, s *session.Session) error {
	img, err := s.Store.Image(c.ImageConfig.ID)
	if err != nil {
		return err
	}
	cfg, err := imagelib.Config(s.Ctx, s.Store, img)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(cfg)
}
