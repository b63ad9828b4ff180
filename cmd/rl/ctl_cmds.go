package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/alecthomas/kong"
	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/container/ctl"
)

// fastPath runs exec, stop, kill and wait against running containers
// straight through their control sockets, without a user namespace or the
// store. handled=false means a container was not running (or unknown): the
// command then goes to rl-core, which knows stopped containers.
func fastPath(c *cli.CLI, kctx *kong.Context) (handled bool, err error) {
	cmd := cli.Command(kctx)
	var refs []string
	switch cmd {
	case "exec":
		refs = []string{c.Exec.Container}
	case "stop":
		refs = c.Stop.Containers
	case "kill":
		refs = c.Kill.Containers
	case "wait":
		refs = c.Wait.Containers
	case "attach":
		refs = []string{c.Attach.Container}
	default:
		return false, nil
	}
	p, err := c.Globals.Paths()
	if err != nil {
		return false, err
	}
	ids := make([]string, len(refs))
	for i, ref := range refs {
		if ids[i], err = ctl.Resolve(p.RunRoot, ref); err != nil {
			if errors.Is(err, ctl.ErrNotRunning) {
				return false, nil
			}
			return true, err
		}
	}
	switch cmd {
	case "exec":
		e := c.Exec
		code, err := ctl.RunExec(p.RunRoot, ids[0], ctl.Exec{
			Args: e.Args, Env: e.EnvList, User: e.User, Workdir: e.Workdir,
			TTY: e.TTY, Interactive: e.Interactive, Detach: e.Detach,
		}, os.Stdin, os.Stdout, os.Stderr)
		if errors.Is(err, ctl.ErrNotRunning) {
			return true, fmt.Errorf("container %s exited", e.Container)
		}
		if err != nil {
			return true, err
		}
		return true, cli.ExitCode(code)
	case "attach":
		return true, attach(p.RunRoot, refs[0], ids[0])
	case "stop":
		return true, cli.Each(refs, ids, func(ref, id string) error {
			timeout := -1 // the container's --stop-timeout
			if c.Stop.Time != nil {
				timeout = *c.Stop.Time
			}
			_, err := ctl.Stop(p.RunRoot, id, timeout)
			if err == nil || errors.Is(err, ctl.ErrNotRunning) {
				fmt.Println(ref)
				return nil
			}
			return err
		})
	case "kill":
		sig, _ := ctl.ParseSignal(c.Kill.Signal)
		return true, cli.Each(refs, ids, func(ref, id string) error {
			if err := ctl.Kill(p.RunRoot, id, sig); err != nil {
				return err
			}
			fmt.Println(ref)
			return nil
		})
	case "wait":
		return true, cli.Each(refs, ids, func(ref, id string) error {
			code, err := ctl.Wait(p.RunRoot, id)
			if errors.Is(err, ctl.ErrNotRunning) {
				// The supervisor died before answering; rl-core would read
				// "exited (unknown)" from the store.
				time.Sleep(10 * time.Millisecond)
				return fmt.Errorf("container %s: its supervisor died; see rl ps -a", ref)
			}
			if err != nil {
				return err
			}
			fmt.Println(code)
			return nil
		})
	}
	return false, nil
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
