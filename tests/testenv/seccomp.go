package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file has the seccomp filters tests/cmd/seccompwrap installs before
// it execs rl, each standing for an environment rl must meet:
//
//   - docker-userns: the part of Docker's default seccomp profile that stops
//     rootless containers inside containers: without CAP_SYS_ADMIN, unshare
//     and clone with CLONE_NEWUSER, and setns, are refused with EPERM, and clone3 (whose
//     flags a classic BPF filter cannot read) fails with ENOSYS so that
//     callers fall back to clone.
//   - linux-4.18: the system calls of Linux 4.18 (RHEL 8) only: every call
//     added since (numbers from 424 up, the same on every architecture:
//     pidfd_*, io_uring_*, open_tree, move_mount, fs*, clone3, close_range,
//     openat2, faccessat2, mount_setattr, ...) fails with ENOSYS, as on that
//     kernel, or under a container profile older than the call.
//   - old-profile: the same calls fail with EPERM, as under a profile whose
//     default action is an errno (Docker's before 20.10).

// Offsets into struct seccomp_data: int nr; __u32 arch; __u64 ip;
// __u64 args[6]. The low 32 bits of args[0] sit at 16 on little-endian
// machines (all the architectures auditArch knows).
const (
	seccompDataNR    = 0
	seccompDataArch  = 4
	seccompDataArg0  = 16
	seccompRetAllow  = 0x7fff0000 // SECCOMP_RET_ALLOW
	seccompRetErrno  = 0x00050000 // SECCOMP_RET_ERRNO | errno
	bpfLdAbsW        = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeqK          = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJsetK         = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	bpfJgeK          = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	bpfRetK          = unix.BPF_RET | unix.BPF_K
	auditArchX86_64  = 0xc000003e
	auditArchAArch64 = 0xc00000b7
)

func auditArch() (uint32, error) {
	switch runtime.GOARCH {
	case "amd64":
		return auditArchX86_64, nil
	case "arm64":
		return auditArchAArch64, nil
	}
	return 0, fmt.Errorf("seccompwrap: no seccomp audit arch for %s", runtime.GOARCH)
}

// DenyUserNSFilter is the classic BPF program: clone3 -> ENOSYS;
// unshare(flags) and clone(flags, ...) with CLONE_NEWUSER in flags -> EPERM;
// setns -> EPERM (Docker's profile allows it only with CAP_SYS_ADMIN: a
// user namespace made outside, rl's keeper, cannot be entered either);
// everything else (and other architectures' calls) allowed.
func DenyUserNSFilter() ([]unix.SockFilter, error) {
	arch, err := auditArch()
	if err != nil {
		return nil, err
	}
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jump := func(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
	}
	return []unix.SockFilter{
		/* 0 */ stmt(bpfLdAbsW, seccompDataArch),
		/* 1 */ jump(bpfJeqK, arch, 0, 10), // other arch: 12 (allow)
		/* 2 */ stmt(bpfLdAbsW, seccompDataNR),
		/* 3 */ jump(bpfJeqK, unix.SYS_CLONE3, 0, 1),
		/* 4 */ stmt(bpfRetK, seccompRetErrno|uint32(unix.ENOSYS)),
		/* 5 */ jump(bpfJeqK, unix.SYS_SETNS, 4, 0), // to 10 (EPERM)
		/* 6 */ jump(bpfJeqK, unix.SYS_UNSHARE, 1, 0), // to 8
		/* 7 */ jump(bpfJeqK, unix.SYS_CLONE, 0, 4), // not clone: 12 (allow)
		/* 8 */ stmt(bpfLdAbsW, seccompDataArg0),
		/* 9 */ jump(bpfJsetK, unix.CLONE_NEWUSER, 0, 2), // no NEWUSER: 12
		/* 10 */ stmt(bpfRetK, seccompRetErrno|uint32(unix.EPERM)),
		/* 11 */ stmt(bpfRetK, seccompRetAllow), // (unused padding target)
		/* 12 */ stmt(bpfRetK, seccompRetAllow),
	}, nil
}

// firstSyscallAfter418 is pidfd_send_signal's number (Linux 5.1): from it
// on, system calls have one number on every architecture.
const firstSyscallAfter418 = 424

// Linux418Filter is the classic BPF program: every call numbered from 424
// on -> ENOSYS; everything else (and other architectures' calls) allowed.
func Linux418Filter() ([]unix.SockFilter, error) { return newerCallsFilter(unix.ENOSYS) }

// OldProfileFilter is Linux418Filter with EPERM, what a profile whose
// default action is SCMP_ACT_ERRNO (Docker's before 20.10) returns for a
// call written after it.
func OldProfileFilter() ([]unix.SockFilter, error) { return newerCallsFilter(unix.EPERM) }

func newerCallsFilter(errno unix.Errno) ([]unix.SockFilter, error) {
	arch, err := auditArch()
	if err != nil {
		return nil, err
	}
	return []unix.SockFilter{
		/* 0 */ {Code: bpfLdAbsW, K: seccompDataArch},
		/* 1 */ {Code: bpfJeqK, K: arch, Jt: 0, Jf: 3}, // other arch: 5 (allow)
		/* 2 */ {Code: bpfLdAbsW, K: seccompDataNR},
		/* 3 */ {Code: bpfJgeK, K: firstSyscallAfter418, Jt: 0, Jf: 1}, // older: 5
		/* 4 */ {Code: bpfRetK, K: seccompRetErrno | uint32(errno)},
		/* 5 */ {Code: bpfRetK, K: seccompRetAllow},
	}, nil
}

// Filters are the profiles by name.
var Filters = map[string]func() ([]unix.SockFilter, error){
	"docker-userns": DenyUserNSFilter,
	"linux-4.18":    Linux418Filter,
	"old-profile":   OldProfileFilter,
}

// CheckInstalled reports an error unless profile's filter is in force.
// For linux-4.18 and old-profile it tries close_range of an empty range (Linux 5.9), which
// returns 0 without the filter; docker-userns's refusal is what the tests
// check themselves (unshare -U), since trying it here would succeed
// without the filter and leave this process in a new user namespace.
func CheckInstalled(profile string) error {
	want := map[string]error{"linux-4.18": unix.ENOSYS, "old-profile": unix.EPERM}[profile]
	if want == nil {
		return nil
	}
	if err := unix.CloseRange(^uint(0), ^uint(0), 0); err != want {
		return fmt.Errorf("the %s filter is not in force: close_range returned %v, want %v", profile, err, want)
	}
	return nil
}

// Install installs prog on every thread. Without CAP_SYS_ADMIN the kernel
// takes a filter only with no_new_privs, which also stops setuid helpers
// (newuidmap) from gaining their privileges; root installs it without, so
// that a user it switches to afterwards keeps both the filter and setuid.
func Install(prog []unix.SockFilter) error {
	if os.Geteuid() != 0 {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	}
	runtime.KeepAlive(prog)
	return nil
}

// BuildSeccompWrap builds tests/cmd/seccompwrap (static) into dir and
// returns its path, mode 0755. moduleRoot is the rl checkout.
func BuildSeccompWrap(moduleRoot, dir string) (string, error) {
	out := filepath.Join(dir, "seccompwrap")
	cmd := exec.Command("go", "build", "-tags", "containers_image_openpgp", "-o", out, "./tests/cmd/seccompwrap")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./tests/cmd/seccompwrap: %w\n%s", err, b)
	}
	return out, os.Chmod(out, 0o755)
}
