package main

import (
	"fmt"

	"github.com/rlcontainers/rl/rootfs"
	"golang.org/x/sys/unix"
)

// RmCmd is `rl rm`.
type RmCmd struct {
	Force      bool     `short:"f" help:"Kill running containers first."`
	Containers []string `arg:"" help:"Containers to remove (names, ids or id prefixes)."`
}

func (c *RmCmd) Run(g *Globals) error {
	s, err := g.open()
	if err != nil {
		return err
	}
	defer s.close()
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		} else {
			report(err)
		}
	}
	for _, ref := range c.Containers {
		ctr, err := rootfs.LookupContainer(s.store, ref)
		if err != nil {
			fail(err)
			continue
		}
		st := rootfs.ReadState(s.store, ctr.ID)
		if st.Status == "running" {
			if !c.Force {
				fail(errorf("container %s is running: stop it first, or use rl rm -f", ref))
				continue
			}
			_ = unix.Kill(st.Pid, unix.SIGKILL)
		}
		if _, err := s.store.Unmount(ctr.ID, true); err != nil {
			fail(fmt.Errorf("unmounting %s: %w", ref, err))
			continue
		}
		if err := s.store.DeleteContainer(ctr.ID); err != nil {
			fail(fmt.Errorf("removing %s: %w", ref, err))
			continue
		}
		fmt.Println(ctr.ID)
	}
	return firstErr
}
