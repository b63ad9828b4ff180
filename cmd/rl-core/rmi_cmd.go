package main

import (
	"fmt"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/rootfs"
)

func runRmi(all *cli.CLI, s *session.Session) error {
	return cli.Each(all.Rmi.Images, all.Rmi.Images, func(name, _ string) error {
		id, err := rootfs.RemoveImage(s.Store, name, all.Rmi.Force)
		if err == nil {
			fmt.Println("Deleted:", id)
		}
		return err
	})
}
