package netconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		in      string
		check   func(Config) bool
		wantErr string
	}{
		{in: "", check: func(c Config) bool { return reflect.DeepEqual(c, DefaultConfig()) }},
		{in: "mtu=1500", check: func(c Config) bool { return c.MTU == 1500 && c.IPv6 }},
		{in: "allow_host_loopback=true", check: func(c Config) bool { return c.AllowHostLoopback }},
		{in: "enable_ipv6=false,mtu=576", check: func(c Config) bool { return !c.IPv6 && c.MTU == 576 }},
		{in: "cidr=10.5.0.0/16", check: func(c Config) bool {
			return c.Subnet.String() == "10.5.0.0/16" && c.Gateway.String() == "10.5.0.2" && c.DNS.String() == "10.5.0.3" && c.Guest.String() == "10.5.0.100"
		}},
		{in: "mtu=576", wantErr: "IPv6 needs at least 1280"},
		{in: "mtu=70000", wantErr: "from 68 to 65521"},
		{in: "allow_host_loopback=maybe", wantErr: "want true or false"},
		{in: "bypass=true", check: func(c Config) bool { return c.Bypass && !c.AllowHostLoopback }},
		{in: "bypass=1,allow_host_loopback=true", check: func(c Config) bool { return c.Bypass && c.AllowHostLoopback }},
		{in: "bypass=yes", wantErr: "network option bypass=yes: want true or false"},
		{in: "port_handler=slirp4netns,mtu=1500", check: func(c Config) bool { return c.MTU == 1500 }},
		{in: "port_handler=rootlesskit", check: func(c Config) bool { return reflect.DeepEqual(c, DefaultConfig()) }},
		{in: "port_handler=socat", wantErr: "network option port_handler=socat: want rootlesskit or slirp4netns"},
		{in: "enable_sandbox=true", wantErr: "unknown network option \"enable_sandbox\" (options: mtu, cidr, allow_host_loopback, enable_ipv6, outbound_addr, outbound_addr6, port_handler, bypass)"},
		{in: "mtu", wantErr: "want NAME=VALUE"},
		{in: "cidr=fd00::/64", wantErr: "IPv4 network"},
	} {
		c, err := ParseOptions(tc.in)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case !tc.check(c):
			t.Errorf("%q: %+v", tc.in, c)
		}
	}
}

// TestHostTarget: the policy NAT and bypass share.
func TestHostTarget(t *testing.T) {
	def := DefaultConfig()
	lo := def
	lo.AllowHostLoopback = true
	v4only := def
	v4only.IPv6 = false
	for _, tc := range []struct {
		cfg  Config
		dst  string
		want string // "" refused
	}{
		{def, "192.0.2.7:80", "192.0.2.7:80"},
		{def, "[2001:db8::1]:443", "[2001:db8::1]:443"},
		{def, "[::ffff:192.0.2.7]:80", "192.0.2.7:80"},
		{def, "10.0.2.2:8080", ""},
		{lo, "10.0.2.2:8080", "127.0.0.1:8080"},
		{lo, "[fd00::2]:8080", "[::1]:8080"},
		{lo, "[::ffff:10.0.2.2]:8080", "127.0.0.1:8080"},
		{def, "10.0.2.3:53", ""},
		{def, "10.0.2.77:80", ""},
		{def, "[fd00::3]:53", ""},
		{def, "127.0.0.1:80", ""},
		{def, "[::1]:80", ""},
		{def, "224.0.0.1:5353", ""},
		{def, "255.255.255.255:67", ""},
		{def, "0.0.0.0:80", ""},
		{v4only, "[2001:db8::1]:443", ""},
		{v4only, "192.0.2.7:80", "192.0.2.7:80"},
	} {
		got, ok := tc.cfg.HostTarget(netip.MustParseAddrPort(tc.dst))
		if ok != (tc.want != "") || ok && got.String() != tc.want {
			t.Errorf("HostTarget(%s) (loopback %v, IPv6 %v) = %v, %v; want %q", tc.dst, tc.cfg.AllowHostLoopback, tc.cfg.IPv6, got, ok, tc.want)
		}
	}
}

func TestConfigLink(t *testing.T) {
	c, _ := ParseOptions("mtu=9000,enable_ipv6=false")
	l := c.Link()
	if l.MTU != 9000 || l.Addr.String() != "10.0.2.100/24" || l.Gateway.String() != "10.0.2.2" || l.Addr6.IsValid() {
		t.Errorf("Link() = %+v", l)
	}
	if l := DefaultConfig().Link(); l.Addr6.String() != "fd00::100/64" || l.Gateway6.String() != "fd00::2" {
		t.Errorf("Link() with IPv6 = %+v", l)
	}
}

func TestParsePorts(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		in      string
		want    []PortMapping
		wantErr string
	}{
		{in: "8080:80", want: []PortMapping{{"tcp", netip.Addr{}, 8080, 80}}},
		{in: "80", want: []PortMapping{{"tcp", netip.Addr{}, 0, 80}}},
		{in: "127.0.0.1:8080:80/udp", want: []PortMapping{{"udp", lo, 8080, 80}}},
		{in: "127.0.0.1::80", want: []PortMapping{{"tcp", lo, 0, 80}}},
		{in: "0.0.0.0:8080:80", want: []PortMapping{{"tcp", netip.Addr{}, 8080, 80}}},
		{in: "[::1]:8080:80/TCP", want: []PortMapping{{"tcp", netip.IPv6Loopback(), 8080, 80}}},
		{in: "8000-8002:80-82", want: []PortMapping{{"tcp", netip.Addr{}, 8000, 80}, {"tcp", netip.Addr{}, 8001, 81}, {"tcp", netip.Addr{}, 8002, 82}}},
		{in: "53-54/udp", want: []PortMapping{{"udp", netip.Addr{}, 0, 53}, {"udp", netip.Addr{}, 0, 54}}},
		{in: "8000-8010:80-90", want: nil}, // length checked below
		{in: "8000-8010:80", wantErr: "differ in length"},
		{in: "8080:80/sctp", wantErr: "want tcp or udp"},
		{in: "8080:0", wantErr: "port 0"},
		{in: "8080:70000", wantErr: "not a port"},
		{in: "90-80", wantErr: "ends before it starts"},
		{in: "localhost:8080:80", wantErr: `host address "localhost" is not an IP address`},
		{in: "[fe80::1]:8080:80", wantErr: "link-local: name its interface, as [fe80::1%eth0]"},
		{in: "[fe80::1%eth0]:8080:80", want: []PortMapping{{"tcp", netip.MustParseAddr("fe80::1%eth0"), 8080, 80}}},
		{in: "1:2:3:4", wantErr: "want [IP:][HOSTPORT:]CTRPORT"},
	} {
		got, err := ParsePorts([]string{tc.in})
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "-p "+tc.in) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.want == nil:
			if len(got) != 11 || got[10].HostPort != 8010 || got[10].GuestPort != 90 {
				t.Errorf("%q: %v", tc.in, got)
			}
		case !reflect.DeepEqual(got, tc.want):
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestHostResolvers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	upstream := write("upstream.conf", "# systemd-resolved\nnameserver 192.0.2.1\nnameserver 2001:db8::53\nsearch example.org\n")
	defer func(old string) { SystemdResolvConf = old }(SystemdResolvConf)
	SystemdResolvConf = upstream

	for _, tc := range []struct {
		name, conf string
		want       string
		wantErr    string
	}{
		{name: "plain", conf: "nameserver 10.255.255.53\noptions edns0\n", want: "10.255.255.53:53"},
		{name: "two", conf: "nameserver 1.1.1.1\n; comment\nnameserver 9.9.9.9\n", want: "1.1.1.1:53 9.9.9.9:53"},
		{name: "scoped", conf: "nameserver fe80::1%eth0\n", want: "[fe80::1%eth0]:53"},
		{name: "resolved stub", conf: "nameserver 127.0.0.53\noptions edns0 trust-ad\n", want: "192.0.2.1:53 [2001:db8::53]:53"},
		{name: "stub and real", conf: "nameserver 127.0.0.53\nnameserver 8.8.8.8\n", want: "127.0.0.53:53 8.8.8.8:53"},
		{name: "empty", conf: "search example.org\n", wantErr: "lists no nameserver: give the container one with --dns"},
	} {
		got, err := HostResolvers(write(tc.name, tc.conf))
		var s []string
		for _, a := range got {
			s = append(s, a.String())
		}
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case strings.Join(s, " ") != tc.want:
			t.Errorf("%s: %v, want %s", tc.name, s, tc.want)
		}
	}

	// A stub without systemd-resolved's file: the stub itself, reachable
	// from the supervisor (it lives in the host's network namespace).
	SystemdResolvConf = filepath.Join(dir, "missing")
	got, err := HostResolvers(write("stub-only", "nameserver 127.0.0.53\n"))
	if err != nil || len(got) != 1 || got[0].String() != "127.0.0.53:53" {
		t.Errorf("stub without resolved's file: %v %v", got, err)
	}
	if _, err := HostResolvers(filepath.Join(dir, "nope")); err == nil {
		t.Error("a missing resolv.conf gave no error")
	}
}

// TestPortMappingString: the state's form of a published port reads back
// as the mapping it was written from; an IPv6 host address is bracketed.
func TestPortMappingString(t *testing.T) {
	for _, c := range []struct {
		m    PortMapping
		want string
	}{
		{PortMapping{Proto: "tcp", HostPort: 8080, GuestPort: 80}, "0.0.0.0:8080->80/tcp"},
		{PortMapping{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, GuestPort: 53}, "127.0.0.1:5353->53/udp"},
		{PortMapping{Proto: "tcp", HostIP: netip.MustParseAddr("::1"), HostPort: 8443, GuestPort: 443}, "[::1]:8443->443/tcp"},
	} {
		if got := c.m.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.m, got, c.want)
		}
		back, err := ParsePortMapping(c.want)
		if err != nil || back != c.m {
			t.Errorf("ParsePortMapping(%q) = %+v, %v; want %+v", c.want, back, err, c.m)
		}
	}
	for _, bad := range []string{"", "8080:80", "0.0.0.0:8080->80", "0.0.0.0:8080->80/sctp", "x:1->2/tcp", "0.0.0.0:8080->99999/tcp"} {
		if _, err := ParsePortMapping(bad); err == nil {
			t.Errorf("ParsePortMapping(%q): no error", bad)
		}
	}
}

// TestOutboundOption: outbound_addr and outbound_addr6 take one of the
// host's addresses of their family or an interface (lo here, the one every
// host has), and refuse others with the fix; LocalFor binds only sockets
// to the outside, of the option's family.
func TestOutboundOption(t *testing.T) {
	for _, c := range []struct {
		in, want4, want6, wantErr string
	}{
		{in: "outbound_addr=127.0.0.1", want4: "127.0.0.1"},
		{in: "outbound_addr=lo", want4: "127.0.0.1"},
		{in: "outbound_addr6=::1,outbound_addr=lo", want4: "127.0.0.1", want6: "::1"},
		{in: "outbound_addr=::1", wantErr: "want an IPv4 address or an interface"},
		{in: "outbound_addr6=127.0.0.1", wantErr: "want an IPv6 address or an interface"},
		{in: "outbound_addr=192.0.2.77", wantErr: "192.0.2.77 is not an address of this host"},
		{in: "outbound_addr=rl-no-such0", wantErr: "no such interface or IP address"},
	} {
		cfg, err := ParseOptions(c.in)
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.wantErr)
			}
			continue
		case err != nil:
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got := addrString(cfg.Outbound); got != c.want4 {
			t.Errorf("%q: Outbound %q, want %q", c.in, got, c.want4)
		}
		if got := addrString(cfg.Outbound6); got != c.want6 {
			t.Errorf("%q: Outbound6 %q, want %q", c.in, got, c.want6)
		}
	}
	cfg := DefaultConfig()
	cfg.Outbound, cfg.Outbound6 = netip.MustParseAddr("192.168.1.5"), netip.MustParseAddr("2001:db8::5")
	for dst, want := range map[string]string{"203.0.113.9": "192.168.1.5", "2001:db8::9": "2001:db8::5", "127.0.0.1": "", "::1": "", "::ffff:203.0.113.9": "192.168.1.5"} {
		if got := addrString(cfg.LocalFor(netip.MustParseAddr(dst))); got != want {
			t.Errorf("LocalFor(%s) = %q, want %q", dst, got, want)
		}
	}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
