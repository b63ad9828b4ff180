package main

import (
	"github.com/rlcontainers/rl/container"
	"github.com/rlcontainers/rl/rootfs"
)

// RunCmd is `rl run`: flags as docker and podman have them.
type RunCmd struct {
	Interactive bool     `short:"i" help:"Keep stdin open."`
	TTY         bool     `name:"tty" short:"t" help:"Allocate a pseudo-terminal."`
	Rm          bool     `help:"Remove the container when it exits."`
	Name        string   `help:"Name the container."`
	Env         []string `short:"e" help:"Set an environment variable (KEY=VALUE, or KEY to copy it from rl's environment)." sep:"none"`
	EnvFile     []string `name:"env-file" help:"Read environment variables from a file." sep:"none" type:"path"`
	Workdir     string   `short:"w" help:"Working directory inside the container."`
	User        string   `short:"u" help:"User to run as: name|uid[:group|gid]."`
	Entrypoint  *string  `help:"Override the image's entrypoint (\"\" clears it)."`
	Volume      []string `short:"v" help:"Bind-mount a host path: SRC:DST[:ro]." sep:"none"`
	Tmpfs       []string `help:"Mount a tmpfs: DST[:OPTIONS]." sep:"none"`
	ReadOnly    bool     `name:"read-only" help:"Mount the rootfs read-only (/tmp, /var/tmp and /run stay writable tmpfs)."`
	Hostname    string   `help:"Container hostname (default: the short container id)."`
	Pull        string   `help:"Pull the image: missing, always or never." enum:"missing,always,never,newer" default:"missing"`
	Network     string   `help:"Network mode: none." default:"none"`
	TLSVerify   *bool    `name:"tls-verify" help:"Require HTTPS and verify certificates when pulling."`
	Authfile    string   `help:"Path of the registry auth file." type:"path"`
	Quiet       bool     `short:"q" help:"Pull without progress output."`

	Image string   `arg:"" help:"Image to run."`
	Cmd   []string `arg:"" optional:"" passthrough:"" help:"Command and arguments."`

	opts container.RunOptions
}

// Validate checks everything that can be checked before any namespace
// exists, and turns the flags into the runner's options.
func (c *RunCmd) Validate() error {
	cmd := c.Cmd
	if len(cmd) > 0 && cmd[0] == "--" {
		cmd = cmd[1:]
	}
	env, err := container.ParseEnv(c.Env, c.EnvFile)
	if err != nil {
		return err
	}
	vols, err := container.ParseVolumes(c.Volume)
	if err != nil {
		return err
	}
	tmpfs, err := container.ParseTmpfs(c.Tmpfs)
	if err != nil {
		return err
	}
	if err := container.ValidateNetwork(c.Network); err != nil {
		return err
	}
	if c.Hostname != "" && !container.ValidHostname(c.Hostname) {
		return errorf("invalid --hostname %q: use letters, digits, '-' and '.', at most 64 characters", c.Hostname)
	}
	if c.Workdir != "" && c.Workdir[0] != '/' {
		return errorf("invalid --workdir %q: it must be an absolute path", c.Workdir)
	}
	c.opts = container.RunOptions{
		Image: c.Image, Cmd: cmd, Entrypoint: c.Entrypoint,
		Name: c.Name, Hostname: c.Hostname, Env: env, Workdir: c.Workdir, User: c.User,
		Volumes: vols, Tmpfs: tmpfs, ReadOnly: c.ReadOnly,
		Interactive: c.Interactive, TTY: c.TTY, Remove: c.Rm,
		Pull: c.Pull, Network: c.Network,
		PullOptions: rootfs.PullOptions{TLSVerify: c.TLSVerify, AuthFile: c.Authfile},
		Quiet:       c.Quiet,
	}
	return nil
}

func (c *RunCmd) Run(g *Globals) error {
	s, err := g.open()
	if err != nil {
		return err
	}
	defer s.close()
	code, err := container.Run(s.ctx, s.runtime(), c.opts)
	if err != nil {
		return err
	}
	return exitCode(code)
}
