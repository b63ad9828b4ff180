package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/alecthomas/kong"
	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/container/ctl"
	"github.com/rlcontainers/rl/rootfs/paths"
)

// fastPath runs exec, attach, stop, kill and wait against running
// containers straight through their control sockets, without a user
// namespace or the store. A container that is not running (or unknown) is
// rl-core's to handle, with the store: fallback runs one command there.
// handled=false hands the whole command over.
func fastPath(c *cli.CLI, kctx *kong.Context, fallback func(args ...string) error) (handled bool, err error) {
	cmd := cli.Command(kctx)
	switch cmd {
	case "exec", "attach", "stop", "kill", "wait":
	default:
		return false, nil
	}
	p, err := c.Globals.Paths()
	if err != nil {
		return false, err
	}
	// Another store's run dir must not lead to its containers.
	if err := paths.CheckRunRoot(p); err != nil {
		return true, err
	}
	switch cmd {
	case "exec", "attach":
		ref := c.Exec.Container
		if cmd == "attach" {
			ref = c.Attach.Container
		}
		id, err := ctl.Resolve(p.RunRoot, ref)
		if errors.Is(err, ctl.ErrNotRunning) {
			return false, nil
		}
		if err != nil {
			return true, err
		}
		if cmd == "attach" {
			return true, attach(p.RunRoot, ref, id)
		}
		return true, execIn(c, p.RunRoot, id)
	}
	var refs []string
	var op func(ref, id string) error
	switch cmd {
	case "stop":
		refs = c.Stop.Containers
		timeout := -1 // the container's --stop-timeout
		if c.Stop.Time != nil {
			timeout = *c.Stop.Time
		}
		op = func(ref, id string) error {
			_, err := ctl.Stop(p.RunRoot, id, timeout)
			if err == nil {
				fmt.Println(ref)
			}
			return err
		}
	case "kill":
		refs = c.Kill.Containers
		sig, _ := ctl.ParseSignal(c.Kill.Signal)
		op = func(ref, id string) error {
			err := ctl.Kill(p.RunRoot, id, sig)
			if err == nil {
				fmt.Println(ref)
			}
			return err
		}
	case "wait":
		refs = c.Wait.Containers
		op = func(ref, id string) error {
			code, err := ctl.Wait(p.RunRoot, id)
			if err == nil {
				fmt.Println(code)
			}
			return err
		}
	}
	return true, cli.Each(refs, refs, func(ref, _ string) error {
		id, err := ctl.Resolve(p.RunRoot, ref)
		if err == nil {
			err = op(ref, id)
		}
		if errors.Is(err, ctl.ErrNotRunning) {
			// Not running, or it exited meanwhile: the store knows.
			args := append(c.Globals.Args(), cmd)
			switch {
			case cmd == "stop" && c.Stop.Time != nil:
				args = append(args, "-t", strconv.Itoa(*c.Stop.Time))
			case cmd == "kill":
				args = append(args, "-s", c.Kill.Signal)
			}
			return fallback(append(args, "--", ref)...)
		}
		return err
	})
}

// restart is rl restart: each container is stopped through its control
// socket (when it runs: a stopped one is just started, as podman does),
// then started by an rl-core of its own, which prints its name. The stop
// answers once the workload exited; the new supervisor takes the
// container's lock, and so its ports, after the old one let them go.
func restart(c *cli.CLI, self, libexec string) error {
	p, err := c.Globals.Paths()
	if err != nil {
		return err
	}
	if err := paths.CheckRunRoot(p); err != nil {
		return err
	}
	timeout := -1 // the container's --stop-timeout
	if c.Restart.Time != nil {
		timeout = *c.Restart.Time
	}
	refs := c.Restart.Containers
	return cli.Each(refs, refs, func(ref, _ string) error {
		id, err := ctl.Resolve(p.RunRoot, ref)
		if err == nil {
			_, err = ctl.Stop(p.RunRoot, id, timeout)
		}
		if err != nil && !errors.Is(err, ctl.ErrNotRunning) {
			return err
		}
		return runInside(self, libexec, "start", append(c.Globals.Args(), "start", "--", ref))
	})
}

func execIn(c *cli.CLI, runRoot, id string) error {
	e := c.Exec
	preserved, err := preservedFiles(e.PreserveFDs)
	if err != nil {
		return err
	}
	code, err := ctl.RunExec(runRoot, id, ctl.Exec{
		Args: e.Args, Env: e.EnvList, User: e.User, Workdir: e.Workdir,
		TTY: e.TTY, Interactive: e.Interactive, Detach: e.Detach,
	}, os.Stdin, os.Stdout, os.Stderr, preserved)
	if errors.Is(err, ctl.ErrNotRunning) {
		return fmt.Errorf("container %s exited", e.Container)
	}
	if err != nil {
		return err
	}
	return cli.ExitCode(code)
}

// attach is rl attach: the exit code of the container, or 0 when the user
// detached (it keeps running).
func attach(runRoot, ref, id string) error {
	code, detached, err := ctl.Attach(runRoot, id, os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, ctl.ErrNotRunning) {
		return fmt.Errorf("container %s exited", ref)
	}
	if err != nil || detached || code == 0 {
		return err
	}
	return cli.ExitCode(code)
}
