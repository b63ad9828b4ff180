package main

import (
	"fmt"
	"os"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/rootfs"
)

func runRmi(all *cli.CLI, s *session.Session) error {
	c := &all.Rmi
	var firstErr error
	for _, name := range c.Images {
		id, err := rootfs.RemoveImage(s.Store, name, c.Force)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			} else {
				cli.Report(os.Stderr, err)
			}
			continue
		}
		fmt.Println("Deleted:", id)
	}
	return firstErr
}
