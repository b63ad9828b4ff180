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
	"github.com/rlcontainers/rl/rootfs"
	"github.com/rlcontainers/rl/rootfs/imagelib"
	"go.podman.io/storage/pkg/reexec"
)

func main() {
	if reexec.Init() {
		return
	}
	rootfs.Lib = imagelib.Library
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case initproc.CompileSeccompArg:
			os.Exit(compileSeccomp(os.Args[2:]))
		case cli.ResolveArg:
			os.Exit(resolve(os.Args[2:]))
		}
	}
	os.Exit(session.Main(cli.Image, map[string]session.Command{
		"pull":                 runPull,
		"load":                 runLoad,
		"images":               runImages,
		cli.ImageConfigCommand: runImageConfig,
	}))
}
