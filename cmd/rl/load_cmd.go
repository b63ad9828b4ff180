package main

import (
	"fmt"
	"os"

	"github.com/rlcontainers/rl/rootfs"
)

// LoadCmd is `rl load`.
type LoadCmd struct {
	Input string `short:"i" required:"" help:"docker-archive or oci-archive file." type:"path"`
	Quiet bool   `short:"q" help:"No progress output."`
}

func (c *LoadCmd) Validate() error {
	if _, err := os.Stat(c.Input); err != nil {
		return errorf("rl load -i %s: %v: give an existing archive file", c.Input, err)
	}
	return nil
}

func (c *LoadCmd) Run(g *Globals) error {
	s, err := g.open()
	if err != nil {
		return err
	}
	defer s.close()
	s.interruptible()
	var progress *os.File
	if !c.Quiet {
		progress = os.Stderr
	}
	names, err := rootfs.Load(s.ctx, s.store, c.Input, progress)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Println("Loaded image:", n)
	}
	return nil
}
