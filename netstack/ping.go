package netstack

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// ICMP echo past the stack (ping).
//
// An echo request the container sends to an address the stack does not
// have (the gateway and the DNS relay answer for themselves) goes out from
// the host through an ICMP echo socket of the user's (socket(2) SOCK_DGRAM,
// IPPROTO_ICMP: no privilege), as slirp4netns and pasta send it, to a
// destination the NAT would dial (netconf.Config.HostTarget); the reply
// comes back to the container from the address it pinged, with the
// container's identifier. One host socket serves one identifier (one ping
// process) of the container until both directions idle for udpIdle. The
// host's net.ipv4.ping_group_range must admit the user's group, as
// distributions set it (systemd: every group); where it does not, or the
// policy refuses the destination, the request goes unanswered. The stack
// itself never answers for an address it does not have: gVisor did so for
// IPv6 in promiscuous mode, so every IPv6 address seemed up.

// pingKey names a container's ping: its address, the IP version, and the
// identifier of its echo requests.
type pingKey struct {
	guest tcpip.Address
	v6    bool
	ident uint16
}

// pings are the host sockets of the container's pings.
type pings struct {
	mu sync.Mutex
	m  map[pingKey]*pingFlow
}

type pingFlow struct {
	conn *net.UDPConn // the host's ICMP echo socket, as net makes a datagram socket
	udpFlow
}

// handleICMP is the stack's handler for ICMP (v6: ICMPv6) packets that no
// endpoint takes: echo requests to addresses other than the stack's own
// are forwarded (forwardEcho) and never answered by the stack itself.
func (n *Stack) handleICMP(v6 bool) func(stack.TransportEndpointID, *stack.PacketBuffer) bool {
	return func(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
		dst := fromTCPIP(id.LocalAddress)
		if n.ownAddr(dst) {
			return false // the stack answers
		}
		msg := append(append([]byte(nil), pkt.TransportHeader().Slice()...), pkt.Data().AsRange().ToSlice()...)
		echo := uint8(header.ICMPv4Echo)
		if v6 {
			echo = uint8(header.ICMPv6EchoRequest)
		}
		if len(msg) < header.ICMPv4MinimumSize || msg[0] != echo {
			return false
		}
		if target, ok := n.cfg.HostTarget(netip.AddrPortFrom(dst, 0)); ok && target.Addr() == dst {
			n.forwardEcho(pingKey{id.RemoteAddress, v6, binary.BigEndian.Uint16(msg[4:6])}, dst, msg)
		}
		return true
	}
}

// ownAddr tells the stack's own addresses: the gateway and the DNS relay.
func (n *Stack) ownAddr(a netip.Addr) bool {
	c := n.cfg
	return a == c.Gateway || a == c.DNS || (c.IPv6 && (a == c.Gateway6 || a == c.DNS6))
}

// forwardEcho sends the container's echo request msg to dst from the host
// socket of its ping (opened on its first request, and again when the
// last one closed on idling just now).
func (n *Stack) forwardEcho(k pingKey, dst netip.Addr, msg []byte) {
	for try := 0; try < 2; try++ {
		f := n.flowFor(k, dst)
		if f == nil {
			return // no ICMP echo socket for this user (ping_group_range): unanswered
		}
		// The kernel sets the socket's own identifier and the checksum.
		if _, err := f.conn.WriteTo(msg, &net.UDPAddr{IP: dst.AsSlice()}); !errors.Is(err, net.ErrClosed) {
			return
		}
		n.dropPing(k, f)
	}
}

// flowFor is the flow of ping k, made now if there is none, touched.
func (n *Stack) flowFor(k pingKey, dst netip.Addr) *pingFlow {
	n.pings.mu.Lock()
	defer n.pings.mu.Unlock()
	f := n.pings.m[k]
	if f == nil {
		conn, err := n.pingSocket(k.v6, dst)
		if err != nil {
			return nil
		}
		f = &pingFlow{conn: conn}
		if n.pings.m == nil {
			n.pings.m = map[pingKey]*pingFlow{}
		}
		n.pings.m[k] = f
		n.goTracked(func() { n.relayEchoReplies(k, f) })
	}
	f.touch()
	return f
}

// dropPing forgets flow f of ping k (not a newer one of the same ping).
func (n *Stack) dropPing(k pingKey, f *pingFlow) {
	n.pings.mu.Lock()
	if n.pings.m[k] == f {
		delete(n.pings.m, k)
	}
	n.pings.mu.Unlock()
}

// pingSocket opens an ICMP echo socket on the host, bound to the outbound
// address for dst (outbound_addr) when there is one.
func (n *Stack) pingSocket(v6 bool, dst netip.Addr) (*net.UDPConn, error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, err
	}
	if l := n.cfg.LocalFor(dst); l.IsValid() {
		var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: l.As4()}
		if v6 {
			sa = &unix.SockaddrInet6{Addr: l.As16()}
		}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	f := os.NewFile(uintptr(fd), "ping")
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, err
	}
	if u, ok := c.(*net.UDPConn); ok {
		return u, nil
	}
	c.Close()
	return nil, errors.New("netstack: an ICMP socket that is no datagram socket")
}

// relayEchoReplies hands the echo replies of a ping's host socket to the
// container until the ping idles or the stack closes.
func (n *Stack) relayEchoReplies(k pingKey, f *pingFlow) {
	stop := context.AfterFunc(n.ctx, func() { f.conn.Close() })
	defer stop()
	defer func() {
		n.dropPing(k, f)
		f.conn.Close()
	}()
	reply := uint8(header.ICMPv4EchoReply)
	if k.v6 {
		reply = uint8(header.ICMPv6EchoReply)
	}
	bp := datagramBufs.Get().(*[]byte)
	defer datagramBufs.Put(bp)
	buf := *bp
	f.conn.SetReadDeadline(time.Now().Add(udpIdle))
	for {
		got, from, err := f.conn.ReadFromUDP(buf)
		if err != nil {
			if f.awake(f.conn, err) {
				continue
			}
			return
		}
		f.touch()
		if got < header.ICMPv4MinimumSize || buf[0] != reply {
			continue
		}
		if src, ok := netip.AddrFromSlice(from.IP); ok {
			n.sendEchoReply(k, src.Unmap(), buf[:got])
		}
	}
}

// sendEchoReply writes the echo reply msg (ICMP header and data, as the
// host socket got it) to the container from src, with the container's
// identifier.
func (n *Stack) sendEchoReply(k pingKey, src netip.Addr, msg []byte) {
	proto, icmpProto := protoOf(src), header.ICMPv4ProtocolNumber
	if k.v6 {
		icmpProto = header.ICMPv6ProtocolNumber
	}
	r, terr := n.s.FindRoute(nicID, toTCPIP(src), k.guest, proto, false)
	if terr != nil {
		return
	}
	defer r.Release()
	const hlen = header.ICMPv4MinimumSize // an echo header, v4 and v6 alike
	data := msg[hlen:]
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: int(r.MaxHeaderLength()) + hlen,
		Payload:            buffer.MakeWithData(data),
	})
	defer pkt.DecRef()
	h := pkt.TransportHeader().Push(hlen)
	copy(h, msg[:hlen])
	binary.BigEndian.PutUint16(h[4:6], k.ident)
	if k.v6 {
		header.ICMPv6(h).SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
			Header: h, Src: r.LocalAddress(), Dst: r.RemoteAddress(),
			PayloadCsum: checksum.Checksum(data, 0), PayloadLen: len(data),
		}))
	} else {
		header.ICMPv4(h).SetChecksum(header.ICMPv4Checksum(h, checksum.Checksum(data, 0)))
	}
	pkt.TransportProtocolNumber = icmpProto
	_ = r.WritePacket(stack.NetworkHeaderParams{Protocol: icmpProto, TTL: r.DefaultTTL()}, pkt)
}
