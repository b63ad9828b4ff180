package container

import (
	"fmt"
	"os"
	"strings"

	"github.com/rlcontainers/rl/rootfs"
	"github.com/rlcontainers/rl/rootfs/mounts"
	"golang.org/x/sys/unix"
)

// Namespace kinds a container may share, with their clone flags (docker's
// setNamespaces: net, pid, ipc, uts and cgroup).
var shareable = []struct {
	kind string
	flag uintptr
}{
	{"net", unix.CLONE_NEWNET},
	{"pid", unix.CLONE_NEWPID},
	{"ipc", unix.CLONE_NEWIPC},
	{"uts", unix.CLONE_NEWUTS},
	{"cgroup", unix.CLONE_NEWCGROUP},
}

// NamespaceTarget returns the container a mode joins ("container:NAME"
// gives NAME), or "".
func NamespaceTarget(mode string) string {
	if t, ok := strings.CutPrefix(mode, "container:"); ok {
		return t
	}
	return ""
}

// ValidNamespaceMode checks a --pid, --ipc, --uts or --cgroupns value.
func ValidNamespaceMode(kind, mode string) error {
	switch {
	case mode == "" || mode == "private" || mode == "host":
		return nil
	case mode == "shareable" && kind == "ipc":
		return nil
	case NamespaceTarget(mode) != "":
		return nil
	}
	return fmt.Errorf("invalid --%s %q: use private, host or container:NAME", flagName(kind), mode)
}

func flagName(kind string) string {
	if kind == "cgroup" {
		return "cgroupns"
	}
	if kind == "net" {
		return "network"
	}
	return kind
}

// nsJoin is a namespace of another container to enter before the clone.
type nsJoin struct {
	kind string
	flag int
	fd   *os.File
}

// nsPlan is how the container gets each namespace.
type nsPlan struct {
	flags uintptr // the namespaces it makes of its own
	joins []nsJoin
	host  map[string]bool
}

func (p *nsPlan) close() {
	for _, j := range p.joins {
		j.fd.Close()
	}
}

// planNamespaces decides, per kind, a new namespace (private), the host's
// (the supervisor runs in the host's namespaces but user and mount), or
// another running container's, opened now so it cannot vanish meanwhile.
// Joining needs the target's user namespace: rl starts such a container's
// supervisor inside it (see ctl.Spawn).
func planNamespaces(rt *Runtime, rec rootfs.Record) (*nsPlan, error) {
	p := &nsPlan{flags: unix.CLONE_NEWNS, host: map[string]bool{}}
	for _, s := range shareable {
		mode := rec.Namespaces[s.kind]
		if s.kind == "net" {
			mode = netNamespaceMode(mode)
		}
		if s.kind == "pid" && (mode == "" || mode == "private") {
			var err error
			if mode, err = pidMode(rt, mode); err != nil {
				return nil, err
			}
		}
		switch target := NamespaceTarget(mode); {
		case mode == "host":
			p.host[s.kind] = true
		case target != "":
			fd, err := openNamespace(rt, target, s.kind)
			if err != nil {
				p.close()
				return nil, err
			}
			p.joins = append(p.joins, nsJoin{kind: s.kind, flag: int(s.flag), fd: fd})
		default:
			p.flags |= s.flag
		}
	}
	return p, nil
}

// netNamespaceMode maps a --network value to a namespace mode.
func netNamespaceMode(network string) string {
	switch {
	case network == NetHost:
		return "host"
	case NamespaceTarget(network) != "":
		return network
	}
	return "private"
}

func openNamespace(rt *Runtime, ref, kind string) (*os.File, error) {
	c, err := rootfs.LookupContainer(rt.Store, ref)
	if err != nil {
		return nil, fmt.Errorf("--%s container:%s: %w", flagName(kind), ref, err)
	}
	st := rootfs.ReadState(rt.Store, c.ID)
	if st.Status != "running" || st.Pid == 0 {
		return nil, fmt.Errorf("--%s container:%s: that container is not running: start it first (rl start %s)", flagName(kind), ref, ref)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", st.Pid, kind))
	if err != nil {
		return nil, fmt.Errorf("--%s container:%s: %w", flagName(kind), ref, err)
	}
	return f, nil
}

// enter joins the planned namespaces on the calling thread (locked; the
// clone that follows inherits them).
func (p *nsPlan) enter() error {
	for _, j := range p.joins {
		if err := unix.Setns(int(j.fd.Fd()), j.flag); err != nil {
			hint := ""
			if err == unix.EPERM {
				hint = " (it belongs to another user namespace: join containers that share one)"
			}
			return fmt.Errorf("joining another container's %s namespace: %w%s", j.kind, err, hint)
		}
	}
	return nil
}

// joined is the plan's join of kind, or nil.
func (p *nsPlan) joined(kind string) *nsJoin {
	for i := range p.joins {
		if p.joins[i].kind == kind {
			return &p.joins[i]
		}
	}
	return nil
}

// etcFile reads /etc/NAME of the container whose namespace j is, through
// the process the namespace was opened through (/proc/PID/root/etc/NAME
// is what that container sees: rl's file, bind-mounted, or its image's);
// false without j.
func (j *nsJoin) etcFile(name string) (string, bool) {
	if j == nil {
		return "", false
	}
	pid := strings.TrimPrefix(strings.TrimSuffix(j.fd.Name(), "/ns/"+j.kind), "/proc/")
	b, err := os.ReadFile("/proc/" + pid + "/root/etc/" + name)
	return string(b), err == nil
}

// hostname reads the hostname of a joined UTS namespace.
func (j *nsJoin) hostname() string {
	s, _ := j.etcFile("hostname")
	return strings.TrimSpace(s)
}

// pidMode adapts the PID namespace to a masked /proc (an outer container's
// masks, where a fresh proc mount is refused): when the user left --pid
// unset, the container shares the outer PID namespace and binds the outer
// /proc, with a notice; --pid private fails with the fix.
func pidMode(rt *Runtime, mode string) (string, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil || !mounts.ProcMasked(string(mi)) {
		return "private", nil
	}
	const fix = "give the outer container --security-opt unmask=/proc/* (docker, podman) or securityContext.procMount: Unmasked (Kubernetes)"
	if mode == "private" {
		return "", fmt.Errorf("--pid private: a fresh /proc is refused because /proc is masked (an outer container's masks over /proc/kcore and the like): %s, or run with --pid host", fix)
	}
	rt.warn("/proc is masked (an outer container's masks), so a fresh /proc is refused: running without a PID namespace of its own; ps shows the outer processes. To isolate PIDs, %s", fix)
	return "host", nil
}
