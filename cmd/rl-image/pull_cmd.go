package main

import (
	"fmt"
	"os"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/rootfs/pull"
)

func runPull(c *cli.CLI, s *session.Session) error {
	o := pull.Options{TLSVerify: c.Pull.TLSVerify, AuthFile: c.Pull.Authfile}
	if !c.Pull.Quiet {
		o.Progress = os.Stderr
	}
	img, err := pull.Pull(s.Ctx, s.Store, c.Pull.Image, o)
	if err != nil {
		return err
	}
	fmt.Println(img.ID)
	return nil
}
