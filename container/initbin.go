package container

import (
	"embed"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/rlcontainers/rl/container/initproc"
	"golang.org/x/sys/unix"
)

// initbin holds rl-init when the Makefile built it (see initbin/README.md).
//
//go:embed initbin
var initbin embed.FS

// initBinary is rl-init in a sealed memfd, prepared while the supervisor
// does other work.
type initBinary struct {
	done chan struct{}
	f    *os.File
	err  error
}

// prepareInit starts writing rl-init to a sealed memfd. The small rl-init
// starts in ~1 ms where rl's own package inits take ~8 ms, and a sealed
// memfd cannot be overwritten by the container (the CVE-2019-5736 lesson:
// container root is the user, who owns the rl binary on disk).
func prepareInit() *initBinary {
	b := &initBinary{done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.f, b.err = sealedInit()
	}()
	return b
}

func sealedInit() (*os.File, error) {
	src, err := initbin.Open("initbin/rl-init")
	if err != nil {
		return nil, nil // built without rl-init: re-exec rl itself
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("rl-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "rl-init")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing rl-init to a memfd: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		f.Close()
		return nil, fmt.Errorf("sealing the rl-init memfd: %w", err)
	}
	return f, nil
}

// command waits for the memfd and returns the command that becomes the
// container's init.
func (b *initBinary) command() (*exec.Cmd, error) {
	<-b.done
	if b.err != nil {
		return nil, b.err
	}
	var cmd *exec.Cmd
	if b.f == nil {
		cmd = exec.Command("/proc/self/exe", initproc.Arg)
	} else {
		cmd = exec.Command(fmt.Sprintf("/proc/self/fd/%d", b.f.Fd()))
	}
	cmd.Args[0] = "rl-init"
	return cmd, nil
}

// close releases the memfd once the init has started.
func (b *initBinary) close() {
	<-b.done
	if b.f != nil {
		b.f.Close()
	}
}
