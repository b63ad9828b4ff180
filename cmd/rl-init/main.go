// Command rl-init is a container's init: rl embeds it and execs it in the
// container's new namespaces, where it sets up the mounts and execs the
// workload. It is not meant to be run by hand.
package main

import (
	"os"

	"github.com/rlcontainers/rl/container/initproc"
)

func main() {
	os.Exit(initproc.Init())
}
