package main

import (
	"fmt"
	"io"
	"os"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/rootfs/pull"
	"golang.org/x/term"
)

func runLoad(c *cli.CLI, s *session.Session) error {
	s.Interruptible()
	var progress io.Writer
	if !c.Load.Quiet && term.IsTerminal(int(os.Stderr.Fd())) {
		progress = os.Stderr
	}
	names, err := pull.Load(s.Ctx, s.Store, c.Load.Input, progress)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Println("Loaded image:", n)
	}
	return nil
}
