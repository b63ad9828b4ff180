package main

import (
	"fmt"
	"os"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/rootfs/pull"
	"golang.org/x/term"
)

// runPull is `rl pull`: progress bars on a terminal, quiet otherwise or with -q.
func runPull(c *cli.CLI, s *session.Session) error {
	s.Interruptible()
	o := pull.Options{TLSVerify: c.Pull.TLSVerify, AuthFile: c.Pull.Authfile}
	if !c.Pull.Quiet && term.IsTerminal(int(os.Stderr.Fd())) {
		o.Progress = os.Stderr
	}
	img, err := pull.Pull(s.Ctx, s.Store, c.Pull.Image, o)
	if err != nil {
		return err
	}
	fmt.Println(img.ID)
	return nil
}
