package main

import (
	"fmt"
	"strings"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
)

func runInfo(_ *cli.CLI, s *session.Session) error {
	fmt.Printf("version: %s\n", cli.Version)
	if s.Plan == nil {
		return fmt.Errorf("rl info must be run through rl")
	}
	p := *s.Plan
	fmt.Printf("idMappings:\n  mode: %s\n  source: %s\n", p.Mode, p.Source)
	if p.Reason != "" {
		fmt.Printf("  reason: %s\n  fix: %s\n", p.Reason, p.Fix)
	}
	for _, m := range p.UIDs {
		fmt.Printf("  uid: %d -> %d (%d)\n", m.ContainerID, m.HostID, m.Size)
	}
	for _, m := range p.GIDs {
		fmt.Printf("  gid: %d -> %d (%d)\n", m.ContainerID, m.HostID, m.Size)
	}
	fmt.Printf("store:\n  root: %s\n  runRoot: %s (%s)\n", s.Paths.Root, s.Paths.RunRoot, s.Paths.RunRootReason)
	fmt.Printf("  driver: %s\n  driverReason: %s\n", s.Driver.Name, s.Driver.Reason)
	if len(s.Driver.Options) > 0 {
		fmt.Printf("  driverOptions: %s\n", strings.Join(s.Driver.Options, ", "))
	}
	return nil
}
