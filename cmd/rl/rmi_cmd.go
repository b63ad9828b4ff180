package main

import (
	"fmt"

	"github.com/rlcontainers/rl/rootfs"
)

// RmiCmd is `rl rmi`.
type RmiCmd struct {
	Force  bool     `short:"f" help:"Also remove containers using the image."`
	Images []string `arg:"" help:"Images to remove."`
}

func (c *RmiCmd) Run(g *Globals) error {
	s, err := g.open()
	if err != nil {
		return err
	}
	defer s.close()
	var firstErr error
	for _, name := range c.Images {
		id, err := rootfs.RemoveImage(s.store, name, c.Force)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			} else {
				report(err)
			}
			continue
		}
		fmt.Println("Deleted:", id)
	}
	return firstErr
}
