package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rlcontainers/rl/container/ctl"
	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/internal/trace"
	"github.com/rlcontainers/rl/rootfs"
	"go.podman.io/storage"
)

// Create finds the image (pulling it when allowed) and creates the
// container: its record and its writable layer. Nothing runs yet.
func Create(ctx context.Context, rt *Runtime, o RunOptions) (*storage.Container, rootfs.Record, error) {
	// The network's options come first: a bad -p fails before an image is
	// looked up or pulled.
	if _, err := prepareCheck(rootfs.Record{
		Namespaces: o.Namespaces, Ports: o.Ports, DNS: o.DNS, AddHosts: o.AddHosts, NoHosts: o.NoHosts,
		DNSSearch: o.DNSSearch, DNSOptions: o.DNSOptions,
	}); err != nil {
		return nil, rootfs.Record{}, err
	}
	more, err := exposed(o.Expose)
	if err != nil {
		return nil, rootfs.Record{}, err
	}
	img, err := ensureImage(ctx, rt, o)
	trace.Mark("core: image found")
	if err != nil {
		return nil, rootfs.Record{}, err
	}
	cfg, err := rootfs.ImageConfig(ctx, rt.Store, img)
	if err != nil {
		return nil, rootfs.Record{}, err
	}
	args := command(cfg, o)
	if len(args) == 0 {
		return nil, rootfs.Record{}, fmt.Errorf("no command: image %s sets no Entrypoint or Cmd; give one after the image name", o.Image)
	}
	rec := rootfs.Record{
		Name: o.Name, Image: o.Image, ImageID: img.ID, Command: args,
		Env:     initproc.MergeEnv(slices.Concat(o.ProxyEnv, cfg.Config.Env, o.Env)),
		Workdir: o.Workdir, User: o.User, Hostname: o.Hostname,
		Created: time.Now().UTC(),
		Volumes: o.Volumes, Tmpfs: o.Tmpfs, ReadOnly: o.ReadOnly,
		TTY: o.TTY, Interactive: o.Interactive, AutoRm: o.Remove, Init: o.Init,
		StopSignal: stopSignal(cfg), StopTimeout: o.StopTimeout,
		Namespaces: o.Namespaces, UserNS: o.UserNS,
		Ports: o.Ports, PublishAll: o.PublishAll, DNS: o.DNS, AddHosts: o.AddHosts, NoHosts: o.NoHosts,
		DNSSearch: o.DNSSearch, DNSOptions: o.DNSOptions,
		Caps: o.Caps, NoNewPrivs: o.NoNewPrivs, Privileged: o.Privileged, Unmask: o.Unmask, Seccomp: o.Seccomp,
	}
	for p := range cfg.Config.ExposedPorts {
		rec.ExposedPorts = append(rec.ExposedPorts, p)
	}
	for _, p := range more {
		if !slices.Contains(rec.ExposedPorts, p) {
			rec.ExposedPorts = append(rec.ExposedPorts, p)
		}
	}
	sort.Strings(rec.ExposedPorts)
	if rec.Workdir == "" {
		rec.Workdir = cfg.Config.WorkingDir
	}
	if rec.User == "" {
		rec.User = cfg.Config.User
	}
	if rec.UserNS == "keep-id" && o.User == "" {
		// As podman: the workload runs as the user, under the same ids.
		u := keepID(rt.Plan)
		rec.User = fmt.Sprintf("%d:%d", u.uid, u.gid)
	}
	c, err := rootfs.CreateContainer(rt.Store, img, rec)
	if err != nil {
		return nil, rec, err
	}
	return c, rootfs.ReadRecord(c), nil
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

// stopSignal is the image's StopSignal (a name or number), else 0 (SIGTERM).
func stopSignal(cfg *imgspecv1.Image) int {
	if s, err := ctl.ParseSignal(cfg.Config.StopSignal); err == nil {
		return int(s)
	}
	return 0
}

func termName() string {
	if t := os.Getenv("TERM"); t != "" {
		return t
	}
	return "xterm"
}
