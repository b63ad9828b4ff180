package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/rlcontainers/rl/netstack/netconf"
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

// SpliceLoopback makes published ports (TCP and UDP) take host loopback
// clients through the container's network namespace netns (an open
// /proc/PID/ns/net), which the stack then owns and closes. Without it, or
// when entering the namespace fails, every client takes the stack.
func (n *Stack) SpliceLoopback(netns *os.File) {
	if old := n.guestNS.Swap(netconf.NewNetNS(netns)); old != nil {
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
	// The container's addresses in guestPeer's order.
	var targets []netip.AddrPort
	for _, p := range n.guestPeer(client, port) {
		targets = append(targets, p[1])
	}
	if network == "tcp" {
		c, err := g.DialFromLoopback(n.ctx, targets, nil)
		if err != nil {
			return nil, spliceErr(err)
		}
		return c, nil
	}
	// UDP, with no handshake to tell, takes the first.
	t := targets[0]
	var c net.Conn
	err := netconf.InNamespace(g.File(), func() error {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: netconf.LoopbackFor(t.Addr()).AsSlice()})
		if err == nil {
			c = udpTo{u, t}
		}
		return err
	})
	return c, spliceErr(err)
}

// spliceErr makes a namespace that cannot be entered errNoSplice (the
// stack then takes the client); other errors are the container's answer.
func spliceErr(err error) error {
	if errors.Is(err, netconf.ErrNamespace) {
		return fmt.Errorf("%w: %v", errNoSplice, err)
	}
	return err
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

// relaySplice copies both ways between two kernel TCP sockets
// (netconf.Splice); closing the stack ends it.
func (n *Stack) relaySplice(a, b *net.TCPConn) {
	stop := context.AfterFunc(n.ctx, func() {
		a.Close()
		b.Close()
	})
	defer stop()
	netconf.Splice(a, b)
}
