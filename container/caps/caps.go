// Package caps is the capability sets a container's processes get: podman's
// default list, changed by --cap-add and --cap-drop, all of them with
// --privileged. It is applied per thread (capabilities are a thread's in
// Linux): by the container's init before it execs the workload, and by the
// supervisor's exec thread before it forks an rl exec.
package caps

import (
	"fmt"
	"sort"
	"strings"

	"github.com/moby/sys/capability"
)

// Default is podman's default_capabilities (containers.conf): what root in
// a container keeps. CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_NET_ADMIN and the
// rest are gone; the user namespace bounds all of them anyway.
var Default = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
	"CAP_SETUID", "CAP_SYS_CHROOT",
}

// byName maps "CAP_CHOWN" to the capability the running kernel knows.
func byName() map[string]capability.Cap {
	last, _ := capability.LastCap()
	m := map[string]capability.Cap{}
	for _, c := range capability.List() {
		if c <= last {
			m["CAP_"+strings.ToUpper(c.String())] = c
		}
	}
	return m
}

// All is every capability of the running kernel, by name.
func All() []string {
	var out []string
	for n := range byName() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// normalize turns "chown", "CHOWN" or "cap_chown" into "CAP_CHOWN".
func normalize(name string) string {
	n := strings.ToUpper(name)
	if n == "ALL" {
		return n
	}
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	return n
}

// Resolve is the container's capability set: the default list, or all
// with privileged; then --cap-drop (ALL drops everything) and --cap-add
// (ALL adds everything), as docker applies them: drops first.
func Resolve(add, drop []string, privileged bool) ([]string, error) {
	known := byName()
	set := map[string]bool{}
	base := Default
	if privileged {
		base = All()
	}
	for _, n := range base {
		if _, ok := known[n]; ok {
			set[n] = true
		}
	}
	check := func(flag, n string) (string, error) {
		n = normalize(n)
		if n == "ALL" {
			return n, nil
		}
		if _, ok := known[n]; !ok {
			return "", fmt.Errorf("%s: unknown capability %q: see capabilities(7), e.g. NET_ADMIN or SYS_PTRACE", flag, n)
		}
		return n, nil
	}
	for _, d := range drop {
		n, err := check("--cap-drop", d)
		if err != nil {
			return nil, err
		}
		if n == "ALL" {
			set = map[string]bool{}
		} else {
			delete(set, n)
		}
	}
	for _, a := range add {
		n, err := check("--cap-add", a)
		if err != nil {
			return nil, err
		}
		if n == "ALL" {
			for k := range known {
				set[k] = true
			}
		} else {
			set[n] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Bound drops from the calling thread's bounding set every capability not
// in keep, so nothing it execs can gain one back (a setuid or file-capable
// binary included). It needs CAP_SETPCAP: call it before giving up root.
func Bound(keep []string) error {
	want := map[capability.Cap]bool{}
	known := byName()
	for _, n := range keep {
		if c, ok := known[n]; ok {
			want[c] = true
		}
	}
	var drop []capability.Cap
	for _, c := range known {
		if !want[c] {
			drop = append(drop, c)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	if err := capability.DropBound(drop...); err != nil {
		return fmt.Errorf("dropping capabilities from the bounding set: %w", err)
	}
	return nil
}

// Limit sets the calling thread's effective and permitted sets to keep
// (for a root workload: what it execs with) and clears the inheritable and
// ambient sets: inheritable capabilities would pass to file-capable
// binaries a non-root process runs (CVE-2022-24769).
func Limit(keep []string) error {
	c, err := capability.NewPid2(0)
	if err != nil {
		return err
	}
	known := byName()
	c.Clear(capability.CAPS)
	for _, n := range keep {
		if k, ok := known[n]; ok {
			c.Set(capability.EFFECTIVE|capability.PERMITTED, k)
		}
	}
	if err := c.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("setting capabilities: %w", err)
	}
	return capability.ResetAmbient()
}
