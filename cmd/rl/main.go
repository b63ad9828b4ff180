// Command rl runs rootless containers.
package main

import (
	"os"

	"github.com/rlcontainers/rl/container/initproc"
	"go.podman.io/storage/pkg/reexec"
)

func main() {
	if reexec.Init() {
		return
	}
	if initproc.IsInit() {
		os.Exit(initproc.Init())
	}
	os.Exit(run(os.Args[1:]))
}
