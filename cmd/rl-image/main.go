// Command rl-image brings images into the store (pull, load): it alone links
// the image library's copy pipeline. The host-side rl starts it in rl's user
// namespace, and rl-core starts it to pull a missing image for rl run; it is
// not meant to be run by hand.
package main

import (
	"os"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"go.podman.io/storage/pkg/reexec"
)

var commands = map[string]func(*cli.CLI, *session.Session) error{
	"pull": runPull,
	"load": runLoad,
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
		return cli.Unsupported(cli.Command(kctx), cli.Image)
	}
	s, err := session.Open(&c.Globals)
	if err != nil {
		return err
	}
	defer s.Close()
	s.Interruptible()
	return cmd(c, s)
}
