package main

import (
	"fmt"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/rootfs"
)

// runSystem is `rl system check`: one line per problem; exit 125 when
// damage remains (podman exits non-zero then too).
func runSystem(all *cli.CLI, s *session.Session) error {
	c := all.System.Check
	problems, err := rootfs.Check(s.Store, rootfs.CheckOptions{
		Quick: c.Quick, Repair: c.Repair, Force: c.Force, MaxAge: c.Max, RunRoot: s.Paths.RunRoot,
	})
	for _, p := range problems {
		state := "found"
		if p.Repaired {
			state = "repaired"
		}
		fmt.Printf("%s %s %s: %s\n", state, p.Kind, short(p.ID), p.What)
	}
	if err != nil {
		return err
	}
	left := 0
	for _, p := range problems {
		if !p.Repaired {
			left++
		}
	}
	if left > 0 {
		return fmt.Errorf("%d problem(s) in the store: run rl system check --repair (with --force to remove damaged containers)", left)
	}
	if len(problems) == 0 {
		fmt.Println("no problems found")
	}
	return nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
