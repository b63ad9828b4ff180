package main

import (
	"fmt"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/rootfs"
)

func runRm(all *cli.CLI, s *session.Session) error {
	return cli.Each(all.Rm.Containers, all.Rm.Containers, func(ref, _ string) error {
		id, err := rootfs.RemoveContainer(s.Store, ref, all.Rm.Force)
		if err == nil {
			fmt.Println(id)
		}
		return err
	})
}
