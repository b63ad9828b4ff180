package netstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Published ports spliced on loopback.
//
// A client on the host's own loopback (127.0.0.0/8, ::1) gains nothing from
// the user-mode stack: the stack could only show it as the gateway, and the
// bytes would cross two TCP stacks and the TAP. Such a connection is instead
// made from inside the container's network namespace, from its loopback
// (127.0.0.1, ::1) to the container's address (10.0.2.100, fd00::100): for
// TCP the two kernel sockets are then joined with splice(2), so the bytes
// never enter user space and the path runs at close to loopback speed
// (pasta splices the same way); UDP datagrams are relayed between the two
// sockets. The container sees the client as 127.0.0.1 (::1). A service that
// listens on the container's 127.0.0.1 only is still not published, as
// through the stack. Clients from other addresses take the stack and are
// seen with their own address.

// spliceDialTimeout bounds a connect inside the container's namespace; on
// loopback it completes or is refused at once.
const spliceDialTimeout = 10 * time.Second

// SpliceLoopback makes published ports (TCP and UDP) take host loopback
// clients through the container's network namespace netns (an open
// /proc/PID/ns/net), which the stack then owns and closes. Without it, or
// when entering the namespace fails, every client takes the stack.
func (n *Stack) SpliceLoopback(netns *os.File) {
	if old := n.guestNS.Swap(netns); old != nil {
		old.Close()
	}
}

// closeGuestNS drops the namespace (Close).
func (n *Stack) closeGuestNS() {
	if old := n.guestNS.Swap(nil); old != nil {
		old.Close()
	}
}

// errNoSplice: the connection takes the stack instead.
var errNoSplice = errors.New("netstack: no loopback splice")

// dialGuestNS connects to the container's port from its own loopback, inside
// its network namespace, trying the address families in guestPeer's order
// (UDP, with no handshake to tell, takes the first). network is "tcp" or
// "udp". It returns errNoSplice when the client is not on loopback or the
// namespace cannot be entered; other errors are the container's answer
// (refused: nothing listens).
func (n *Stack) dialGuestNS(network string, client netip.AddrPort, port uint16) (net.Conn, error) {
	g := n.guestNS.Load()
	if g == nil || !client.Addr().Unmap().IsLoopback() {
		return nil, errNoSplice
	}
	// The container's addresses in guestPeer's order, each from the
	// container's loopback of its family.
	type target struct {
		local  netip.Addr
		remote netip.AddrPort
	}
	var targets []target
	for _, p := range n.guestPeer(client, port) {
		local := netip.AddrFrom4([4]byte{127, 0, 0, 1})
		if p[1].Addr().Is6() {
			local = netip.IPv6Loopback()
		}
		targets = append(targets, target{local, p[1]})
	}
	if network == "udp" {
		targets = targets[:1]
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	// setns affects the calling thread only: the dial runs on a thread of
	// its own, which the runtime discards when the goroutine ends still
	// locked to it, so no other goroutine ever runs in the container's
	// namespace. The socket stays in the namespace it was made in.
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(g.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("%w: entering the container's network namespace: %v", errNoSplice, err)}
			return
		}
		if network == "udp" {
			t := targets[0]
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: t.local.AsSlice()})
			if err != nil {
				ch <- result{err: err}
				return
			}
			ch <- result{c: udpTo{c, t.remote}}
			return
		}
		var err error
		for _, t := range targets {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: t.local.AsSlice()}, Timeout: spliceDialTimeout}
			var c net.Conn
			if c, err = d.DialContext(n.ctx, network, t.remote.String()); err == nil {
				ch <- result{c: c}
				return
			}
		}
		ch <- result{err: err}
	}()
	r := <-ch
	return r.c, r.err
}

// udpTo is a UDP socket on the container's loopback that sends to the
// container's address and takes replies from any: a service bound to the
// wildcard answers a 127.0.0.1 peer from 127.0.0.1, not from the address
// it was sent to, which a connected socket would drop.
type udpTo struct {
	*net.UDPConn
	to netip.AddrPort
}

func (u udpTo) Write(b []byte) (int, error) { return u.WriteToUDPAddrPort(b, u.to) }

// relaySplice copies both ways between two kernel TCP sockets; io.Copy
// between *net.TCPConn is splice(2) through a pipe, no user-space copy.
// FIN and errors are carried as in relayTCP; closing the stack ends it.
func (n *Stack) relaySplice(a, b *net.TCPConn) {
	stop := context.AfterFunc(n.ctx, func() {
		a.Close()
		b.Close()
	})
	defer stop()
	bothWays(a, b, spliceHalf)
}

func spliceHalf(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		// Reset both: an abort on one side is one on the other.
		dst.SetLinger(0)
		src.SetLinger(0)
		dst.Close()
		src.Close()
		return
	}
	dst.CloseWrite()
}
