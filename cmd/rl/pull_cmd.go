package main

import (
	"fmt"
	"os"

	"github.com/rlcontainers/rl/rootfs"
)

// PullCmd is `rl pull`.
type PullCmd struct {
	TLSVerify *bool  `name:"tls-verify" help:"Require HTTPS and verify certificates."`
	Authfile  string `help:"Path of the registry auth file." type:"path"`
	Quiet     bool   `short:"q" help:"No progress output."`
	Image     string `arg:"" help:"Image reference, e.g. busybox or quay.io/org/name:tag."`
}

func (c *PullCmd) Run(g *Globals) error {
	s, err := g.open()
	if err != nil {
		return err
	}
	defer s.close()
	s.interruptible()
	o := rootfs.PullOptions{TLSVerify: c.TLSVerify, AuthFile: c.Authfile}
	if !c.Quiet {
		o.Progress = os.Stderr
	}
	img, err := rootfs.Pull(s.ctx, s.store, c.Image, o)
	if err != nil {
		return err
	}
	fmt.Println(img.ID)
	return nil
}
