package netstack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/rlcontainers/rl/netstack/netconf"
)

const guestMAC = tcpip.LinkAddress("\x02\x00\x0a\x00\x02\x64")

// testNet is rl's stack and a second gVisor stack standing in for the
// container's kernel, joined by two channel endpoints and a goroutine per
// direction: an asynchronous link with a bounded queue, like a TAP.
type testNet struct {
	rl    *Stack
	guest *stack.Stack
}

func newTestNet(t testing.TB, cfg Config, l *Listeners) *testNet {
	t.Helper()
	// The ethernet endpoint's MTU is its inner one less the header.
	rlCh := channel.New(4096, cfg.MTU+header.EthernetMinimumSize, GatewayMAC)
	guestCh := channel.New(4096, cfg.MTU+header.EthernetMinimumSize, guestMAC)
	ctx, cancel := context.WithCancel(context.Background())
	go pump(ctx, rlCh, guestCh)
	go pump(ctx, guestCh, rlCh)

	rl, err := New(cfg, ethernet.New(rlCh), l)
	if err != nil {
		t.Fatal(err)
	}
	g := newGuestStack(t, cfg, ethernet.New(guestCh))
	t.Cleanup(func() {
		cancel()
		if err := rl.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		g.Destroy()
	})
	return &testNet{rl: rl, guest: g}
}

func pump(ctx context.Context, from, to *channel.Endpoint) {
	for {
		pkt := from.ReadContext(ctx)
		if pkt == nil {
			return
		}
		in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: pkt.ToBuffer()})
		to.InjectInbound(pkt.NetworkProtocolNumber, in)
		in.DecRef()
		pkt.DecRef()
	}
}

// newGuestStack configures a gVisor stack as link.SetupGuest configures the
// container's kernel: its address, and default routes via the gateways.
func newGuestStack(t testing.TB, cfg Config, ep stack.LinkEndpoint) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
	if err := s.CreateNIC(1, ep); err != nil {
		t.Fatal(err)
	}
	lc := cfg.Link()
	for _, p := range []netip.Prefix{lc.Addr, lc.Addr6} {
		if !p.IsValid() {
			continue
		}
		pa := tcpip.ProtocolAddress{Protocol: protoOf(p.Addr()), AddressWithPrefix: tcpip.AddressWithPrefix{Address: toTCPIP(p.Addr()), PrefixLen: p.Bits()}}
		if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
			t.Fatal(err)
		}
	}
	sub, _ := tcpip.NewSubnet(toTCPIP(cfg.Subnet.Masked().Addr()), tcpip.MaskFromBytes(net.CIDRMask(cfg.Subnet.Bits(), 32)))
	routes := []tcpip.Route{
		{Destination: sub, NIC: 1},
		{Destination: header.IPv4EmptySubnet, Gateway: toTCPIP(cfg.Gateway), NIC: 1},
	}
	if cfg.IPv6 {
		sub6, _ := tcpip.NewSubnet(toTCPIP(cfg.Subnet6.Masked().Addr()), tcpip.MaskFromBytes(net.CIDRMask(cfg.Subnet6.Bits(), 128)))
		routes = append(routes,
			tcpip.Route{Destination: sub6, NIC: 1},
			tcpip.Route{Destination: header.IPv6EmptySubnet, Gateway: toTCPIP(cfg.Gateway6), NIC: 1})
	}
	s.SetRouteTable(routes)
	return s
}

func full(ap netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: 1, Addr: toTCPIP(ap.Addr()), Port: ap.Port()}
}

// dial connects from the guest.
func (tn *testNet) dial(t testing.TB, to netip.AddrPort) (*gonet.TCPConn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return gonet.DialContextTCP(ctx, tn.guest, full(to), protoOf(to.Addr()))
}

// echoServer serves TCP echo on the host at addr ("127.0.0.1:0").
func echoServer(t testing.TB, addr string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s here: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func roundTrip(t testing.TB, c net.Conn, msg []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo differs")
	}
}

func allowLoopback() Config {
	cfg := DefaultConfig()
	cfg.AllowHostLoopback = true
	return cfg
}

func TestTCPToHostLoopback(t *testing.T) {
	srv := echoServer(t, "127.0.0.1:0")
	tn := newTestNet(t, allowLoopback(), nil)
	c, err := tn.dial(t, netip.AddrPortFrom(netip.MustParseAddr("10.0.2.2"), srv.Port()))
	if err != nil {
		t.Fatalf("guest to 10.0.2.2:%d: %v", srv.Port(), err)
	}
	defer c.Close()
	roundTrip(t, c, bytes.Repeat([]byte("rl netstack "), 100000))
}

func TestTCPToHostLoopbackIPv6(t *testing.T) {
	srv := echoServer(t, "[::1]:0")
	tn := newTestNet(t, allowLoopback(), nil)
	c, err := tn.dial(t, netip.AddrPortFrom(netip.MustParseAddr("fd00::2"), srv.Port()))
	if err != nil {
		t.Fatalf("guest to [fd00::2]:%d: %v", srv.Port(), err)
	}
	defer c.Close()
	roundTrip(t, c, []byte("hello over IPv6"))
}

// refusedFast dials to and wants a refusal within a second, not a timeout.
func refusedFast(t *testing.T, tn *testNet, to netip.AddrPort) {
	t.Helper()
	start := time.Now()
	c, err := tn.dial(t, to)
	if err == nil {
		c.Close()
		t.Fatalf("guest connected to %v", to)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refusal took %v: %v", d, err)
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q is no refusal", err)
	}
}

func TestTCPGatewayNeedsAllowHostLoopback(t *testing.T) {
	srv := echoServer(t, "127.0.0.1:0")
	tn := newTestNet(t, DefaultConfig(), nil)
	refusedFast(t, tn, netip.AddrPortFrom(netip.MustParseAddr("10.0.2.2"), srv.Port()))
	refusedFast(t, tn, netip.AddrPortFrom(netip.MustParseAddr("fd00::2"), srv.Port()))
	// The container's own view of loopback is never forwarded either.
	refusedFast(t, tn, netip.AddrPortFrom(netip.MustParseAddr("10.0.2.7"), srv.Port()))
}

func TestTCPClosedHostPortRefusedFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tn := newTestNet(t, allowLoopback(), nil)
	refusedFast(t, tn, netip.AddrPortFrom(netip.MustParseAddr("10.0.2.2"), uint16(port)))
}

// udpEchoServer echoes datagrams on the host.
func udpEchoServer(t testing.TB, addr string, prefix string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s here: %v", addr, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte(prefix), buf[:n]...), from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func guestUDP(t testing.TB, tn *testNet, to netip.AddrPort, msg []byte) ([]byte, error) {
	t.Helper()
	r := full(to)
	c, err := gonet.DialUDP(tn.guest, nil, &r, protoOf(to.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, maxDatagram)
	n, err := c.Read(buf)
	return buf[:n], err
}

func TestUDPThroughGateway(t *testing.T) {
	srv := udpEchoServer(t, "127.0.0.1:0", "")
	tn := newTestNet(t, allowLoopback(), nil)
	to := netip.AddrPortFrom(netip.MustParseAddr("10.0.2.2"), srv.Port())
	for _, size := range []int{5, 1400, 60000} {
		msg := bytes.Repeat([]byte{'u'}, size)
		got, err := guestUDP(t, tn, to, msg)
		if err != nil {
			t.Fatalf("%d-byte datagram: %v", size, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("%d-byte datagram: got %d bytes back", size, len(got))
		}
	}
}

func TestUDPGatewayRefusedWithoutAllowHostLoopback(t *testing.T) {
	srv := udpEchoServer(t, "127.0.0.1:0", "")
	tn := newTestNet(t, DefaultConfig(), nil)
	r := full(netip.AddrPortFrom(netip.MustParseAddr("10.0.2.2"), srv.Port()))
	c, err := gonet.DialUDP(tn.guest, nil, &r, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	// The stack answers ICMP port unreachable, which a Linux guest reports as
	// ECONNREFUSED at once (gVisor's UDP endpoint only counts it).
	unreachable := tn.guest.Stats().ICMP.V4.PacketsReceived.DstUnreachable
	for start := time.Now(); unreachable.Value() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > time.Second {
			t.Fatal("no ICMP port unreachable within a second")
		}
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 10)); err == nil {
		t.Fatal("a datagram reached the host's loopback")
	}
}

func TestDNSRelay(t *testing.T) {
	up := udpEchoServer(t, "127.0.0.1:0", "answer:")
	cfg := DefaultConfig()
	cfg.DNSServers = []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:1"), // nobody: the relay moves on
		up,
	}
	tn := newTestNet(t, cfg, nil)
	for _, dns := range []string{"10.0.2.3", "fd00::3"} {
		got, err := guestUDP(t, tn, netip.AddrPortFrom(netip.MustParseAddr(dns), 53), []byte("query"))
		if err != nil {
			t.Fatalf("query to %s: %v", dns, err)
		}
		if string(got) != "answer:query" {
			t.Fatalf("query to %s: answer %q", dns, got)
		}
	}
}

// TestDNSRelayFollowsResolvConf: when the host's resolv.conf changes (a
// laptop's network or VPN), the relay asks the new servers, read from it
// again within a second; a moment with no nameserver in it (a file being
// replaced) keeps the old ones.
func TestDNSRelayFollowsResolvConf(t *testing.T) {
	// resolv.conf names no port: the servers listen on 53, on two
	// loopback addresses of their own.
	for _, a := range []string{"127.0.88.1:53", "127.0.88.2:53"} {
		if pc, err := net.ListenPacket("udp", a); err != nil {
			t.Skipf("a test DNS server on %s: %v (needs root, as make test runs)", a, err)
		} else {
			pc.Close()
		}
	}
	before := udpEchoServer(t, "127.0.88.1:53", "before:")
	after := udpEchoServer(t, "127.0.88.2:53", "after:")
	defer func(old string) { netconf.SystemdResolvConf = old }(netconf.SystemdResolvConf)
	netconf.SystemdResolvConf = filepath.Join(t.TempDir(), "none")
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	write := func(body string) {
		if err := os.WriteFile(conf+".new", []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(conf+".new", conf); err != nil { // as resolvconf and NetworkManager do
			t.Fatal(err)
		}
	}
	nameserver := func(a netip.AddrPort) string { return "nameserver " + a.Addr().String() + "\n" }
	write(nameserver(before))
	cfg := DefaultConfig()
	cfg.DNSServers, cfg.ResolvConf = []netip.AddrPort{before}, conf
	tn := newTestNet(t, cfg, nil)
	ask := func() string {
		got, err := guestUDP(t, tn, netip.MustParseAddrPort("10.0.2.3:53"), []byte("q"))
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		return string(got)
	}
	if got := ask(); got != "before:q" {
		t.Fatalf("answer %q, want the first server's", got)
	}
	write("# no nameserver for a moment\n")
	time.Sleep(resolvRecheck + 100*time.Millisecond)
	if got := ask(); got != "before:q" {
		t.Fatalf("with no nameserver in the file: answer %q, want the old server's", got)
	}
	write(nameserver(after))
	time.Sleep(resolvRecheck + 100*time.Millisecond)
	if got := ask(); got != "after:q" {
		t.Fatalf("after the file changed: answer %q, want the new server's", got)
	}
}

func TestDNSRelayTCP(t *testing.T) {
	up := echoServer(t, "127.0.0.1:0")
	cfg := DefaultConfig()
	cfg.DNSServers = []netip.AddrPort{up}
	tn := newTestNet(t, cfg, nil)
	c, err := tn.dial(t, netip.MustParseAddrPort("10.0.2.3:53"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, []byte("\x00\x05query"))
	// Other ports of the DNS address are closed.
	refusedFast(t, tn, netip.MustParseAddrPort("10.0.2.3:80"))
}

func TestICMPEchoGateway(t *testing.T) {
	tn := newTestNet(t, DefaultConfig(), nil)
	for _, dst := range []string{"10.0.2.2", "10.0.2.3", "fd00::2", "fd00::3"} {
		if from, ok := guestPing(t, tn, netip.MustParseAddr(dst), 3*time.Second); !ok || from != netip.MustParseAddr(dst) {
			t.Fatalf("ping %s: want an echo reply from it, got %v, %v", dst, from, ok)
		}
	}
}

// TestICMPEchoForwarded: an echo request to an address of the host's is
// sent from a host ICMP echo socket and its reply reaches the guest from
// that address; one to an address nothing answers (here: the
// documentation prefix, and the container's own subnet, which the NAT
// never dials) gets no reply, and for IPv6 not one the stack makes up.
func TestICMPEchoForwarded(t *testing.T) {
	tn := newTestNet(t, DefaultConfig(), nil)
	for _, dst := range []string{"2001:db8::1", "10.0.2.7", "fd00::7"} {
		if from, ok := guestPing(t, tn, netip.MustParseAddr(dst), time.Second); ok {
			t.Errorf("ping %s: a reply from %v, where nothing answers", dst, from)
		}
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, syscall.IPPROTO_ICMP)
	if err != nil {
		t.Skipf("this host refuses ICMP echo sockets (%v): net.ipv4.ping_group_range excludes the test's group; .ci/run widens it as distributions ship it", err)
	}
	syscall.Close(fd)
	host := nonLoopbackIPv4(t)
	if !host.IsValid() {
		t.Skip("no non-loopback IPv4 address on this host")
	}
	for i := 0; i < 2; i++ { // the second through the flow the first opened
		if from, ok := guestPing(t, tn, host, 3*time.Second); !ok || from != host {
			t.Fatalf("ping %s (the host's): want an echo reply from it, got %v, %v", host, from, ok)
		}
	}
}

// guestPing sends an echo request from the guest to dst and returns the
// sender of the reply, if one came within wait.
func guestPing(t *testing.T, tn *testNet, dst netip.Addr, wait time.Duration) (netip.Addr, bool) {
	t.Helper()
	proto, netProto := icmp.ProtocolNumber4, ipv4.ProtocolNumber
	req := make([]byte, header.ICMPv4MinimumSize+4)
	header.ICMPv4(req).SetType(header.ICMPv4Echo)
	if dst.Is6() {
		proto, netProto = icmp.ProtocolNumber6, ipv6.ProtocolNumber
		header.ICMPv6(req).SetType(header.ICMPv6EchoRequest)
	}
	copy(req[header.ICMPv4MinimumSize:], "ping")
	var wq waiter.Queue
	ep, terr := tn.guest.NewEndpoint(proto, netProto, &wq)
	if terr != nil {
		t.Fatal(terr)
	}
	defer ep.Close()
	entry, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	var r bytes.Reader
	r.Reset(req)
	if _, terr := ep.Write(&r, tcpip.WriteOptions{To: &tcpip.FullAddress{NIC: 1, Addr: toTCPIP(dst)}}); terr != nil {
		t.Fatalf("ping %s: %v", dst, terr)
	}
	select {
	case <-ch:
	case <-time.After(wait):
		return netip.Addr{}, false
	}
	var out bytes.Buffer
	res, terr := ep.Read(&out, tcpip.ReadOptions{NeedRemoteAddr: true})
	if terr != nil {
		t.Fatalf("reading the reply from %s: %v", dst, terr)
	}
	if b := out.Bytes(); len(b) != len(req) || string(b[header.ICMPv4MinimumSize:]) != "ping" {
		t.Fatalf("reply from %s: %v", dst, b)
	}
	return fromTCPIP(res.RemoteAddr.Addr), true
}

// nonLoopbackIPv4 is an address of this host that is not loopback, to show
// that a published port reveals the client's own address.
func nonLoopbackIPv4(t *testing.T) netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

func TestPublishTCP(t *testing.T) {
	l, err := Listen([]PortMapping{{Proto: "tcp", GuestPort: 80}})
	if err != nil {
		t.Fatal(err)
	}
	hostPort := l.Ports()[0].HostPort
	if hostPort == 0 {
		t.Fatal("Listen did not resolve the ephemeral port")
	}
	tn := newTestNet(t, DefaultConfig(), l)
	ln, err := gonet.ListenTCP(tn.guest, full(netip.MustParseAddrPort("10.0.2.100:80")), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan string, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr().String()
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()

	check := func(client netip.Addr, wantPeer netip.Addr) {
		t.Helper()
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(client, 0))}
		c, err := d.Dial("tcp", netip.AddrPortFrom(client, hostPort).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c, bytes.Repeat([]byte("published "), 50000))
		peer := netip.MustParseAddrPort(<-peers)
		if peer.Addr() != wantPeer {
			t.Errorf("a client at %v shows in the container as %v, want %v", c.LocalAddr(), peer, wantPeer)
		}
		if peer.Port() != uint16(c.LocalAddr().(*net.TCPAddr).Port) {
			t.Errorf("the client's port %v shows as %d", c.LocalAddr(), peer.Port())
		}
	}
	check(netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.2.2"))
	if a := nonLoopbackIPv4(t); a.IsValid() {
		check(a, a)
	} else {
		t.Log("no non-loopback IPv4 address here: the real source address is not checked")
	}
}

func TestPublishTCPNothingListening(t *testing.T) {
	l, err := Listen([]PortMapping{{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), GuestPort: 81}})
	if err != nil {
		t.Fatal(err)
	}
	newTestNet(t, DefaultConfig(), l)
	c, err := net.Dial("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), l.Ports()[0].HostPort).String())
	if err != nil {
		return // reset before connect returned: refused, as wanted
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read from a published port nobody serves: %v, want a reset or EOF", err)
	}
}

func TestPublishUDP(t *testing.T) {
	l, err := Listen([]PortMapping{{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), GuestPort: 53}})
	if err != nil {
		t.Fatal(err)
	}
	tn := newTestNet(t, DefaultConfig(), l)
	gl := full(netip.MustParseAddrPort("10.0.2.100:53"))
	pc, err := gonet.DialUDP(tn.guest, &gl, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	peers := make(chan string, 4)
	go func() {
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			peers <- from.String()
			pc.WriteTo(buf[:n], from)
		}
	}()
	c, err := net.Dial("udp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), l.Ports()[0].HostPort).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, size := range []int{10, 50000} {
		msg := bytes.Repeat([]byte{'p'}, size)
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, maxDatagram)
		n, err := c.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("%d-byte datagram: %d bytes back, %v", size, n, err)
		}
		peer := netip.MustParseAddrPort(<-peers)
		if want := netip.AddrPortFrom(netip.MustParseAddr("10.0.2.2"), uint16(c.LocalAddr().(*net.UDPAddr).Port)); peer != want {
			t.Errorf("the loopback client shows in the container as %v, want %v", peer, want)
		}
	}
}

func TestListenPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := uint16(busy.Addr().(*net.TCPAddr).Port)
	free := PortMapping{Proto: "udp", GuestPort: 1}
	_, err = Listen([]PortMapping{free, {Proto: "tcp", HostPort: port, GuestPort: 80}})
	want := "port " + strconv.Itoa(int(port)) + "/tcp on 0.0.0.0 is already in use: choose another -p HOSTPORT"
	if err == nil || err.Error() != want {
		t.Fatalf("Listen on a port in use: %v, want %q", err, want)
	}
	var pe *PortError
	if !errors.As(err, &pe) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %T does not unwrap to EADDRINUSE", err)
	}
}

func TestGuestPeer(t *testing.T) {
	n := &Stack{cfg: DefaultConfig()}
	for _, tc := range []struct {
		client string
		want   []string
	}{
		{"127.0.0.1:5000", []string{"10.0.2.2:5000->10.0.2.100:80"}},
		{"192.168.1.9:5000", []string{"192.168.1.9:5000->10.0.2.100:80"}},
		{"10.0.2.50:5000", []string{"10.0.2.2:5000->10.0.2.100:80"}},
		{"[::ffff:192.168.1.9]:5000", []string{"192.168.1.9:5000->10.0.2.100:80"}},
		{"[::1]:5000", []string{"[fd00::2]:5000->[fd00::100]:80", "10.0.2.2:5000->10.0.2.100:80"}},
		{"[2001:db8::1]:5000", []string{"[2001:db8::1]:5000->[fd00::100]:80", "10.0.2.2:5000->10.0.2.100:80"}},
		{"[fe80::1%eth0]:5000", []string{"[fd00::2]:5000->[fd00::100]:80", "10.0.2.2:5000->10.0.2.100:80"}},
	} {
		var got []string
		for _, p := range n.guestPeer(netip.MustParseAddrPort(tc.client), 80) {
			got = append(got, p[0].String()+"->"+p[1].String())
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: %v, want %v", tc.client, got, tc.want)
		}
	}
}
