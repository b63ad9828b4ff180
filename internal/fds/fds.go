// Package fds marks a process's descriptors close-on-exec.
package fds

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// CloseOnExecFrom marks every descriptor from lowfd up close-on-exec:
// close_range(CLOSE_RANGE_CLOEXEC) where the kernel has it (5.11), and
// otherwise (an older kernel, or a seccomp profile older than the call)
// each descriptor /proc/self/fd lists.
func CloseOnExecFrom(lowfd int) error {
	err := unix.CloseRange(uint(lowfd), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	switch err {
	case nil:
		return nil
	case unix.ENOSYS, unix.EINVAL, unix.EPERM:
		return closeOnExecListed(lowfd)
	}
	return fmt.Errorf("close_range: %w", err)
}

// closeOnExecListed is CloseOnExecFrom through /proc/self/fd.
func closeOnExecListed(lowfd int) error {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("listing open descriptors: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("listing open descriptors: %w", err)
	}
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd < lowfd {
			continue
		}
		// The directory's own descriptor is among them; it closes below.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return fmt.Errorf("marking fd %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}
