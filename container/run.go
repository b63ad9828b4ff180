package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rlcontainers/rl/container/caps"
	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/internal/trace"
	"github.com/rlcontainers/rl/rootfs"
	"github.com/rlcontainers/rl/rootfs/mounts"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"
)

// Run is `rl run` inside rl's user namespace: this process becomes the
// container's supervisor. It creates the container and supervises it (see
// Supervise). It returns the workload's exit code; an error means rl
// itself failed, and then nothing of the container is left.
func Run(ctx context.Context, rt *Runtime, o RunOptions, m Mode) (int, error) {
	// The init is cloned first and starts while the container is created.
	proto := rootfs.Record{
		Namespaces: o.Namespaces, UserNS: o.UserNS,
		TTY: o.TTY, Interactive: o.Interactive, Init: o.Init,
	}
	var rec rootfs.Record
	c, code, started, err := supervise(ctx, rt, proto, func() (*storage.Container, rootfs.Record, error) {
		c, r, err := Create(ctx, rt, o)
		trace.Mark("core: container created")
		rec = r
		return c, r, err
	}, m)
	if err != nil && c != nil && !started && !rec.AutoRm {
		// A container that never ran is not kept (it would only be noise
		// in rl ps -a); --rm ones are removed by supervise itself.
		if _, rmErr := rootfs.RemoveContainer(rt.Store, c.ID, true); rmErr != nil {
			rt.warn("removing container %s: %v", c.ID[:12], rmErr)
		}
	}
	return code, err
}

// mountRootfs mounts the container's rootfs and returns its path; tree
// is not nil when the store mounted it detached (an --rm container,
// rootfs.Store.MountDetached), to be attached at that path by the init.
func mountRootfs(rt *Runtime, c *storage.Container) (root string, tree *os.File, err error) {
	if d, ok := rt.Store.(interface {
		MountDetached(id string) (*os.File, string, error)
	}); ok {
		tree, root, err = d.MountDetached(c.ID)
	}
	if tree == nil && err == nil {
		root, err = rt.Store.Mount(c.ID, "")
	}
	if err != nil {
		return "", nil, fmt.Errorf("mounting the container's rootfs: %w", err)
	}
	trace.Mark("core: rootfs mounted")
	return root, tree, nil
}

// buildSpec writes the container's /etc files and builds the mount plan
// for its rootfs, mounted at root.
func buildSpec(rt *Runtime, c *storage.Container, rec rootfs.Record, net *network, ns *nsPlan, root string) (*initproc.Spec, error) {
	hostname := rec.Hostname
	ownUTS := ns.flags&unix.CLONE_NEWUTS != 0
	if !ownUTS {
		// A shared UTS namespace keeps its hostname.
		hostname, _ = os.Hostname()
		if j := ns.joined("uts"); j != nil {
			hostname = j.hostname()
		}
	} else if hostname == "" {
		hostname = c.ID[:12]
	}
	runDir, err := rt.Store.ContainerRunDirectory(c.ID)
	if err != nil {
		return nil, err
	}
	// In another container's network (--network container:NAME) its
	// names and resolver are this one's too.
	joined := ns.joined("net")
	files := map[string]string{"/etc/hostname": hostname + "\n"}
	if !rec.NoHosts {
		if h, ok := joined.etcFile("hosts"); ok {
			files["/etc/hosts"] = net.joinedHosts(h, hostname, rec.Name)
		} else {
			files["/etc/hosts"] = net.hosts(hostname, rec.Name)
		}
	}
	if !imageResolvConf(rec) {
		r, ok := "", false
		if len(rec.DNS)+len(rec.DNSSearch)+len(rec.DNSOptions) == 0 {
			r, ok = joined.etcFile("resolv.conf")
		}
		if !ok {
			r = net.resolvConf()
		}
		files["/etc/resolv.conf"] = r
	}
	etc, err := writeEtcFiles(runDir, files)
	if err != nil {
		return nil, err
	}
	tty := 5
	if rt.SingleID {
		tty = -1
	}
	ops, err := mounts.Plan(mounts.PlanInput{
		EtcFiles: etc, Volumes: rec.Volumes, Tmpfs: rec.Tmpfs, ReadOnly: rec.ReadOnly, TTYGroup: tty,
		HostNet: net.mode == NetHost, HostPID: ns.host["pid"], HostIPC: ns.host["ipc"],
		Masked: unmasked(mounts.DefaultMasked, rec), ReadOnlyPaths: unmasked(mounts.DefaultReadOnly, rec),
		Devices: privilegedDevices(rec),
	})
	if err != nil {
		return nil, err
	}
	spec := &initproc.Spec{
		Rootfs: root, Hostname: hostname, Mounts: ops, Args: rec.Command,
		Env: containerEnv(rec, hostname), Cwd: rec.Workdir, User: rec.User, Terminal: rec.TTY,
		Caps: recordCaps(rec), NoNewPrivs: rec.NoNewPrivs,
		ConnectNotify: net.bypassing(),
		AcceptNotify:  net.handingPorts(),
	}
	if !ownUTS {
		spec.Hostname = "" // not ours to set
	}
	if spec.Seccomp, err = seccompFilter(rt, rec); err != nil {
		return nil, err
	}
	return spec, nil
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
func writeEtcFiles(dir string, files map[string]string) (map[string]string, error) {
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

// unmasked is paths less what the container unmasks (--security-opt
// unmask=PATH, ALL, or --privileged: everything).
func unmasked(paths []string, rec rootfs.Record) []string {
	if rec.Privileged {
		return nil
	}
	var out []string
	for _, p := range paths {
		keep := true
		for _, u := range rec.Unmask {
			if u == "ALL" || u == p || (strings.HasSuffix(u, "/*") && strings.HasPrefix(p, strings.TrimSuffix(u, "*"))) {
				keep = false
			}
		}
		if keep {
			out = append(out, p)
		}
	}
	return out
}

// recordCaps is the container's capability set; a record from before rl
// kept one gets podman's default.
func recordCaps(rec rootfs.Record) []string {
	if rec.Caps == nil {
		return caps.Default
	}
	return rec.Caps
}

// privilegedDevices are, for --privileged, the host's devices the user can
// open for reading and writing (as podman's rootless --privileged): a
// container cannot get more than its user has anyway.
func privilegedDevices(rec rootfs.Record) []string {
	if !rec.Privileged {
		return nil
	}
	var out []string
	for _, dir := range []string{"/dev", "/dev/net"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if e.Type()&os.ModeDevice == 0 || e.Type()&os.ModeCharDevice == 0 || baseDevice(e.Name()) {
				continue
			}
			if unix.Access(p, unix.R_OK|unix.W_OK) == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// baseDevice: the ones every container gets, and the host's terminals.
func baseDevice(name string) bool {
	switch name {
	case "null", "zero", "full", "random", "urandom", "tty", "ptmx", "console":
		return true
	}
	return strings.HasPrefix(name, "tty") || strings.HasPrefix(name, "pts")
}
