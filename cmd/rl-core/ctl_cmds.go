package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/container/ctl"
	"github.com/rlcontainers/rl/rootfs"
)

// exec, stop, kill and wait reach rl-core when the host-side rl found no
// running container by that reference: here the store tells unknown from
// stopped. A container that is running after all (it was starting, or its
// supervisor serves another run dir: another XDG_RUNTIME_DIR, after su or
// in cron) is handled through its socket, where its state says it is.

// ctlRoot is the run dir of a running container's control socket.
func ctlRoot(s *session.Session, st *rootfs.State) string {
	if st.RunRoot != "" {
		return st.RunRoot
	}
	return s.Paths.RunRoot
}

func runExec(all *cli.CLI, s *session.Session) error {
	e := all.Exec
	id, st, err := runningID(s, e.Container)
	if err != nil {
		return err
	}
	preserved, err := preservedFiles(e.PreserveFDs)
	if err != nil {
		return err
	}
	code, err := ctl.RunExec(ctlRoot(s, st), id, ctl.Exec{
		Args: e.Args, Env: e.EnvList, User: e.User, Workdir: e.Workdir,
		TTY: e.TTY, Interactive: e.Interactive, Detach: e.Detach,
	}, os.Stdin, os.Stdout, os.Stderr, preserved)
	if errors.Is(err, ctl.ErrNotRunning) {
		return notRunning(e.Container)
	}
	if err != nil {
		return err
	}
	return cli.ExitCode(code)
}

func runStop(all *cli.CLI, s *session.Session) error {
	return eachContainer(s, all.Stop.Containers, func(ref string, c *rootfs.State, id string) error {
		if c.Status == "running" {
			timeout := -1 // the container's --stop-timeout
			if all.Stop.Time != nil {
				timeout = *all.Stop.Time
			}
			if _, err := ctl.Stop(ctlRoot(s, c), id, timeout); err != nil && !errors.Is(err, ctl.ErrNotRunning) {
				return err
			}
		}
		// Stopping a stopped container is no error, as in podman.
		fmt.Println(ref)
		return nil
	})
}

func runKill(all *cli.CLI, s *session.Session) error {
	sig, err := ctl.ParseSignal(all.Kill.Signal)
	if err != nil {
		return err
	}
	return eachContainer(s, all.Kill.Containers, func(ref string, c *rootfs.State, id string) error {
		if c.Status != "running" {
			return notRunning(ref)
		}
		if err := ctl.Kill(ctlRoot(s, c), id, sig); err != nil {
			if errors.Is(err, ctl.ErrNotRunning) {
				return notRunning(ref)
			}
			return err
		}
		fmt.Println(ref)
		return nil
	})
}

func runWait(all *cli.CLI, s *session.Session) error {
	return eachContainer(s, all.Wait.Containers, func(ref string, c *rootfs.State, id string) error {
		code := c.ExitCode
		if c.Status == "running" {
			var err error
			if code, err = ctl.Wait(ctlRoot(s, c), id); err != nil {
				if !errors.Is(err, ctl.ErrNotRunning) {
					return err
				}
				code = rootfs.ReadState(s.Store, id).ExitCode
			}
		}
		fmt.Println(code)
		return nil
	})
}

// eachContainer looks each reference up in the store and runs fn with its
// state; failures after the first are reported as they come.
func eachContainer(s *session.Session, refs []string, fn func(ref string, st *rootfs.State, id string) error) error {
	return cli.Each(refs, refs, func(ref, _ string) error {
		c, err := rootfs.LookupContainer(s.Store, ref)
		if err != nil {
			return err
		}
		st := rootfs.ReadState(s.Store, c.ID)
		return fn(ref, &st, c.ID)
	})
}

func runningID(s *session.Session, ref string) (string, *rootfs.State, error) {
	c, err := rootfs.LookupContainer(s.Store, ref)
	if err != nil {
		return "", nil, err
	}
	st := rootfs.ReadState(s.Store, c.ID)
	if st.Status != "running" {
		return "", nil, notRunning(ref)
	}
	return c.ID, &st, nil
}

func notRunning(ref string) error {
	return fmt.Errorf("container %s is not running: start it first (rl start %s)", ref, ref)
}

func runAttach(all *cli.CLI, s *session.Session) error {
	ref := all.Attach.Container
	id, st, err := runningID(s, ref)
	if err != nil {
		return err
	}
	code, detached, err := ctl.Attach(ctlRoot(s, st), id, os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, ctl.ErrNotRunning) {
		return notRunning(ref)
	}
	if err != nil || detached || code == 0 {
		return err
	}
	return cli.ExitCode(code)
}
