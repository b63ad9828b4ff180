package netconf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNamespace: the container's network namespace could not be entered.
var ErrNamespace = errors.New("entering the container's network namespace")

// InNamespace runs f on a thread of its own in the network namespace
// netns (an open /proc/PID/ns/net) and returns f's result, or the error of
// entering it. setns affects the calling thread only, and the runtime
// discards a thread whose goroutine ends locked to it: no other goroutine
// ever runs in that namespace. Sockets f makes stay in it.
func InNamespace(netns *os.File, f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Setns(int(netns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- fmt.Errorf("%w: %v", ErrNamespace, err)
			return
		}
		ch <- f()
	}()
	return <-ch
}

// GuestDialTimeout bounds a connect inside the container's namespace; on
// its loopback it completes or is refused at once.
const GuestDialTimeout = 10 * time.Second

// DialFromLoopback connects, inside the container's network namespace
// netns, from the container's own loopback to each of its addresses in
// targets (guest address and port) in turn, and returns the first
// connection made; a service listening on the container's loopback only is
// not reached. The error is the last target's (refused: nothing listens).
// bound, unless nil, learns each attempt's local address before its
// connect starts.
func DialFromLoopback(ctx context.Context, netns *os.File, targets []netip.AddrPort, bound func(netip.AddrPort)) (*net.TCPConn, error) {
	var c *net.TCPConn
	err := InNamespace(netns, func() error {
		var err error
		for _, t := range targets {
			d := net.Dialer{Timeout: GuestDialTimeout, ControlContext: func(_ context.Context, _, _ string, rc syscall.RawConn) error {
				return bindLoopback(rc, t.Addr(), bound)
			}}
			var conn net.Conn
			if conn, err = d.DialContext(ctx, "tcp", t.String()); err == nil {
				c = conn.(*net.TCPConn)
				return nil
			}
		}
		return err
	})
	return c, err
}

// bindLoopback binds the socket rc to the loopback address of to's
// family, any port, and tells bound the address.
func bindLoopback(rc syscall.RawConn, to netip.Addr, bound func(netip.AddrPort)) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
		if lo := LoopbackFor(to); lo.Is6() {
			sa = &unix.SockaddrInet6{Addr: lo.As16()}
		}
		if err = unix.Bind(int(fd), sa); err != nil || bound == nil {
			return
		}
		var got unix.Sockaddr
		if got, err = unix.Getsockname(int(fd)); err != nil {
			return
		}
		bound(SockaddrAddrPort(got))
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// LoopbackFor is the loopback address of a's family.
func LoopbackFor(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		return netip.IPv6Loopback()
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// SockaddrAddrPort is sa's address, IPv4 unmapped (the zero value for
// another family).
func SockaddrAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}
