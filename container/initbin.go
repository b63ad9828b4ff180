package container

import (
	"embed"
	"fmt"
	"os"
	"os/exec"

	"github.com/rlcontainers/rl/container/initproc"
	"golang.org/x/sys/unix"
)

// initbin holds rl-init when the Makefile built it (see initbin/README.md).
//
//go:embed initbin
var initbin embed.FS

// initCommand returns the command that becomes the container's init, and a
// cleanup to call once it started. The small rl-init is exec'd from a sealed
// memfd: it starts in ~1 ms where rl's own package inits take ~8 ms, and a
// sealed memfd cannot be overwritten by the container (the CVE-2019-5736
// lesson: container root is the user, who owns the rl binary on disk).
func initCommand() (*exec.Cmd, func(), error) {
	bin, err := initbin.ReadFile("initbin/rl-init")
	if err != nil {
		cmd := exec.Command("/proc/self/exe", initproc.Arg)
		cmd.Args[0] = "rl-init"
		return cmd, func() {}, nil
	}
	fd, err := unix.MemfdCreate("rl-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "rl-init")
	if _, err := f.Write(bin); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("writing rl-init to a memfd: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("sealing the rl-init memfd: %w", err)
	}
	cmd := exec.Command(fmt.Sprintf("/proc/self/fd/%d", fd))
	cmd.Args[0] = "rl-init"
	return cmd, func() { f.Close() }, nil
}
