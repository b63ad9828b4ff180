package netconf

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/rlcontainers/rl/netstack/link"
)

// PortMapping publishes a container port on the host (`-p`).
type PortMapping struct {
	Proto     string     // "tcp" or "udp"
	HostIP    netip.Addr // the host address to listen on; the zero Addr is all of them
	HostPort  uint16     // 0 asks the kernel for a free port (Listen resolves it)
	GuestPort uint16     // the container's port
}

// String is the mapping as rl ps shows it and the container's state keeps
// it: "0.0.0.0:8080->80/tcp", "[::1]:8080->80/tcp" (ParsePortMapping reads
// it back).
func (p PortMapping) String() string {
	return p.Host() + "->" + p.Container()
}

// Host is the host's end: "0.0.0.0:8080" (every address), "[::1]:8080".
func (p PortMapping) Host() string {
	return netip.AddrPortFrom(p.HostAddr(), p.HostPort).String()
}

// HostAddr is the host address listened on, 0.0.0.0 for every address.
func (p PortMapping) HostAddr() netip.Addr {
	if !p.HostIP.IsValid() {
		return netip.IPv4Unspecified()
	}
	return p.HostIP
}

// Container is the container's end: "80/tcp".
func (p PortMapping) Container() string {
	return fmt.Sprintf("%d/%s", p.GuestPort, p.Proto)
}

// ParsePortMapping reads back what String wrote.
func ParsePortMapping(s string) (PortMapping, error) {
	host, ctr, ok := strings.Cut(s, "->")
	port, proto, ok2 := strings.Cut(ctr, "/")
	hp, err := netip.ParseAddrPort(host)
	guest, err2 := strconv.ParseUint(port, 10, 16)
	if !ok || !ok2 || err != nil || err2 != nil || (proto != "tcp" && proto != "udp") {
		return PortMapping{}, fmt.Errorf("published port %q: want HOSTIP:HOSTPORT->PORT/tcp|udp", s)
	}
	m := PortMapping{Proto: proto, HostIP: hp.Addr(), HostPort: hp.Port(), GuestPort: uint16(guest)}
	if m.HostIP == netip.IPv4Unspecified() {
		m.HostIP = netip.Addr{}
	}
	return m, nil
}

// Config is the network of one container. DefaultConfig gives podman's
// slirp4netns defaults; ParseOptions reads podman's option syntax.
type Config struct {
	// MTU of the link between the container and the stack (65520, slirp4netns's maximum).
	MTU uint32
	// Subnet is the container's IPv4 network (10.0.2.0/24).
	Subnet netip.Prefix
	// Gateway is the stack's address and the container's default route (10.0.2.2).
	Gateway netip.Addr
	// DNS is where the stack answers DNS, relaying to DNSServers (10.0.2.3).
	DNS netip.Addr
	// Guest is the container's IPv4 address (10.0.2.100).
	Guest netip.Addr
	// IPv6 gives the container IPv6 too (true; podman's enable_ipv6).
	IPv6 bool
	// Subnet6 is the container's IPv6 network (fd00::/64).
	Subnet6 netip.Prefix
	// Gateway6 is the stack's IPv6 address and the container's default route (fd00::2).
	Gateway6 netip.Addr
	// DNS6 is the IPv6 address of the DNS relay (fd00::3).
	DNS6 netip.Addr
	// Guest6 is the container's IPv6 address (fd00::100).
	Guest6 netip.Addr
	// AllowHostLoopback lets the gateway addresses reach the host's 127.0.0.1
	// and ::1 (false: a container must not reach the user's local services unasked).
	AllowHostLoopback bool
	// Outbound and Outbound6 are the host's addresses that connections to
	// the outside leave from (podman's outbound_addr and outbound_addr6);
	// unset, the host's routes choose.
	Outbound  netip.Addr
	Outbound6 netip.Addr
	// Bypass gives the container's TCP connections to the outside host
	// sockets of their own instead of the stack (netstack/bypass: its
	// connect(2) is answered by the supervisor through seccomp).
	Bypass bool
	// DNSServers are the upstream resolvers the DNS relay asks, in order (HostResolvers).
	DNSServers []netip.AddrPort
	// ResolvConf is the host's resolv.conf DNSServers were read from: the
	// relay reads it (HostResolvers) again once it or systemd-resolved's
	// changes, as a laptop's network or VPN comes and goes. Empty: the
	// DNSServers stay.
	ResolvConf string `json:",omitempty"`
	// Ports are the published ports; New serves those of its Listeners.
	Ports []PortMapping
}

// DefaultConfig is podman's default slirp4netns network with IPv6 enabled.
func DefaultConfig() Config {
	return Config{
		MTU:      65520,
		Subnet:   netip.MustParsePrefix("10.0.2.0/24"),
		Gateway:  netip.MustParseAddr("10.0.2.2"),
		DNS:      netip.MustParseAddr("10.0.2.3"),
		Guest:    netip.MustParseAddr("10.0.2.100"),
		IPv6:     true,
		Subnet6:  netip.MustParsePrefix("fd00::/64"),
		Gateway6: netip.MustParseAddr("fd00::2"),
		DNS6:     netip.MustParseAddr("fd00::3"),
		Guest6:   netip.MustParseAddr("fd00::100"),
	}
}

// LocalFor is the host address a socket to dst is bound to: Outbound or
// Outbound6 for dst's family, none for the host's loopback or when unset.
func (c Config) LocalFor(dst netip.Addr) netip.Addr {
	switch dst = dst.Unmap(); {
	case dst.IsLoopback():
		return netip.Addr{}
	case dst.Is4():
		return c.Outbound
	}
	return c.Outbound6
}

// GuestAddrs are the container's addresses that a host client at client
// reaches a published port at, in the order to try: an IPv6 client the
// container's IPv6 address first (with IPv6), then its IPv4 one, for a
// service that listens on IPv4 only.
func (c Config) GuestAddrs(client netip.Addr) []netip.Addr {
	if client.Unmap().Is4() || !c.IPv6 {
		return []netip.Addr{c.Guest}
	}
	return []netip.Addr{c.Guest6, c.Guest}
}

// HostTarget is where the host dials for the container's connection to
// dst, or false when the policy refuses it (the NAT's and the bypass's
// one policy):
//   - the gateway is the host's loopback, only with AllowHostLoopback;
//   - the DNS addresses serve DNS only (the stack's relay);
//   - loopback, the rest of the container's subnets, multicast, broadcast
//     and unspecified destinations are never forwarded, nor IPv6 ones
//     without IPv6;
//   - every other destination is dialled as is, from the host's sockets.
func (c Config) HostTarget(dst netip.AddrPort) (netip.AddrPort, bool) {
	a := dst.Addr().Unmap()
	switch {
	case a.Is6() && !c.IPv6:
		return netip.AddrPort{}, false
	case a == c.Gateway || (c.IPv6 && a == c.Gateway6):
		if !c.AllowHostLoopback {
			return netip.AddrPort{}, false
		}
		lo := netip.IPv6Loopback()
		if a.Is4() {
			lo = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		return netip.AddrPortFrom(lo, dst.Port()), true
	case c.Subnet.Contains(a), c.IPv6 && c.Subnet6.Contains(a),
		a.IsLoopback(), a.IsMulticast(), a.IsUnspecified(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, dst.Port()), true
}

// Link is the container side of this configuration, for link.SetupGuest.
func (c Config) Link() link.Config {
	l := link.DefaultConfig()
	l.MTU = c.MTU
	l.Addr = netip.PrefixFrom(c.Guest, c.Subnet.Bits())
	l.Gateway = c.Gateway
	l.Addr6, l.Gateway6 = netip.Prefix{}, netip.Addr{}
	if c.IPv6 {
		l.Addr6 = netip.PrefixFrom(c.Guest6, c.Subnet6.Bits())
		l.Gateway6 = c.Gateway6
	}
	return l
}

// Nameservers are the addresses the container's /etc/resolv.conf lists.
func (c Config) Nameservers() []netip.Addr {
	if c.IPv6 {
		return []netip.Addr{c.DNS, c.DNS6}
	}
	return []netip.Addr{c.DNS}
}

// options are podman's slirp4netns options that rl understands. Those
// that only make sense for the slirp4netns binary (enable_sandbox,
// enable_seccomp: a sandbox rl could not give) are refused rather than
// ignored. port_handler is taken and changes nothing: rl's one port
// handler gives what either of podman's does, the client's own address
// (slirp4netns's) and a relay in the kernel for the host's loopback
// (rootlesskit's speed), so podman's command lines run.
var options = []string{"mtu", "cidr", "allow_host_loopback", "enable_ipv6", "outbound_addr", "outbound_addr6", "port_handler", "bypass"}

// OptionNames lists the options ParseOptions takes, for messages: "mtu, cidr, ...".
func OptionNames() string { return strings.Join(options, ", ") }

// ParseOptions reads podman's slirp4netns option list, as given after
// `--network slirp:`, over DefaultConfig: "mtu=1500,allow_host_loopback=true".
func ParseOptions(s string) (Config, error) {
	c := DefaultConfig()
	if s == "" {
		return c, nil
	}
	for _, opt := range strings.Split(s, ",") {
		key, val, ok := strings.Cut(opt, "=")
		if !ok {
			return c, fmt.Errorf("network option %q: want NAME=VALUE (options: %s)", opt, OptionNames())
		}
		switch key {
		case "mtu":
			n, err := strconv.ParseUint(val, 10, 32)
			// slirp4netns's bounds: IPv4's minimum datagram and its own maximum.
			if err != nil || n < 68 || n > 65521 {
				return c, fmt.Errorf("network option mtu=%s: want a number from 68 to 65521", val)
			}
			c.MTU = uint32(n)
		case "cidr":
			p, err := netip.ParsePrefix(val)
			if err != nil || !p.Addr().Is4() || p.Bits() > 24 {
				return c, fmt.Errorf("network option cidr=%s: want an IPv4 network of at least /24, like 10.0.2.0/24", val)
			}
			// slirp4netns's layout: gateway .2, DNS .3, container .100.
			p = p.Masked()
			base := p.Addr().As4()
			at := func(last byte) netip.Addr { b := base; b[3] = last; return netip.AddrFrom4(b) }
			c.Subnet, c.Gateway, c.DNS, c.Guest = p, at(2), at(3), at(100)
		case "allow_host_loopback", "enable_ipv6", "bypass":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return c, fmt.Errorf("network option %s=%s: want true or false", key, val)
			}
			switch key {
			case "enable_ipv6":
				c.IPv6 = b
			case "bypass":
				c.Bypass = b
			default:
				c.AllowHostLoopback = b
			}
		case "port_handler":
			if val != "rootlesskit" && val != "slirp4netns" {
				return c, fmt.Errorf("network option port_handler=%s: want rootlesskit or slirp4netns (either gives rl's port handler)", val)
			}
		case "outbound_addr", "outbound_addr6":
			a, err := hostAddress(val, key == "outbound_addr6")
			if err != nil {
				return c, fmt.Errorf("network option %s=%s: %v", key, val, err)
			}
			if key == "outbound_addr" {
				c.Outbound = a
			} else {
				c.Outbound6 = a
			}
		default:
			return c, fmt.Errorf("unknown network option %q (options: %s)", key, OptionNames())
		}
	}
	if c.IPv6 && c.MTU < 1280 {
		return c, fmt.Errorf("network option mtu=%d: IPv6 needs at least 1280: raise it or add enable_ipv6=false", c.MTU)
	}
	return c, nil
}

// hostAddress is outbound_addr's value: one of the host's addresses of the
// family asked (IPv6 for outbound_addr6), or an interface, whose first such
// address it takes (for IPv6, the first that is not link-local). It reads
// the host's interfaces: it runs in the host's network namespace.
func hostAddress(val string, want6 bool) (netip.Addr, error) {
	family := "IPv4"
	if want6 {
		family = "IPv6"
	}
	local := func(keep func(netip.Addr) bool, addrs []net.Addr) (netip.Addr, bool) {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && keep(ip.Unmap()) {
					return ip.Unmap(), true
				}
			}
		}
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(val); err == nil {
		a = a.Unmap()
		if a.Is6() != want6 || a.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("want an %s address or an interface (outbound_addr takes IPv4, outbound_addr6 IPv6)", family)
		}
		all, err := net.InterfaceAddrs()
		if err != nil {
			return netip.Addr{}, err
		}
		if _, ok := local(func(ip netip.Addr) bool { return ip == a }, all); !ok {
			return netip.Addr{}, fmt.Errorf("%s is not an address of this host: give one of its addresses (ip -br addr) or an interface", a)
		}
		return a, nil
	}
	ifi, err := net.InterfaceByName(val)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("no such interface or IP address: give an interface (ip -br addr) or one of its %s addresses", family)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	a, ok := local(func(ip netip.Addr) bool { return ip.Is6() == want6 && !ip.IsLinkLocalUnicast() }, addrs)
	if !ok {
		return netip.Addr{}, fmt.Errorf("interface %s has no %s address: give another interface or one of the host's %s addresses (ip -br addr)", val, family, family)
	}
	return a, nil
}

// Validate checks that c is complete (the stack takes no other).
func (c Config) Validate() error {
	if !c.Subnet.IsValid() || !c.Gateway.Is4() || !c.DNS.Is4() || !c.Guest.Is4() {
		return fmt.Errorf("netstack: incomplete IPv4 configuration (subnet %v, gateway %v, dns %v, guest %v)", c.Subnet, c.Gateway, c.DNS, c.Guest)
	}
	if c.IPv6 && (!c.Subnet6.IsValid() || !c.Gateway6.Is6() || !c.DNS6.Is6() || !c.Guest6.Is6()) {
		return fmt.Errorf("netstack: incomplete IPv6 configuration (subnet %v, gateway %v, dns %v, guest %v)", c.Subnet6, c.Gateway6, c.DNS6, c.Guest6)
	}
	if c.MTU == 0 {
		return fmt.Errorf("netstack: MTU is 0")
	}
	return nil
}
