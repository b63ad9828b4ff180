package fds

import (
	"testing"

	"golang.org/x/sys/unix"
)

// open returns a descriptor without close-on-exec, closed at the test's end.
func open(t *testing.T) int {
	t.Helper()
	fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func cloexec(t *testing.T, fd int) bool {
	t.Helper()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	return flags&unix.FD_CLOEXEC != 0
}

func TestCloseOnExec(t *testing.T) {
	for name, f := range map[string]func(int) error{
		"close_range": CloseOnExecFrom,
		"proc":        closeOnExecListed,
	} {
		t.Run(name, func(t *testing.T) {
			low, high := open(t), open(t)
			if cloexec(t, low) || cloexec(t, high) {
				t.Fatal("unix.Open set close-on-exec")
			}
			if err := f(high); err != nil {
				t.Fatal(err)
			}
			if cloexec(t, low) {
				t.Errorf("fd %d below the range was marked", low)
			}
			if !cloexec(t, high) {
				t.Errorf("fd %d was not marked", high)
			}
		})
	}
}
