package netstack

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/rlcontainers/rl/netstack/netconf"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/qdisc/fifo"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// nicID is the stack's only NIC: the link to the container.
const nicID tcpip.NICID = 1

// GatewayMAC is the stack's Ethernet address on the link, slirp's
// 52:55:0a:00:02:02 (the container sees it in its neighbour table).
const GatewayMAC = tcpip.LinkAddress("\x52\x55\x0a\x00\x02\x02")

// TCP buffer sizes. The ceiling is well above what a 20+ Gbit/s stream over a
// sub-millisecond RTT needs (its bandwidth-delay product is ~0.3 MiB);
// receive auto-tuning grows each connection only as far as its reader lags,
// and gVisor allocates buffer space as data arrives, so an idle connection
// costs next to nothing. A busy one holds up to the ceiling each way, which
// is most of rl-net's heap under load. With the TAP writer's queue (below)
// the send buffer fills to the ceiling in a host->container stream: 2 MiB
// against 4 gave that stream 14.06 against 13.38 Gbit/s (iperf3 -R through
// NAT, 5 s, mean of 8 interleaved runs; 1 MiB 12.60) and cut rl-net's peak
// RSS from 18.2 to 14.2 MB (private 12.4 -> 8.5); container->host 10.90
// both (its peak 10.4 MB either way). 8 MiB measured no faster than 4.
const (
	tcpBufDefault = 1 << 20
	tcpBufMax     = 2 << 20
)

// maxInFlightSYN bounds the guest's connections whose host dial is still
// under way; SYNs beyond it are dropped and the guest retransmits them.
const maxInFlightSYN = 1024

// Stack is the supervisor side of a container's network: gVisor's tcpip
// stack on the container's link, NAT to the host's sockets, the DNS relay
// and the published ports. It runs in the host's network namespace, so every
// socket it opens is the user's.
type Stack struct {
	cfg       Config
	s         *stack.Stack
	ep        stack.LinkEndpoint
	listeners *Listeners
	guestNS   atomic.Pointer[netconf.NetNS] // the container's network namespace (SpliceLoopback), or nil
	pings     pings                         // the container's pings past the stack (ping.go)
	upstreams upstreams                     // the DNS relay's upstream resolvers (dns.go)

	ctx    context.Context // cancelled by Close: stops dials under way
	cancel context.CancelFunc
	wg     sync.WaitGroup // the goroutines Close waits for

	closeOnce sync.Once
}

// NewTAPEndpoint makes the link endpoint for New from the TAP fd that
// link.SetupGuest opened in the container. The endpoint owns fd and closes
// it when the stack removes it.
//
// It is rl's own endpoint (tapLink, tapep.go) rather than gVisor's fdbased:
// fdbased offers checksum and segmentation offloads only on sockets, not on
// a TAP with IFF_VNET_HDR, and those offloads are most of the difference
// (see tapLink).
func NewTAPEndpoint(fd int, mtu uint32) (stack.LinkEndpoint, error) {
	return NewTAPEndpointAfter(fd, mtu, nil)
}

// NewTAPEndpointAfter is NewTAPEndpoint for a TAP from which first, a frame
// as read (vnet header included), was taken already (WaitForTraffic): the
// stack gets it before anything read after it.
func NewTAPEndpointAfter(fd int, mtu uint32, first []byte) (stack.LinkEndpoint, error) {
	ep, err := newTAPLink(fd, mtu)
	if err != nil {
		return nil, fmt.Errorf("netstack: TAP endpoint on fd %d: %w", fd, err)
	}
	ep.first = first
	return ep, nil
}

// New starts the stack on ep, a link endpoint that carries Ethernet frames
// (NewTAPEndpoint; a pipe or channel endpoint wrapped in gVisor's ethernet
// endpoint in tests), and serves the published ports of l, which it takes
// over: Close closes them. l may be nil.
func New(cfg Config, ep stack.LinkEndpoint, l *Listeners) (*Stack, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	netProtos := []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol}
	if cfg.IPv6 {
		netProtos = append(netProtos, ipv6.NewProtocol)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   netProtos,
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
	n := &Stack{cfg: cfg, s: s, ep: ep, listeners: l}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.configure(ep); err != nil {
		n.cancel()
		s.Destroy()
		return nil, err
	}
	n.startDNS()
	if l != nil {
		for _, pl := range l.Sockets() {
			n.publish(pl)
		}
	}
	// Only now does the TAP's reader deliver what the guest sent (tapLink.ready).
	if st, ok := ep.(interface{ start() }); ok {
		st.start()
	}
	return n, nil
}

func (n *Stack) configure(ep stack.LinkEndpoint) error {
	s, cfg := n.s, n.cfg
	// Options and handlers come before the NIC: the link delivers packets
	// (the container's IPv6 router solicitations, say) from its creation on.
	sack := tcpip.TCPSACKEnabled(true)
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcpBufDefault, Max: tcpBufMax}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcpBufDefault, Max: tcpBufMax}
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	for _, o := range []tcpip.SettableTransportProtocolOption{&sack, &rcv, &snd, &moderate} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			return tcpipError(fmt.Sprintf("TCP option %T", o), err)
		}
	}

	s.SetTransportProtocolHandler(tcp.ProtocolNumber, tcp.NewForwarder(s, 0, maxInFlightSYN, n.forwardTCP).HandlePacket)
	s.SetTransportProtocolHandler(udp.ProtocolNumber, udp.NewForwarder(s, n.forwardUDP).HandlePacket)
	s.SetTransportProtocolHandler(icmp.ProtocolNumber4, n.handleICMP(false))
	s.SetTransportProtocolHandler(icmp.ProtocolNumber6, n.handleICMP(true))

	// Frames to the guest go through a queue written to the TAP by a
	// goroutine of its own (gVisor's FIFO queueing discipline): a TAP
	// write runs, in the writer's context, the guest kernel's receive path
	// too, which otherwise held up the TCP sender reading the host socket
	// (NAT host->guest +12-18 %, bench/net; the send buffer then fills to
	// its ceiling: rl-net's peak RSS +3.5 MB). One queue keeps them in
	// order; of 1000 frames, as gVisor's runsc has it (one of 16 overflowed
	// under load: drops and retransmits).
	qdisc := fifo.New(ep, 1, 1000)
	if err := s.CreateNICWithOptions(nicID, ep, stack.NICOptions{Name: "rl0", QDisc: qdisc}); err != nil {
		qdisc.Close()
		return tcpipError("creating the NIC", err)
	}
	// Promiscuous: the stack takes packets for every address, which is what
	// makes it a NAT (the forwarders see the guest's real destination).
	// Spoofing: published ports connect to the guest from the host client's
	// own address, which the stack does not have.
	if err := s.SetPromiscuousMode(nicID, true); err != nil {
		return tcpipError("promiscuous mode", err)
	}
	if err := s.SetSpoofing(nicID, true); err != nil {
		return tcpipError("spoofing", err)
	}
	// The gateway and DNS addresses are assigned so that the stack answers
	// ARP/NDP and ICMP echo for them.
	addrs := []netip.Prefix{
		netip.PrefixFrom(cfg.Gateway, cfg.Subnet.Bits()),
		netip.PrefixFrom(cfg.DNS, cfg.Subnet.Bits()),
	}
	if cfg.IPv6 {
		addrs = append(addrs, netip.PrefixFrom(cfg.Gateway6, cfg.Subnet6.Bits()), netip.PrefixFrom(cfg.DNS6, cfg.Subnet6.Bits()))
	}
	for _, p := range addrs {
		proto := ipv4.ProtocolNumber
		if p.Addr().Is6() {
			proto = ipv6.ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddressWithPrefix{Address: toTCPIP(p.Addr()), PrefixLen: p.Bits()}}
		if err := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return tcpipError(fmt.Sprintf("adding address %v", p), err)
		}
	}
	// Everything goes to the guest: the stack's only neighbour. Sources the
	// stack spoofs (published ports) answer through the guest's default route.
	routes := []tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}}
	if cfg.IPv6 {
		routes = append(routes, tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: nicID})
	}
	s.SetRouteTable(routes)

	return nil
}

// Close stops the stack: the published ports' listeners, every connection
// and flow, and the link (closing the TAP fd). It waits for the stack's
// goroutines, so nothing of the network outlives the container.
func (n *Stack) Close() error {
	var err error
	n.closeOnce.Do(func() {
		n.cancel()
		if n.listeners != nil {
			err = n.listeners.Close()
		}
		// RemoveNIC stops the link's dispatcher and closes the endpoint;
		// Destroy aborts every endpoint, which ends the relays blocked on them.
		if e := n.s.RemoveNIC(nicID); e != nil {
			if _, ok := e.(*tcpip.ErrUnknownNICID); !ok && err == nil {
				err = tcpipError("removing the NIC", e)
			}
		}
		n.s.Destroy()
		// The link stops without waiting under the stack's locks (see
		// tapLink.Attach); wait for it here, so the TAP is closed when
		// Close returns.
		n.ep.Wait()
		n.wg.Wait()
		n.closeGuestNS()
	})
	return err
}

// Stats are the stack's counters, for diagnostics.
func (n *Stack) Stats() tcpip.Stats { return n.s.Stats() }

// goTracked runs f in a goroutine that Close waits for.
func (n *Stack) goTracked(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// tcpipError converts a tcpip.Error, which is no Go error, at the boundary.
func tcpipError(op string, err tcpip.Error) error {
	return fmt.Errorf("netstack: %s: %s", op, err)
}

func toTCPIP(a netip.Addr) tcpip.Address {
	if a.Is4() {
		return tcpip.AddrFrom4(a.As4())
	}
	return tcpip.AddrFrom16(a.As16())
}

func fromTCPIP(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip
}

func protoOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}
