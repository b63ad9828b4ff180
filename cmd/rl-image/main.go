// Command rl-image brings images into the store (pull, load): it alone links
// the image library's copy pipeline. The host-side rl starts it in rl's user
// namespace, and rl-core starts it to pull a missing image for rl run; it is
// not meant to be run by hand.
package main

import (
	"os"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/container/initproc"
	"go.podman.io/storage/pkg/reexec"
)

func main() {
	if reexec.Init() {
		return
	}
	if len(os.Args) > 1 && os.Args[1] == initproc.CompileSeccompArg {
		os.Exit(compileSeccomp(os.Args[2:]))
	}
	os.Exit(session.Main(cli.Image, map[string]session.Command{
		"pull": runPull,
		"load": runLoad,
	}))
}
