package main

import (
	"fmt"
	"os"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/rootfs"
	"golang.org/x/sys/unix"
)

func runRm(all *cli.CLI, s *session.Session) error {
	c := &all.Rm
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		} else {
			cli.Report(os.Stderr, err)
		}
	}
	for _, ref := range c.Containers {
		ctr, err := rootfs.LookupContainer(s.Store, ref)
		if err != nil {
			fail(err)
			continue
		}
		st := rootfs.ReadState(s.Store, ctr.ID)
		if st.Status == "running" {
			if !c.Force {
				fail(fmt.Errorf("container %s is running: stop it first, or use rl rm -f", ref))
				continue
			}
			_ = unix.Kill(st.Pid, unix.SIGKILL)
		}
		if _, err := s.Store.Unmount(ctr.ID, true); err != nil {
			fail(fmt.Errorf("unmounting %s: %w", ref, err))
			continue
		}
		if err := s.Store.DeleteContainer(ctr.ID); err != nil {
			fail(fmt.Errorf("removing %s: %w", ref, err))
			continue
		}
		fmt.Println(ctr.ID)
	}
	return firstErr
}
