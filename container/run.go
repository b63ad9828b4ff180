package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/rootfs"
	"github.com/rlcontainers/rl/rootfs/mounts"
	"go.podman.io/storage"
)

// Run is `rl run` inside rl's user namespace: this process becomes the
// container's supervisor. It creates the container and supervises it (see
// Supervise). It returns the workload's exit code; an error means rl
// itself failed, and then nothing of the container is left.
func Run(ctx context.Context, rt *Runtime, o RunOptions, m Mode) (int, error) {
	c, rec, err := Create(ctx, rt, o)
	if err != nil {
		return 0, err
	}
	code, started, err := supervise(ctx, rt, c, rec, m)
	if err != nil && !started && !rec.AutoRm {
		// A container that never ran is not kept (it would only be noise
		// in rl ps -a); --rm ones are removed by supervise itself.
		if _, rmErr := rootfs.RemoveContainer(rt.Store, c.ID, true); rmErr != nil {
			rt.warn("removing container %s: %v", c.ID[:12], rmErr)
		}
	}
	return code, err
}

// buildSpec mounts the container's rootfs, writes its /etc files and
// builds the mount plan.
func buildSpec(rt *Runtime, c *storage.Container, rec rootfs.Record) (*initproc.Spec, error) {
	root, err := rt.Store.Mount(c.ID, "")
	if err != nil {
		return nil, fmt.Errorf("mounting the container's rootfs: %w", err)
	}
	hostname := rec.Hostname
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
		EtcFiles: etc, Volumes: rec.Volumes, Tmpfs: rec.Tmpfs, ReadOnly: rec.ReadOnly, TTYGroup: tty,
	})
	if err != nil {
		return nil, err
	}
	return &initproc.Spec{
		Rootfs: root, Hostname: hostname, Mounts: ops, Args: rec.Command,
		Env: containerEnv(rec, hostname), Cwd: rec.Workdir, User: rec.User, Terminal: rec.TTY,
	}, nil
}

// containerEnv is the workload's environment: the record's (the image's,
// then the user's), with HOSTNAME, container=rl and TERM for a terminal
// before them, as docker sets them.
func containerEnv(rec rootfs.Record, hostname string) []string {
	env := []string{"HOSTNAME=" + hostname, "container=rl"}
	if rec.TTY {
		env = append(env, "TERM="+termName())
	}
	return append(env, rec.Env...)
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
