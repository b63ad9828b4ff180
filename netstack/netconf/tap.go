package netconf

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The TAP's frames, as rl's TAP (netstack/link) gives them: each after a
// virtio_net_hdr (IFF_VNET_HDR; TUNSETVNETHDRSZ left at its default), a
// GSO frame up to 64 KiB plus a tail.
const (
	VnetHdrSize = 10
	GSOMaxSize  = 1 << 16
	TailSize    = 4096 // a GSO frame's bytes beyond 64 KiB
)

// PollTAP says whether the TAP fd's frames carry a vnet header and returns
// a non-blocking duplicate of it in Go's netpoller (a duplicate, so that an
// error leaves fd to the caller; os.File closes its fd, at the latest when
// collected).
func PollTAP(fd int) (f *os.File, vnet bool, err error) {
	if ifr, err := unix.NewIfreq(""); err == nil && unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr) == nil {
		vnet = ifr.Uint16()&unix.IFF_VNET_HDR != 0
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, false, err
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, false, err
	}
	f = os.NewFile(uintptr(dup), "tap")
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		// Not in the netpoller: a reader could not wait for frames.
		f.Close()
		return nil, false, fmt.Errorf("fd %d cannot be polled: %w", fd, err)
	}
	return f, vnet, nil
}
