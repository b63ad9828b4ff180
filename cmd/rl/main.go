// Command rl runs rootless containers.
package main

import (
	"os"

	"github.com/rlcontainers/rl/container"
	"go.podman.io/storage/pkg/reexec"
)

func main() {
	if reexec.Init() {
		return
	}
	if container.IsInit() {
		os.Exit(container.Init())
	}
	os.Exit(run(os.Args[1:]))
}
