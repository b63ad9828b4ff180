package main

import (
	"os"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/container"
	"github.com/rlcontainers/rl/rootfs"
)

func runLogs(all *cli.CLI, s *session.Session) error {
	s.Interruptible()
	l := all.Logs
	c, err := rootfs.LookupContainer(s.Store, l.Container)
	if err != nil {
		return err
	}
	path, err := container.LogPath(s.Store, c.ID)
	if err != nil {
		return err
	}
	return container.ReadLog(s.Ctx, path, container.LogOptions{
		Follow: l.Follow, Tail: l.Tail, Timestamps: l.Timestamps,
		Running: func() bool { return rootfs.ReadState(s.Store, c.ID).Status == "running" },
	}, os.Stdout, os.Stderr)
}
