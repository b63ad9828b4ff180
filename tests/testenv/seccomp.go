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

// This file emulates the part of Docker's default seccomp profile that
// stops rootless containers inside containers: without CAP_SYS_ADMIN,
// unshare and clone with CLONE_NEWUSER are refused with EPERM, and clone3
// (whose flags a classic BPF filter cannot read) fails with ENOSYS so that
// callers fall back to clone. tests/cmd/denyuserns installs it and execs rl.

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
	return 0, fmt.Errorf("denyuserns: no seccomp audit arch for %s", runtime.GOARCH)
}

// DenyUserNSFilter is the classic BPF program: clone3 -> ENOSYS;
// unshare(flags) and clone(flags, ...) with CLONE_NEWUSER in flags -> EPERM;
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
		/* 1 */ jump(bpfJeqK, arch, 0, 9), // other arch: 11 (allow)
		/* 2 */ stmt(bpfLdAbsW, seccompDataNR),
		/* 3 */ jump(bpfJeqK, unix.SYS_CLONE3, 0, 1),
		/* 4 */ stmt(bpfRetK, seccompRetErrno|uint32(unix.ENOSYS)),
		/* 5 */ jump(bpfJeqK, unix.SYS_UNSHARE, 1, 0), // to 7
		/* 6 */ jump(bpfJeqK, unix.SYS_CLONE, 0, 4), // not clone: 11 (allow)
		/* 7 */ stmt(bpfLdAbsW, seccompDataArg0),
		/* 8 */ jump(bpfJsetK, unix.CLONE_NEWUSER, 0, 2), // no NEWUSER: 11
		/* 9 */ stmt(bpfRetK, seccompRetErrno|uint32(unix.EPERM)),
		/* 10 */ stmt(bpfRetK, seccompRetAllow), // (unused padding target)
		/* 11 */ stmt(bpfRetK, seccompRetAllow),
	}, nil
}

// InstallDenyUserNS sets no_new_privs (an unprivileged process may only
// install a filter with it) and installs DenyUserNSFilter on every thread.
func InstallDenyUserNS() error {
	prog, err := DenyUserNSFilter()
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	}
	runtime.KeepAlive(prog)
	return nil
}

// BuildDenyUserNS builds tests/cmd/denyuserns (static) into dir and returns
// its path, mode 0755. moduleRoot is the rl checkout.
func BuildDenyUserNS(moduleRoot, dir string) (string, error) {
	out := filepath.Join(dir, "denyuserns")
	cmd := exec.Command("go", "build", "-tags", "containers_image_openpgp", "-o", out, "./tests/cmd/denyuserns")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./tests/cmd/denyuserns: %w\n%s", err, b)
	}
	return out, os.Chmod(out, 0o755)
}
