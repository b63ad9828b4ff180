package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// ParsePorts reads docker's -p syntax, [IP:][HOSTPORT:]CTRPORT[/tcp|/udp]:
// "8080:80", "127.0.0.1:8080:80/udp", "[::1]:8080:80", "8000-8010:80-90"
// (ranges of equal length), "80" or "127.0.0.1::80" (a free host port, as
// docker). Each port of a range becomes one mapping.
func ParsePorts(specs []string) ([]PortMapping, error) {
	var out []PortMapping
	for _, spec := range specs {
		ms, err := parsePort(spec)
		if err != nil {
			return nil, fmt.Errorf("-p %s: %w", spec, err)
		}
		out = append(out, ms...)
	}
	return out, nil
}

func parsePort(spec string) ([]PortMapping, error) {
	rest, proto := spec, "tcp"
	if i := strings.LastIndexByte(spec, '/'); i >= 0 {
		rest, proto = spec[:i], strings.ToLower(spec[i+1:])
		if proto != "tcp" && proto != "udp" {
			return nil, fmt.Errorf("protocol %q: want tcp or udp", proto)
		}
	}
	var ipStr, hostStr, ctrStr string
	if strings.HasPrefix(rest, "[") { // [IPv6]:HOSTPORT:CTRPORT
		end := strings.Index(rest, "]:")
		if end < 0 {
			return nil, fmt.Errorf("want [IPv6]:HOSTPORT:CTRPORT")
		}
		ipStr, rest = rest[1:end], rest[end+2:]
		var ok bool
		if hostStr, ctrStr, ok = strings.Cut(rest, ":"); !ok {
			return nil, fmt.Errorf("want [IPv6]:HOSTPORT:CTRPORT")
		}
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			ctrStr = parts[0]
		case 2:
			hostStr, ctrStr = parts[0], parts[1]
		case 3:
			ipStr, hostStr, ctrStr = parts[0], parts[1], parts[2]
		default:
			return nil, fmt.Errorf("want [IP:][HOSTPORT:]CTRPORT[/tcp|/udp]")
		}
	}
	var ip netip.Addr
	if ipStr != "" {
		var err error
		if ip, err = netip.ParseAddr(ipStr); err != nil {
			return nil, fmt.Errorf("host address %q: %w", ipStr, err)
		}
		ip = ip.Unmap()
		if ip.IsUnspecified() && ip.Is4() {
			ip = netip.Addr{} // 0.0.0.0 means every address, as docker
		}
	}
	ctrLo, ctrHi, err := parseRange(ctrStr, false)
	if err != nil {
		return nil, fmt.Errorf("container port: %w", err)
	}
	hostLo, hostHi := uint16(0), uint16(0)
	if hostStr != "" {
		if hostLo, hostHi, err = parseRange(hostStr, true); err != nil {
			return nil, fmt.Errorf("host port: %w", err)
		}
		if hostHi-hostLo != ctrHi-ctrLo {
			return nil, fmt.Errorf("host range %s and container range %s differ in length", hostStr, ctrStr)
		}
	}
	var out []PortMapping
	for p := uint32(ctrLo); p <= uint32(ctrHi); p++ {
		m := PortMapping{Proto: proto, HostIP: ip, GuestPort: uint16(p)}
		if hostStr != "" {
			m.HostPort = hostLo + uint16(p-uint32(ctrLo))
		}
		out = append(out, m)
	}
	return out, nil
}

// parseRange reads PORT or LO-HI; port 0 only where allowZero (host: any port).
func parseRange(s string, allowZero bool) (lo, hi uint16, err error) {
	loS, hiS, isRange := strings.Cut(s, "-")
	if !isRange {
		hiS = loS
	}
	l, err1 := strconv.ParseUint(loS, 10, 16)
	h, err2 := strconv.ParseUint(hiS, 10, 16)
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("%q is not a port or a range LO-HI of ports: use numbers from 1 to 65535", s)
	case h < l:
		return 0, 0, fmt.Errorf("range %q ends before it starts: write it LO-HI", s)
	case l == 0 && !(allowZero && !isRange):
		return 0, 0, fmt.Errorf("port 0 in %q: use numbers from 1 to 65535 (0 only as a lone host port: any free one)", s)
	}
	return uint16(l), uint16(h), nil
}

// PortError reports a published port that could not be opened on the host,
// with the fix when the cause is a known one.
type PortError struct {
	Mapping PortMapping
	Err     error
}

func (e *PortError) Error() string {
	m := e.Mapping
	host := "0.0.0.0"
	if m.HostIP.IsValid() {
		host = m.HostIP.String()
	}
	port := fmt.Sprintf("port %d/%s on %s", m.HostPort, m.Proto, host)
	switch {
	case errors.Is(e.Err, syscall.EADDRINUSE):
		return port + " is already in use: choose another -p HOSTPORT"
	case errors.Is(e.Err, syscall.EACCES):
		start := "1024"
		if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil {
			start = strings.TrimSpace(string(b))
		}
		return fmt.Sprintf("%s: permission denied: ports below %s need root on the host (sysctl net.ipv4.ip_unprivileged_port_start=%d) or another -p HOSTPORT", port, start, m.HostPort)
	case errors.Is(e.Err, syscall.EADDRNOTAVAIL):
		return fmt.Sprintf("%s: the host has no address %s", port, host)
	}
	return fmt.Sprintf("%s: %v", port, e.Err)
}

func (e *PortError) Unwrap() error { return e.Err }

// Listeners are the host side of the published ports, opened before the
// container starts so that a port in use fails `rl run` at once; New serves
// them and Close closes them.
type Listeners struct {
	ls []*portListener
}

type portListener struct {
	m   PortMapping // HostPort resolved when it asked for any port
	tcp *net.TCPListener
	udp *net.UDPConn
}

// Listen opens a listener for each mapping, in the caller's (the host's)
// network namespace. On error none stays open.
func Listen(ports []PortMapping) (*Listeners, error) {
	l := &Listeners{}
	for _, m := range ports {
		pl, err := listen(m)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.ls = append(l.ls, pl)
	}
	return l, nil
}

func listen(m PortMapping) (*portListener, error) {
	network := m.Proto
	if m.HostIP.Is4() {
		network += "4"
	}
	addr := net.JoinHostPort("", strconv.Itoa(int(m.HostPort)))
	if m.HostIP.IsValid() {
		addr = netip.AddrPortFrom(m.HostIP, m.HostPort).String()
	}
	pl := &portListener{m: m}
	var local net.Addr
	switch m.Proto {
	case "tcp":
		ln, err := net.Listen(network, addr)
		if err != nil {
			return nil, &PortError{Mapping: m, Err: err}
		}
		pl.tcp, local = ln.(*net.TCPListener), ln.Addr()
	case "udp":
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			return nil, &PortError{Mapping: m, Err: err}
		}
		pl.udp, local = pc.(*net.UDPConn), pc.LocalAddr()
		_ = pl.udp.SetReadBuffer(4 << 20) // best effort: bursts of datagrams
	default:
		return nil, &PortError{Mapping: m, Err: fmt.Errorf("unknown protocol %q", m.Proto)}
	}
	switch a := local.(type) {
	case *net.TCPAddr:
		pl.m.HostPort = uint16(a.Port)
	case *net.UDPAddr:
		pl.m.HostPort = uint16(a.Port)
	}
	return pl, nil
}

// Ports are the mappings as opened, with the ports the kernel chose.
func (l *Listeners) Ports() []PortMapping {
	if l == nil {
		return nil
	}
	out := make([]PortMapping, len(l.ls))
	for i, pl := range l.ls {
		out[i] = pl.m
	}
	return out
}

// Close closes every listener.
func (l *Listeners) Close() error {
	if l == nil {
		return nil
	}
	var errs []error
	for _, pl := range l.ls {
		var err error
		if pl.tcp != nil {
			err = pl.tcp.Close()
		} else {
			err = pl.udp.Close()
		}
		if err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

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
	v4 := [2]netip.AddrPort{
		netip.AddrPortFrom(c.Gateway, client.Port()),
		netip.AddrPortFrom(c.Guest, guestPort),
	}
	if a.Is4() {
		if !a.IsLoopback() && !c.Subnet.Contains(a) && !a.IsLinkLocalUnicast() && !a.IsUnspecified() {
			v4[0] = netip.AddrPortFrom(a, client.Port())
		}
		return [][2]netip.AddrPort{v4}
	}
	if !c.IPv6 {
		return [][2]netip.AddrPort{v4}
	}
	src := c.Gateway6
	if !a.IsLoopback() && !c.Subnet6.Contains(a) && !a.IsLinkLocalUnicast() && !a.IsUnspecified() {
		src = a.WithZone("")
	}
	v6 := [2]netip.AddrPort{netip.AddrPortFrom(src, client.Port()), netip.AddrPortFrom(c.Guest6, guestPort)}
	return [][2]netip.AddrPort{v6, v4}
}

// publish serves one published port until Close.
func (n *Stack) publish(pl *portListener) {
	if pl.tcp != nil {
		n.goTracked(func() { n.serveTCPPort(pl) })
	} else {
		n.goTracked(func() { n.serveUDPPort(pl) })
	}
}

func (n *Stack) serveTCPPort(pl *portListener) {
	for {
		c, err := pl.tcp.AcceptTCP()
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
			spliced, err := n.dialGuestNS("tcp", client, pl.m.GuestPort)
			if err == nil {
				n.relaySplice(c, spliced.(*net.TCPConn))
				return
			}
			if !errors.Is(err, errNoSplice) {
				c.SetLinger(0)
				c.Close()
				return
			}
			guest, err := n.dialGuestTCP(client, pl.m.GuestPort)
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
func (n *Stack) serveUDPPort(pl *portListener) {
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
		k, client, err := pl.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || n.ctx.Err() != nil {
				return
			}
			continue
		}
		mu.Lock()
		f, ok := flows[client]
		if !ok {
			g, err := n.dialGuestNS("udp", client, pl.m.GuestPort)
			if errors.Is(err, errNoSplice) {
				g, err = n.dialGuestUDP(client, pl.m.GuestPort)
			}
			if err != nil {
				mu.Unlock()
				continue
			}
			f = flow{guest: g, idle: newUDPFlow()}
			flows[client] = f
			n.goTracked(func() {
				f.idle.pump(g, func(b []byte) error {
					_, err := pl.udp.WriteToUDPAddrPort(b, client)
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
