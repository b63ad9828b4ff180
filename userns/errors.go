package userns

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrParentFailed is what Join returns in the child when the parent could not
// map the namespace. The parent reports the error itself, so the child should
// exit 125 without printing anything.
var ErrParentFailed = errors.New("userns: the parent could not set up the user namespace")

// Error is a failure to enter the user namespace, returned by Run (in the
// parent): the operation, its cause, and for a known kernel refusal the fix.
type Error struct {
	Op  string // e.g. "clone(CLONE_NEWUSER)", "write /proc/42/uid_map"
	Err error  // the cause, often a syscall.Errno
	Fix string // what the user can do; empty if unknown
}

func (e *Error) Error() string {
	s := "userns: " + e.Op + ": " + e.Err.Error()
	if e.Fix != "" {
		s += "; fix: " + e.Fix
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// procSys reads a sysctl from /proc/sys; a variable so tests can fake it.
var procSys = func(name string) (string, bool) {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// cloneRefusalFix explains why clone(CLONE_NEWUSER) failed with err, called
// from the parent, in the host's namespaces. It names the sysctl that is set
// against us when it can read one; otherwise it lists the usual suspects.
// Kernel: EPERM/EACCES come from the Debian/Ubuntu sysctl, AppArmor or a seccomp
// filter; ENOSPC from user.max_user_namespaces (create_user_ns -> inc_ucount).
func cloneRefusalFix(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) || (errno != syscall.EPERM && errno != syscall.EACCES && errno != syscall.ENOSPC) {
		return ""
	}
	if v, ok := procSys("user.max_user_namespaces"); ok && v == "0" {
		return "user namespaces are disabled: sudo sysctl -w user.max_user_namespaces=28633"
	}
	if errno == syscall.ENOSPC {
		return "the user namespace limit is reached: raise it with sudo sysctl -w user.max_user_namespaces=28633"
	}
	if v, ok := procSys("kernel.unprivileged_userns_clone"); ok && v == "0" {
		return "unprivileged user namespaces are disabled: sudo sysctl -w kernel.unprivileged_userns_clone=1"
	}
	if v, ok := procSys("kernel.apparmor_restrict_unprivileged_userns"); ok && v == "1" {
		return "AppArmor restricts unprivileged user namespaces: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give rl an AppArmor profile with \"userns,\""
	}
	if n, ok := seccompFilters(); ok && n > 0 && errno == syscall.EPERM {
		// The sysctls allow it, and rl runs under a seccomp filter (the
		// one a container engine installs): that filter said no.
		return fmt.Sprintf("rl runs under %d seccomp filter(s) that refuse clone(CLONE_NEWUSER) — in a container, Docker's default profile does: run the outer container with --security-opt seccomp=unconfined (Kubernetes: securityContext.seccompProfile.type: Unconfined), or a profile that allows unshare and clone with CLONE_NEWUSER", n)
	}
	return "check user.max_user_namespaces (must be > 0), kernel.unprivileged_userns_clone (must be 1) and kernel.apparmor_restrict_unprivileged_userns (must be 0); " +
		"otherwise a seccomp filter blocks clone(CLONE_NEWUSER): in Docker, run with --security-opt seccomp=unconfined"
}

// procSelfStatus reads /proc/self/status; a variable so tests can fake it.
var procSelfStatus = func() ([]byte, error) { return os.ReadFile("/proc/self/status") }

// seccompFilters is how many seccomp filters this process runs under
// (Seccomp_filters in /proc/self/status, linux 5.9), when it can tell.
func seccompFilters() (int, bool) {
	b, err := procSelfStatus()
	if err != nil {
		return 0, false
	}
	mode, filters := ParseSeccompStatus(string(b))
	switch {
	case filters >= 0:
		return filters, true
	case mode == 2:
		return 1, true
	case mode >= 0:
		return 0, true
	}
	return 0, false
}

// ParseSeccompStatus reads Seccomp: (the mode: 0 none, 1 strict, 2 filter)
// and Seccomp_filters: (kernel >= 5.9) from /proc/PID/status text; -1 for
// each the text does not show.
func ParseSeccompStatus(text string) (mode, filters int) {
	mode, filters = -1, -1
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		switch k {
		case "Seccomp":
			mode = n
		case "Seccomp_filters":
			filters = n
		}
	}
	return mode, filters
}
