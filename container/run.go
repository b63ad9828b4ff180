package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/rootfs"
	"github.com/rlcontainers/rl/rootfs/mounts"
	"go.podman.io/storage"
	"golang.org/x/term"
)

// Run is `rl run` inside rl's user namespace: this process becomes the
// container's supervisor. It finds or pulls the image, creates the
// container and its layer, mounts it, starts the workload, forwards the
// user's signals, and records the exit. It returns the workload's exit code;
// an error means rl itself failed (nothing of the container is left then).
func Run(ctx context.Context, rt *Runtime, o RunOptions) (int, error) {
	img, err := ensureImage(ctx, rt, o)
	if err != nil {
		return 0, err
	}
	cfg, err := rootfs.ImageConfig(ctx, rt.Store, img)
	if err != nil {
		return 0, err
	}
	args := command(cfg, o)
	if len(args) == 0 {
		return 0, fmt.Errorf("no command: image %s sets no Entrypoint or Cmd; give one after the image name", o.Image)
	}
	c, err := rootfs.CreateContainer(rt.Store, img, rootfs.Record{
		Name: o.Name, Image: o.Image, ImageID: img.ID, Command: args,
		Created: time.Now().UTC(), Hostname: o.Hostname, AutoRm: o.Remove,
	})
	if err != nil {
		return 0, err
	}
	started := false
	defer func() {
		if _, err := rt.Store.Unmount(c.ID, true); err != nil && !errors.Is(err, storage.ErrLayerUnknown) {
			rt.warn("unmounting container %s: %v", c.ID[:12], err)
		}
		if o.Remove || !started {
			if err := rt.Store.DeleteContainer(c.ID); err != nil {
				rt.warn("removing container %s: %v", c.ID[:12], err)
			}
		}
	}()

	spec, err := buildSpec(rt, c, cfg, args, o)
	if err != nil {
		return 0, err
	}
	stdio := rt.Stdio
	if !o.Interactive {
		stdio.Stdin = nil
	}
	if o.TTY && stdio.Stdin != nil && term.IsTerminal(int(stdio.Stdin.Fd())) {
		old, err := term.MakeRaw(int(stdio.Stdin.Fd()))
		if err != nil {
			return 0, fmt.Errorf("setting the terminal raw: %w", err)
		}
		defer term.Restore(int(stdio.Stdin.Fd()), old)
	}
	p, err := Start(rt.InitPath, spec, stdio)
	if err != nil {
		return 0, err
	}
	started = true
	st := rootfs.State{Status: "running", Pid: p.Pid, StartedAt: time.Now().UTC()}
	_ = rootfs.WriteState(rt.Store, c.ID, st)

	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig, ok := <-rt.Signals:
				if !ok {
					return
				}
				_ = p.Signal(sig)
			case <-done:
				return
			}
		}
	}()
	code := p.Wait()
	close(done)
	st.Status, st.ExitCode, st.FinishedAt = "exited", code, time.Now().UTC()
	if !o.Remove {
		if err := rootfs.WriteState(rt.Store, c.ID, st); err != nil {
			rt.warn("recording the exit of %s: %v", c.ID[:12], err)
		}
	}
	return code, nil
}

func ensureImage(ctx context.Context, rt *Runtime, o RunOptions) (*storage.Image, error) {
	if o.Pull != "always" {
		img, err := rootfs.LookupImage(rt.Store, o.Image)
		if err == nil {
			return img, nil
		}
		if !errors.Is(err, rootfs.ErrImageUnknown) {
			return nil, err
		}
		if o.Pull == "never" {
			return nil, fmt.Errorf("image %s is not in the store and --pull=never: pull it first (rl pull %s)", o.Image, o.Image)
		}
	}
	if err := rt.Pull(ctx, o.Image); err != nil {
		return nil, err
	}
	return rootfs.LookupImage(rt.Store, o.Image)
}

// command is docker's rule: --entrypoint replaces the image's Entrypoint
// and drops its Cmd; arguments after the image replace Cmd.
func command(cfg *imgspecv1.Image, o RunOptions) []string {
	ep := cfg.Config.Entrypoint
	cmd := cfg.Config.Cmd
	if o.Entrypoint != nil {
		ep, cmd = nil, nil
		if *o.Entrypoint != "" {
			ep = []string{*o.Entrypoint}
		}
	}
	if len(o.Cmd) > 0 {
		cmd = o.Cmd
	}
	return append(append([]string{}, ep...), cmd...)
}

// buildSpec mounts the container's rootfs, writes its /etc files and
// builds the mount plan.
func buildSpec(rt *Runtime, c *storage.Container, cfg *imgspecv1.Image, args []string, o RunOptions) (*initproc.Spec, error) {
	root, err := rt.Store.Mount(c.ID, "")
	if err != nil {
		return nil, fmt.Errorf("mounting the container's rootfs: %w", err)
	}
	hostname := o.Hostname
	if hostname == "" {
		hostname = c.ID[:12]
	}
	runDir, err := rt.Store.ContainerRunDirectory(c.ID)
	if err != nil {
		return nil, err
	}
	etc, err := writeEtcFiles(runDir, hostname)
	if err != nil {
		return nil, err
	}
	tty := 5
	if rt.SingleID {
		tty = -1
	}
	ops, err := mounts.Plan(mounts.PlanInput{
		EtcFiles: etc, Volumes: o.Volumes, Tmpfs: o.Tmpfs, ReadOnly: o.ReadOnly, TTYGroup: tty,
	})
	if err != nil {
		return nil, err
	}
	env := append([]string{}, cfg.Config.Env...)
	env = append(env, "HOSTNAME="+hostname, "container=rl")
	if o.TTY {
		env = append(env, "TERM="+termName())
	}
	env = append(env, o.Env...)
	workdir := o.Workdir
	if workdir == "" {
		workdir = cfg.Config.WorkingDir
	}
	user := o.User
	if user == "" {
		user = cfg.Config.User
	}
	return &initproc.Spec{
		Rootfs: root, Hostname: hostname, Mounts: ops, Args: args,
		Env: env, Cwd: workdir, User: user, Terminal: o.TTY,
	}, nil
}

func termName() string {
	if t := os.Getenv("TERM"); t != "" {
		return t
	}
	return "xterm"
}

// writeEtcFiles writes the container's /etc/hosts, /etc/hostname and
// /etc/resolv.conf in its run directory, to be bind-mounted.
func writeEtcFiles(dir, hostname string) (map[string]string, error) {
	files := map[string]string{
		"/etc/hostname": hostname + "\n",
		"/etc/hosts": "127.0.0.1\tlocalhost localhost.localdomain\n" +
			"::1\tlocalhost ip6-localhost ip6-loopback\n" +
			"127.0.1.1\t" + hostname + "\n",
		"/etc/resolv.conf": resolvConf(),
	}
	out := map[string]string{}
	for name, content := range files {
		p := filepath.Join(dir, filepath.Base(name))
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		out[name] = p
	}
	return out, nil
}

// resolvConf copies the host's resolver settings, without loopback
// nameservers (a local stub is unreachable from the container's network).
func resolvConf() string {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return ""
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
