package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/rlcontainers/rl/netstack/netconf"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// guestPeer is how a host client of a published port appears in the
// container: its own address, so the container sees who connects, except
// where the container could not answer it (loopback sources are martians
// the guest kernel drops; addresses of the container's own subnets and
// link-local ones would be looked up on the link, where nobody has them):
// those appear as the gateway. It returns the local (client) and remote
// (guest) addresses to try in order: an IPv6 client tries the guest's IPv6
// address first and then its IPv4 one, from the gateway, for a service that
// listens on IPv4 only.
func (n *Stack) guestPeer(client netip.AddrPort, guestPort uint16) [][2]netip.AddrPort {
	c := n.cfg
	a := client.Addr().Unmap()
	var out [][2]netip.AddrPort
	for _, g := range c.GuestAddrs(a) {
		src, subnet := c.Gateway, c.Subnet
		if g.Is6() {
			src, subnet = c.Gateway6, c.Subnet6
		}
		if a.Is6() == g.Is6() && !a.IsLoopback() && !subnet.Contains(a) && !a.IsLinkLocalUnicast() && !a.IsUnspecified() {
			src = a.WithZone("")
		}
		out = append(out, [2]netip.AddrPort{netip.AddrPortFrom(src, client.Port()), netip.AddrPortFrom(g, guestPort)})
	}
	return out
}

// publish serves one published port until Close.
func (n *Stack) publish(pl netconf.Socket) {
	if pl.TCP != nil {
		n.goTracked(func() { n.serveTCPPort(pl) })
	} else {
		n.goTracked(func() { n.serveUDPPort(pl) })
	}
}

func (n *Stack) serveTCPPort(pl netconf.Socket) {
	for {
		c, err := pl.TCP.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || n.ctx.Err() != nil {
				return
			}
			// EMFILE and the like: wait rather than spin.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		n.goTracked(func() {
			client := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			spliced, err := n.dialGuestNS("tcp", client, pl.Mapping.GuestPort)
			if err == nil {
				n.relaySplice(c, spliced.(*net.TCPConn))
				return
			}
			if !errors.Is(err, errNoSplice) {
				c.SetLinger(0)
				c.Close()
				return
			}
			guest, err := n.dialGuestTCP(client, pl.Mapping.GuestPort)
			if err != nil {
				// Nothing listens in the container: reset, as a closed port.
				c.SetLinger(0)
				c.Close()
				return
			}
			relayGuestTCP(guest, c)
		})
	}
}

// dialGuestTCP connects to the container's port from the client's address.
func (n *Stack) dialGuestTCP(client netip.AddrPort, port uint16) (guestTCP, error) {
	var err error
	for _, p := range n.guestPeer(client, port) {
		var c guestTCP
		if c, err = n.dialTCP(p[0], p[1]); err == nil {
			return c, nil
		}
	}
	return guestTCP{}, err
}

// dialTCP connects from local (any address: the NIC spoofs) to remote inside
// the stack. A local port already taken in the stack (two loopback clients
// shown as the same gateway address) falls back to an ephemeral port.
func (n *Stack) dialTCP(local, remote netip.AddrPort) (guestTCP, error) {
	wq := new(waiter.Queue)
	ep, terr := n.s.NewEndpoint(tcp.ProtocolNumber, protoOf(remote.Addr()), wq)
	if terr != nil {
		return guestTCP{}, tcpipError("new TCP endpoint", terr)
	}
	if err := bindSpoofed(ep, local); err != nil {
		ep.Close()
		return guestTCP{}, err
	}
	entry, notify := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr = ep.Connect(tcpip.FullAddress{NIC: nicID, Addr: toTCPIP(remote.Addr()), Port: remote.Port()})
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		select {
		case <-ctx.Done():
			cancel()
			ep.Close()
			return guestTCP{}, fmt.Errorf("netstack: connecting to the container's %v: %w", remote, ctx.Err())
		case <-notify:
		}
		cancel()
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return guestTCP{}, tcpipError(fmt.Sprintf("connecting to the container's %v", remote), terr)
	}
	return guestTCP{ep, wq}, nil
}

func bindSpoofed(ep tcpip.Endpoint, local netip.AddrPort) error {
	full := tcpip.FullAddress{NIC: nicID, Addr: toTCPIP(local.Addr()), Port: local.Port()}
	terr := ep.Bind(full)
	if terr != nil && isPortInUse(terr) {
		full.Port = 0
		terr = ep.Bind(full)
	}
	if terr != nil {
		return tcpipError(fmt.Sprintf("binding %v", local), terr)
	}
	return nil
}

// serveUDPPort relays a published UDP port: each client address is a flow
// with its own endpoint in the stack, bound to the client's address, so the
// container sees the real source and its replies find their way back (a
// client on the host's loopback: a socket in the container's namespace,
// on its loopback; see splice.go).
func (n *Stack) serveUDPPort(pl netconf.Socket) {
	type flow struct {
		guest net.Conn // the stack's endpoint, or a socket in the container (loopback clients)
		idle  *udpFlow
	}
	var mu sync.Mutex
	flows := map[netip.AddrPort]flow{}
	defer func() {
		mu.Lock()
		for _, f := range flows {
			f.guest.Close()
		}
		mu.Unlock()
	}()
	buf := make([]byte, maxDatagram)
	for {
		k, client, err := pl.UDP.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || n.ctx.Err() != nil {
				return
			}
			continue
		}
		mu.Lock()
		f, ok := flows[client]
		if !ok {
			g, err := n.dialGuestNS("udp", client, pl.Mapping.GuestPort)
			if errors.Is(err, errNoSplice) {
				g, err = n.dialGuestUDP(client, pl.Mapping.GuestPort)
			}
			if err != nil {
				mu.Unlock()
				continue
			}
			f = flow{guest: g, idle: newUDPFlow()}
			flows[client] = f
			n.goTracked(func() {
				f.idle.pump(g, func(b []byte) error {
					_, err := pl.UDP.WriteToUDPAddrPort(b, client)
					return err
				})
				mu.Lock()
				delete(flows, client)
				mu.Unlock()
				g.Close()
			})
		}
		mu.Unlock()
		f.idle.touch()
		f.guest.Write(buf[:k])
	}
}

func (n *Stack) dialGuestUDP(client netip.AddrPort, port uint16) (*gonet.UDPConn, error) {
	// UDP has no handshake to tell whether the guest listens on IPv6: the
	// first candidate is taken.
	p := n.guestPeer(client, port)[0]
	local, remote := p[0], p[1]
	var wq waiter.Queue
	ep, terr := n.s.NewEndpoint(udp.ProtocolNumber, protoOf(remote.Addr()), &wq)
	if terr != nil {
		return nil, tcpipError("new UDP endpoint", terr)
	}
	if err := bindSpoofed(ep, local); err != nil {
		ep.Close()
		return nil, err
	}
	if terr := ep.Connect(tcpip.FullAddress{NIC: nicID, Addr: toTCPIP(remote.Addr()), Port: remote.Port()}); terr != nil {
		ep.Close()
		return nil, tcpipError(fmt.Sprintf("connecting to the container's %v", remote), terr)
	}
	return gonet.NewUDPConn(&wq, ep), nil
}
