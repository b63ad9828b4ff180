package cli

import (
	"fmt"
	"os"

	"github.com/rlcontainers/rl/rootfs/mounts"
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

	// Checked values, set by Validate.
	Args        []string        `kong:"-"`
	EnvList     []string        `kong:"-"`
	Volumes     []mounts.Volume `kong:"-"`
	TmpfsMounts []mounts.Tmpfs  `kong:"-"`
}

// Validate checks everything that can be checked before any namespace
// exists.
func (c *RunCmd) Validate() error {
	c.Args = c.Cmd
	if len(c.Args) > 0 && c.Args[0] == "--" {
		c.Args = c.Args[1:]
	}
	var err error
	if c.EnvList, err = ParseEnv(c.Env, c.EnvFile); err != nil {
		return err
	}
	if c.Volumes, err = ParseVolumes(c.Volume); err != nil {
		return err
	}
	if c.TmpfsMounts, err = ParseTmpfs(c.Tmpfs); err != nil {
		return err
	}
	if err := ValidateNetwork(c.Network); err != nil {
		return err
	}
	if c.Hostname != "" && !ValidHostname(c.Hostname) {
		return fmt.Errorf("invalid --hostname %q: use letters, digits, '-' and '.', at most 64 characters", c.Hostname)
	}
	if c.Workdir != "" && c.Workdir[0] != '/' {
		return fmt.Errorf("invalid --workdir %q: it must be an absolute path", c.Workdir)
	}
	return nil
}

// PullCmd is `rl pull`.
type PullCmd struct {
	TLSVerify *bool  `name:"tls-verify" help:"Require HTTPS and verify certificates."`
	Authfile  string `help:"Path of the registry auth file." type:"path"`
	Quiet     bool   `short:"q" help:"No progress output."`
	Image     string `arg:"" help:"Image reference, e.g. busybox or quay.io/org/name:tag."`
}

// LoadCmd is `rl load`.
type LoadCmd struct {
	Input string `short:"i" required:"" help:"docker-archive or oci-archive file." type:"path"`
	Quiet bool   `short:"q" help:"No progress output."`
}

// Validate checks the archive exists before any namespace does.
func (c *LoadCmd) Validate() error {
	if _, err := os.Stat(c.Input); err != nil {
		return fmt.Errorf("rl load -i %s: %v: give an existing archive file", c.Input, unwrapPathError(err))
	}
	return nil
}

// ImagesCmd is `rl images`.
type ImagesCmd struct {
	Quiet bool `short:"q" help:"Only show image ids."`
}

// RmiCmd is `rl rmi`.
type RmiCmd struct {
	Force  bool     `short:"f" help:"Also remove containers using the image."`
	Images []string `arg:"" help:"Images to remove."`
}

// PsCmd is `rl ps`.
type PsCmd struct {
	All   bool `short:"a" help:"Show all containers, not only running ones."`
	Quiet bool `short:"q" help:"Only show container ids."`
}

// RmCmd is `rl rm`.
type RmCmd struct {
	Force      bool     `short:"f" help:"Kill running containers first."`
	Containers []string `arg:"" help:"Containers to remove (names, ids or id prefixes)."`
}

// InfoCmd is `rl info`.
type InfoCmd struct{}
