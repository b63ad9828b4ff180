// Command rl-core runs rl's commands that work on the store (run, ps, rm,
// images, rmi, info). The host-side rl starts it in rl's user namespace; it
// is not meant to be run by hand.
package main

import (
	"os"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"go.podman.io/storage/pkg/reexec"
)

var commands = map[string]func(*cli.CLI, *session.Session) error{
	"run":    runRun,
	"ps":     runPs,
	"rm":     runRm,
	"images": runImages,
	"rmi":    runRmi,
	"info":   runInfo,
}

func main() {
	if reexec.Init() {
		return
	}
	os.Exit(cli.Report(os.Stderr, run()))
}

func run() error {
	c, kctx, err := cli.Parse(os.Args[1:], os.Exit)
	if err != nil {
		return err
	}
	cmd, ok := commands[cli.Command(kctx)]
	if !ok {
		return cli.Unsupported(cli.Command(kctx), cli.Core)
	}
	s, err := session.Open(&c.Globals)
	if err != nil {
		return err
	}
	defer s.Close()
	return cmd(c, s)
}
