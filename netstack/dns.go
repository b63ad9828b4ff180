package netstack

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"

	"github.com/rlcontainers/rl/netstack/netconf"
)

const (
	// dnsTimeout is how long the relay waits for one upstream before asking
	// the next; a resolver's own timeout is 5 s (resolv.conf's default).
	dnsTimeout = 2 * time.Second
	// maxDNSQueries bounds the queries under way; more are dropped, and the
	// resolver retries them.
	maxDNSQueries = 256
)

// startDNS serves DNS at the DNS addresses, port 53, over UDP and TCP by
// relaying each query's bytes to the upstream resolvers from the host. No
// DNS is parsed: a query goes to the first upstream that answers. Without
// upstreams nothing listens, so queries fail at once (ICMP unreachable,
// RST) rather than time out.
func (n *Stack) startDNS() {
	n.upstreams = upstreams{servers: n.cfg.DNSServers, path: n.cfg.ResolvConf, stamp: resolvStamp(n.cfg.ResolvConf)}
	if len(n.cfg.DNSServers) == 0 && n.cfg.ResolvConf == "" {
		return
	}
	addrs := []netip.Addr{n.cfg.DNS}
	if n.cfg.IPv6 {
		addrs = append(addrs, n.cfg.DNS6)
	}
	sem := make(chan struct{}, maxDNSQueries)
	for _, a := range addrs {
		full := tcpip.FullAddress{NIC: nicID, Addr: toTCPIP(a), Port: 53}
		if pc, err := gonet.DialUDP(n.s, &full, nil, protoOf(a)); err == nil {
			n.goTracked(func() { n.serveDNSUDP(pc, sem) })
		}
		if ln, err := gonet.ListenTCP(n.s, full, protoOf(a)); err == nil {
			n.goTracked(func() { n.serveDNSTCP(ln) })
		}
	}
}

func (n *Stack) serveDNSUDP(pc *gonet.UDPConn, sem chan struct{}) {
	defer pc.Close()
	buf := make([]byte, maxDatagram)
	for {
		k, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			continue
		}
		q := append([]byte(nil), buf[:k]...)
		n.goTracked(func() {
			defer func() { <-sem }()
			if a := n.askUpstream(q); a != nil {
				pc.WriteTo(a, from)
			}
		})
	}
}

// askUpstream sends query to each upstream in turn and returns the first
// answer, or nil.
func (n *Stack) askUpstream(query []byte) []byte {
	for _, up := range n.upstreams.get() {
		c, err := net.DialUDP("udp", n.localUDP(up.Addr()), net.UDPAddrFromAddrPort(up))
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(dnsTimeout))
		// Closing the stack ends a query under way.
		stop := context.AfterFunc(n.ctx, func() { c.Close() })
		var k int
		if _, err = c.Write(query); err == nil {
			buf := make([]byte, maxDatagram)
			if k, err = c.Read(buf); err == nil {
				stop()
				c.Close()
				return buf[:k]
			}
		}
		stop()
		c.Close()
		if n.ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

func (n *Stack) serveDNSTCP(ln *gonet.TCPListener) {
	defer ln.Close()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		guest := c.(*gonet.TCPConn)
		n.goTracked(func() {
			for _, up := range n.upstreams.get() {
				d := n.dialer(up.Addr(), dnsTimeout)
				host, err := d.DialContext(n.ctx, "tcp", up.String())
				if err == nil {
					relayTCP(guest, host.(*net.TCPConn))
					return
				}
			}
			guest.Close()
		})
	}
}

// upstreams are the relay's upstream resolvers: the host's, read again
// (netconf.HostResolvers) when its resolv.conf or systemd-resolved's
// changes, looked at no more than once per resolvRecheck.
type upstreams struct {
	path string // the host's resolv.conf; "": the servers stay

	mu      sync.Mutex
	servers []netip.AddrPort
	stamp   string
	checked time.Time
}

const resolvRecheck = time.Second

func (u *upstreams) get() []netip.AddrPort {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.path == "" || time.Since(u.checked) < resolvRecheck {
		return u.servers
	}
	u.checked = time.Now()
	if st := resolvStamp(u.path); st != u.stamp {
		// A file being replaced may be missing or empty for a moment: the
		// old servers stay until the new ones are there.
		if servers, err := netconf.HostResolvers(u.path); err == nil && len(servers) > 0 {
			u.servers, u.stamp = servers, st
		}
	}
	return u.servers
}

// resolvStamp tells whether path or systemd-resolved's resolv.conf
// changed: their inode, size and modification time.
func resolvStamp(path string) string {
	if path == "" {
		return ""
	}
	var b strings.Builder
	for _, p := range []string{path, netconf.SystemdResolvConf} {
		if fi, err := os.Stat(p); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				fmt.Fprintf(&b, "%d/%d/%d;", st.Ino, st.Size, fi.ModTime().UnixNano())
			}
		}
	}
	return b.String()
}
