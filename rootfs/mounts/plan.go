// Package mounts is the container's mount plan: built as data (Plan), applied in
// one place (Apply) in the container's mount namespace, then PivotRoot.
package mounts

import (
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// OpKind is what one step of the mount plan does.
type OpKind string

const (
	OpMount   OpKind = "mount"   // mount Source (FSType) on Target with Flags and Data
	OpBind    OpKind = "bind"    // bind-mount host path Source on Target (recursive)
	OpSymlink OpKind = "symlink" // create symlink Target -> Source
	OpMkdir   OpKind = "mkdir"   // create directory Target
	OpRemount OpKind = "remount" // make the mount at Target read-only (keeping its locked flags)
	OpMask    OpKind = "mask"    // hide Target: /dev/null over a file, an empty read-only tmpfs over a directory
	OpRdonly  OpKind = "rdonly"  // bind Target on itself, read-only (a path inside a mount)
)

// Op is one step of the mount plan. Targets are absolute paths inside the
// container's root; Apply resolves them below the rootfs.
type Op struct {
	Kind   OpKind
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
	// File makes a bind target a file rather than a directory.
	File bool
	// Optional: a failure is skipped (e.g. a device the host lacks).
	Optional bool
	// Fallback is tried when the op fails with EPERM (e.g. sysfs in a
	// network namespace rl does not own: bind the host's /sys instead).
	Fallback []Op
}

// Volume is a -v SRC:DST[:ro] bind mount.
type Volume struct {
	Source, Target string
	ReadOnly       bool
	File           bool `json:",omitempty"` // the source is a file: the target is made a file too
}

// Tmpfs is a --tmpfs DST[:OPTIONS] mount.
type Tmpfs struct {
	Target  string
	Options string
}

// PlanInput is everything the mount plan depends on.
type PlanInput struct {
	// EtcFiles maps /etc/hosts, /etc/hostname, /etc/resolv.conf to the
	// generated host files to bind over them.
	EtcFiles map[string]string
	Volumes  []Volume
	Tmpfs    []Tmpfs
	ReadOnly bool
	// TTYGroup is the gid owning /dev/pts entries; -1 when gid 5 is not
	// mapped (single-ID user namespace), where devpts refuses gid=5.
	TTYGroup int
	// HostNet: the container shares a network namespace rl does not own,
	// where the kernel refuses a fresh sysfs.
	HostNet bool
	// HostPID: the container shares the host's PID namespace, whose proc
	// only a process of the initial user namespace may mount: bind the
	// host's /proc instead.
	HostPID bool
	// HostIPC: likewise for mqueue in the host's IPC namespace.
	HostIPC bool
	// Masked paths are hidden, ReadOnlyPaths made read-only, after /proc
	// and /sys are mounted (DefaultMasked, DefaultReadOnly).
	Masked        []string
	ReadOnlyPaths []string
	// Devices are more host devices to bind into /dev (--privileged: the
	// ones the user can open, /dev/net/tun and /dev/fuse among them).
	Devices []string
}

const (
	nosuidNodevNoexec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
)

// DefaultMasked are podman's masked paths: kernel state a container has no
// business reading (keys, memory, timers of other processes, firmware).
var DefaultMasked = []string{
	"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
	"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/proc/interrupts",
	"/sys/firmware", "/sys/fs/selinux", "/sys/dev/block", "/sys/devices/virtual/powercap",
}

// DefaultReadOnly are podman's read-only paths: kernel knobs that must not
// be turned from a container.
var DefaultReadOnly = []string{
	"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// devices are bind-mounted from the host: mknod is refused in a user
// namespace (the kernel allows it only to init_user_ns's CAP_MKNOD).
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// Plan builds the container's mount plan: the order matters (a mount point
// must exist before its mount; read-only remounts last).
func Plan(in PlanInput) ([]Op, error) {
	var ops []Op
	if in.HostPID {
		ops = append(ops, Op{Kind: OpBind, Source: "/proc", Target: "/proc"})
	} else {
		ops = append(ops, Op{Kind: OpMount, Source: "proc", Target: "/proc", FSType: "proc", Flags: nosuidNodevNoexec})
	}

	ops = append(ops, Op{Kind: OpMount, Source: "tmpfs", Target: "/dev", FSType: "tmpfs",
		Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"})
	for _, d := range devices {
		ops = append(ops, Op{Kind: OpBind, Source: "/dev/" + d, Target: "/dev/" + d, File: true, Optional: d == "tty"})
	}
	for _, d := range in.Devices {
		ops = append(ops, Op{Kind: OpBind, Source: d, Target: d, File: true, Optional: true})
	}
	pts := "newinstance,ptmxmode=0666,mode=0620"
	if in.TTYGroup >= 0 {
		pts += fmt.Sprintf(",gid=%d", in.TTYGroup)
	}
	ops = append(ops,
		Op{Kind: OpMount, Source: "devpts", Target: "/dev/pts", FSType: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: pts},
		Op{Kind: OpSymlink, Source: "pts/ptmx", Target: "/dev/ptmx"},
		Op{Kind: OpMount, Source: "shm", Target: "/dev/shm", FSType: "tmpfs", Flags: nosuidNodevNoexec, Data: "mode=1777,size=65536k"},
		mqueue(in.HostIPC),
		Op{Kind: OpSymlink, Source: "/proc/self/fd", Target: "/dev/fd"},
		Op{Kind: OpSymlink, Source: "/proc/self/fd/0", Target: "/dev/stdin"},
		Op{Kind: OpSymlink, Source: "/proc/self/fd/1", Target: "/dev/stdout"},
		Op{Kind: OpSymlink, Source: "/proc/self/fd/2", Target: "/dev/stderr"},
	)

	sysBind := []Op{
		{Kind: OpBind, Source: "/sys", Target: "/sys"},
		{Kind: OpRemount, Target: "/sys"},
	}
	if in.HostNet {
		ops = append(ops, sysBind...)
	} else {
		ops = append(ops, Op{Kind: OpMount, Source: "sysfs", Target: "/sys", FSType: "sysfs",
			Flags: nosuidNodevNoexec | unix.MS_RDONLY, Fallback: sysBind})
	}

	for _, p := range in.Masked {
		ops = append(ops, Op{Kind: OpMask, Target: p, Optional: true})
	}
	for _, p := range in.ReadOnlyPaths {
		ops = append(ops, Op{Kind: OpRdonly, Target: p, Optional: true})
	}
	for _, name := range []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"} {
		if src, ok := in.EtcFiles[name]; ok {
			ops = append(ops, Op{Kind: OpBind, Source: src, Target: name, File: true})
		}
	}
	if in.ReadOnly {
		// As podman's --read-only-tmpfs (on by default): scratch space stays writable.
		for _, dir := range []string{"/tmp", "/var/tmp", "/run"} {
			if !mountedBy(dir, in) {
				ops = append(ops, Op{Kind: OpMount, Source: "tmpfs", Target: dir, FSType: "tmpfs",
					Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=1777"})
			}
		}
	}
	for _, t := range in.Tmpfs {
		flags, data, err := tmpfsOptions(t.Options)
		if err != nil {
			return nil, fmt.Errorf("--tmpfs %s: %w", t.Target, err)
		}
		ops = append(ops, Op{Kind: OpMount, Source: "tmpfs", Target: t.Target, FSType: "tmpfs", Flags: flags, Data: data})
	}
	for _, v := range in.Volumes {
		ops = append(ops, Op{Kind: OpBind, Source: v.Source, Target: v.Target, File: v.File})
		if v.ReadOnly {
			ops = append(ops, Op{Kind: OpRemount, Target: v.Target})
		}
	}
	if in.ReadOnly {
		ops = append(ops, Op{Kind: OpRemount, Target: "/"})
	}
	return ops, nil
}

func mqueue(host bool) Op {
	if host {
		return Op{Kind: OpBind, Source: "/dev/mqueue", Target: "/dev/mqueue", Optional: true}
	}
	return Op{Kind: OpMount, Source: "mqueue", Target: "/dev/mqueue", FSType: "mqueue", Flags: nosuidNodevNoexec}
}

func mountedBy(dir string, in PlanInput) bool {
	for _, t := range in.Tmpfs {
		if path.Clean(t.Target) == dir {
			return true
		}
	}
	for _, v := range in.Volumes {
		if path.Clean(v.Target) == dir {
			return true
		}
	}
	return false
}

// tmpfsFlags are the flags --tmpfs sets with "noX" and clears with "X".
var tmpfsFlags = map[string]uintptr{"exec": unix.MS_NOEXEC, "suid": unix.MS_NOSUID, "dev": unix.MS_NODEV}

// tmpfsOptions splits --tmpfs options into mount flags and data, as podman.
func tmpfsOptions(opts string) (uintptr, string, error) {
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	data := []string{}
	hasMode := false
	if opts != "" {
		for _, o := range strings.Split(opts, ",") {
			if f, ok := tmpfsFlags[strings.TrimPrefix(o, "no")]; ok && o != "" {
				if strings.HasPrefix(o, "no") {
					flags |= f
				} else {
					flags &^= f
				}
				continue
			}
			switch o {
			case "ro":
				flags |= unix.MS_RDONLY
			case "rw":
				flags &^= unix.MS_RDONLY
			case "":
			default:
				k, _, ok := strings.Cut(o, "=")
				if !ok || (k != "size" && k != "mode" && k != "nr_inodes" && k != "uid" && k != "gid") {
					return 0, "", fmt.Errorf("unknown tmpfs option %q (known: ro, rw, exec, noexec, suid, nosuid, dev, nodev, size=, mode=, nr_inodes=, uid=, gid=)", o)
				}
				hasMode = hasMode || k == "mode"
				data = append(data, o)
			}
		}
	}
	if !hasMode {
		data = append(data, "mode=1777")
	}
	return flags, strings.Join(data, ","), nil
}

// ProcMasked reports whether anything is mounted over part of /proc, as
// an outer container engine masks /proc/kcore, /proc/keys and the like. In
// a user namespace the kernel then refuses a fresh proc mount (it must not
// reveal what the masks hide: mnt_already_visible in fs/namespace.c), so
// a PID namespace of rl's own cannot have its /proc. Mounts on the
// directories procfs keeps permanently empty for them hide nothing and do
// not count: binfmt_misc's (systemd's automount puts autofs there on most
// desktops), nfsd's and openprom's. mountinfo is /proc/self/mountinfo's
// content.
func ProcMasked(mountinfo string) bool {
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], "/proc/") && !EmptyProcDir(f[4]) {
			return true
		}
	}
	return false
}

// EmptyProcDir reports whether path is one of the directories procfs
// creates permanently empty, as places to mount other filesystems
// (register_sysctl_mount_point and proc_create_mount_point in the kernel):
// a mount there hides nothing.
func EmptyProcDir(path string) bool {
	switch path {
	case "/proc/sys/fs/binfmt_misc", "/proc/fs/nfsd", "/proc/openprom":
		return true
	}
	return false
}
