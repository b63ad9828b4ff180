package main

import (
	"fmt"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/rootfs"
)

// runRm prints each container as it was named on the command line, as
// docker and podman do (and as rl stop and rl kill do).
func runRm(all *cli.CLI, s *session.Session) error {
	return cli.Each(all.Rm.Containers, all.Rm.Containers, func(ref, _ string) error {
		_, err := rootfs.RemoveContainer(s.Store, ref, all.Rm.Force)
		if err == nil {
			fmt.Println(ref)
		}
		return err
	})
}
