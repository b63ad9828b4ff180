package main

import (
	"fmt"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/container"
	"github.com/rlcontainers/rl/rootfs"
)

// runStart starts one stopped container: detached (printing its name), or
// with -a attached until it exits. This process becomes its supervisor, so
// it starts one container; more are started by further rl-core processes.
func runStart(all *cli.CLI, s *session.Session) error {
	if len(all.Start.Containers) != 1 {
		return fmt.Errorf("rl-core starts one container at a time (rl starts one rl-core for each)")
	}
	ref := all.Start.Containers[0]
	c, err := rootfs.LookupContainer(s.Store, ref)
	if err != nil {
		return err
	}
	rec := rootfs.ReadRecord(c)
	mode := container.Mode{Attach: all.Start.Attach, Detached: func(string) error { return s.Detach(ref) }}
	code, err := container.Supervise(s.Ctx, runtime(all, s), c, rec, mode)
	if err != nil {
		return err
	}
	if all.Start.Attach {
		return cli.ExitCode(code)
	}
	return nil
}
