package netconf

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// SystemdResolvConf lists systemd-resolved's real upstream servers when
// /etc/resolv.conf points at its stub (127.0.0.53).
var SystemdResolvConf = "/run/systemd/resolve/resolv.conf"

// HostResolvers reads the nameservers of a resolv.conf (/etc/resolv.conf on
// the host) as upstreams for the DNS relay. A loopback nameserver (the
// systemd-resolved stub 127.0.0.53, a dnsmasq on 127.0.0.1) is reachable
// from the supervisor, which lives in the host's network namespace, but when
// the file lists nothing else the real upstreams are read from
// systemd-resolved's own resolv.conf where it exists, so queries do not
// depend on the stub. It fails when no nameserver is found.
func HostResolvers(resolvConf string) ([]netip.AddrPort, error) {
	servers, err := readNameservers(resolvConf)
	if err != nil {
		return nil, err
	}
	allLoopback := len(servers) > 0
	for _, s := range servers {
		allLoopback = allLoopback && s.Addr().IsLoopback()
	}
	if allLoopback {
		if up, err := readNameservers(SystemdResolvConf); err == nil && len(up) > 0 {
			var real []netip.AddrPort
			for _, s := range up {
				if !s.Addr().IsLoopback() {
					real = append(real, s)
				}
			}
			if len(real) > 0 {
				return real, nil
			}
		}
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("%s lists no nameserver: give the container one with --dns", resolvConf)
	}
	return servers, nil
}

func readNameservers(path string) ([]netip.AddrPort, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the host's resolvers: %w", err)
	}
	return parseNameservers(b), nil
}

// parseNameservers reads the "nameserver ADDR" lines of a resolv.conf; a
// scoped IPv6 address (fe80::1%eth0) keeps its zone, which the supervisor's
// sockets understand.
func parseNameservers(b []byte) []netip.AddrPort {
	var out []netip.AddrPort
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		out = append(out, netip.AddrPortFrom(a.Unmap(), 53))
	}
	return out
}
