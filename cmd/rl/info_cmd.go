package main

import (
	"fmt"
	"strings"
)

// InfoCmd is `rl info`.
type InfoCmd struct{}

func (c *InfoCmd) Run(g *Globals) error {
	s, err := g.open()
	if err != nil {
		return err
	}
	defer s.close()
	p := s.child.Plan
	fmt.Printf("version: %s\n", version)
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
	fmt.Printf("store:\n  root: %s\n  runRoot: %s (%s)\n", s.paths.Root, s.paths.RunRoot, s.paths.RunRootReason)
	fmt.Printf("  driver: %s\n  driverReason: %s\n", s.driver.Name, s.driver.Reason)
	if len(s.driver.Options) > 0 {
		fmt.Printf("  driverOptions: %s\n", strings.Join(s.driver.Options, ", "))
	}
	return nil
}
