package netconf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ParsePorts reads docker's -p syntax, [IP:][HOSTPORT:]CTRPORT[/tcp|/udp]:
// "8080:80", "127.0.0.1:8080:80/udp", "[::1]:8080:80", "8000-8010:80-90"
// (ranges of equal length), "80" or "127.0.0.1::80" (a free host port, as
// docker). Each port of a range becomes one mapping.
func ParsePorts(specs []string) ([]PortMapping, error) {
	var out []PortMapping
	for _, spec := range specs {
		ms, err := ParsePort(spec)
		if err != nil {
			return nil, fmt.Errorf("-p %s: %w", spec, err)
		}
		out = append(out, ms...)
	}
	return out, nil
}

// ParsePort reads one -p value; its errors do not name the flag.
func ParsePort(spec string) ([]PortMapping, error) {
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
			return nil, fmt.Errorf("host address %q is not an IP address: give one of the host's (127.0.0.1, [::1]) or none for all", ipStr)
		}
		ip = ip.Unmap()
		if ip.Is6() && ip.IsLinkLocalUnicast() && ip.Zone() == "" {
			return nil, fmt.Errorf("host address %s is link-local: name its interface, as [%s%%eth0]", ipStr, ipStr)
		}
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
	port := fmt.Sprintf("port %d/%s on %s", m.HostPort, m.Proto, m.HostAddr())
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
		return fmt.Sprintf("%s: the host has no address %s: give one of its addresses (ip -br addr) in -p IP:HOSTPORT:CTRPORT", port, m.HostAddr())
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

// Socket is one published port's host socket, as the stack serves it.
type Socket struct {
	Mapping PortMapping // HostPort resolved
	TCP     *net.TCPListener
	UDP     *net.UDPConn // one of TCP and UDP
}

// Sockets are l's sockets, in Ports' order.
func (l *Listeners) Sockets() []Socket {
	if l == nil {
		return nil
	}
	out := make([]Socket, len(l.ls))
	for i, pl := range l.ls {
		out[i] = Socket{Mapping: pl.m, TCP: pl.tcp, UDP: pl.udp}
	}
	return out
}

// TakeTCP moves l's TCP listeners to a Listeners of their own, which it
// returns (nil when there are none): with bypass=true the supervisor
// serves them (netstack/bypass.Ports), the stack the UDP ones.
func (l *Listeners) TakeTCP() *Listeners {
	if l == nil {
		return nil
	}
	var tcp, rest []*portListener
	for _, pl := range l.ls {
		if pl.tcp != nil {
			tcp = append(tcp, pl)
		} else {
			rest = append(rest, pl)
		}
	}
	l.ls = rest
	if len(tcp) == 0 {
		return nil
	}
	return &Listeners{ls: tcp}
}
