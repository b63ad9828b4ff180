package container

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/netstack"
	"github.com/rlcontainers/rl/rootfs"
	"golang.org/x/sys/unix"
)

// Network modes (--network), podman's names.
const (
	NetSlirp = "slirp" // user-mode networking on rl's own stack (default)
	NetNone  = "none"  // lo only
	NetHost  = "host"  // the host's network namespace, no isolation
	// NetContainer joins another container's network namespace
	// ("container:NAME"); that container's network serves both.
	NetContainer = "container"
)

// ParseNetwork splits --network into its mode and options
// ("slirp:mtu=1500,allow_host_loopback=true"). "slirp4netns" and
// "private" name the default too.
func ParseNetwork(s string) (mode, opts string, err error) {
	mode, opts, _ = strings.Cut(s, ":")
	switch mode {
	case "", "private", "slirp4netns", NetSlirp:
		mode = NetSlirp
	case NetNone, NetHost:
		if opts != "" {
			return "", "", fmt.Errorf("--network %s takes no options", mode)
		}
	case NetContainer:
		if opts == "" {
			return "", "", fmt.Errorf("--network container: needs a container: container:NAME")
		}
	default:
		return "", "", fmt.Errorf("unknown --network %q: use slirp[:OPTIONS], none, host or container:NAME", s)
	}
	if mode == NetSlirp {
		if _, err := netstack.ParseOptions(opts); err != nil {
			return "", "", fmt.Errorf("--network %s: %w", s, err)
		}
	}
	return mode, opts, nil
}

// network is a container's network as its supervisor runs it.
type network struct {
	mode      string
	cfg       netstack.Config
	dns       []string // --dns: the container's nameservers instead of the stack's relay
	listeners *netstack.Listeners
	stack     *netstack.Stack
	published []string // "0.0.0.0:8080->80/tcp", ephemeral ports resolved
}

// prepareNetwork plans the network and, for user-mode networking, opens the
// published ports on the host: a port in use fails here, before the
// container starts.
func prepareNetwork(rec rootfs.Record) (*network, error) {
	mode, opts, err := ParseNetwork(rec.Namespaces["net"])
	if err != nil {
		return nil, err
	}
	n := &network{mode: mode, dns: rec.DNS}
	if mode != NetSlirp {
		if len(rec.Ports) > 0 || rec.PublishAll {
			return nil, fmt.Errorf("-p and -P need user-mode networking; --network %s has none (with host, the container's ports are the host's already)", mode)
		}
		return n, nil
	}
	if n.cfg, err = netstack.ParseOptions(opts); err != nil {
		return nil, err
	}
	if n.cfg.DNSServers, err = netstack.HostResolvers("/etc/resolv.conf"); err != nil && len(rec.DNS) == 0 {
		return nil, err
	}
	specs := append([]string{}, rec.Ports...)
	if rec.PublishAll {
		for _, p := range rec.ExposedPorts {
			specs = append(specs, publishAllSpec(p))
		}
	}
	ports, err := netstack.ParsePorts(specs)
	if err != nil {
		return nil, err
	}
	if n.listeners, err = netstack.Listen(ports); err != nil {
		return nil, err
	}
	for _, p := range n.listeners.Ports() {
		n.published = append(n.published, p.String())
	}
	return n, nil
}

// publishAllSpec turns an image's EXPOSE entry ("80/tcp") into a -p on a
// free host port ("0:80/tcp"), as -P does.
func publishAllSpec(exposed string) string {
	port, proto, _ := strings.Cut(exposed, "/")
	if proto == "" {
		proto = "tcp"
	}
	return "0:" + port + "/" + proto
}

// configure tells the init what to set up in the container's namespace.
func (n *network) configure(spec *initproc.Spec) {
	switch n.mode {
	case NetHost, NetContainer:
		spec.SharedNetwork = true
	case NetSlirp:
		l := n.cfg.Link()
		spec.Network = &l
	}
}

// start runs the stack on the container's TAP (user-mode networking); pid
// is the container's init, whose network namespace the published ports
// splice host loopback clients into.
func (n *network) start(tap *os.File, pid int) error {
	if n.mode != NetSlirp {
		return nil
	}
	if tap == nil {
		return fmt.Errorf("the container's init sent no TAP device")
	}
	// The endpoint owns its fd; tap's own is closed.
	fd, err := unix.Dup(int(tap.Fd()))
	tap.Close()
	if err != nil {
		return err
	}
	ep, err := netstack.NewTAPEndpoint(fd, n.cfg.MTU)
	if err != nil {
		unix.Close(fd)
		return err
	}
	n.stack, err = netstack.New(n.cfg, ep, n.listeners)
	if err != nil {
		return fmt.Errorf("starting the container's network: %w", err)
	}
	n.listeners = nil // the stack owns them now
	if len(n.published) > 0 {
		if ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil {
			n.stack.SpliceLoopback(ns)
		}
	}
	return nil
}

// ports are the published ports as the host sees them ("0.0.0.0:8080->80/tcp").
func (n *network) ports() []string { return n.published }

func (n *network) close() {
	if n.stack != nil {
		n.stack.Close()
	}
	if n.listeners != nil {
		n.listeners.Close()
	}
}

// hosts is the container's /etc/hosts.
func (n *network) hosts(hostname string) string {
	s := "127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	switch n.mode {
	case NetSlirp:
		s += n.cfg.Guest.String() + "\t" + hostname + "\n"
		// Reachable only with allow_host_loopback (the stack refuses the
		// gateway otherwise), as in podman.
		s += n.cfg.Gateway.String() + "\thost.containers.internal host.docker.internal\n"
	case NetHost:
		s += "127.0.1.1\t" + hostname + "\n"
	default:
		s += "127.0.1.1\t" + hostname + "\n"
	}
	return s
}

// resolvConf is the container's /etc/resolv.conf: the stack's DNS relay,
// or --dns, with the host's search domains and options.
func (n *network) resolvConf() string {
	host, _ := os.ReadFile("/etc/resolv.conf")
	var keep []string
	var hostServers []string
	for _, line := range strings.Split(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			hostServers = append(hostServers, f[1])
			continue
		}
		if len(f) > 0 && (f[0] == "search" || f[0] == "domain" || f[0] == "options") {
			keep = append(keep, line)
		}
	}
	var servers []string
	switch {
	case len(n.dns) > 0:
		servers = n.dns
	case n.mode == NetSlirp:
		for _, a := range n.cfg.Nameservers() {
			servers = append(servers, a.String())
		}
	case n.mode == NetHost:
		servers = hostServers
	case n.mode == NetContainer:
		// The joined namespace has the other container's network: rl's
		// relay when that one is user-mode (the default).
		for _, a := range netstackDefaults().Nameservers() {
			servers = append(servers, a.String())
		}
	default:
		// No network: keep what could work if one appears (none of it
		// can be reached from a loopback-only namespace anyway).
		for _, s := range hostServers {
			if a, err := netip.ParseAddr(s); err == nil && !a.IsLoopback() {
				servers = append(servers, s)
			}
		}
	}
	var b strings.Builder
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	for _, l := range keep {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// prepareCheck validates the network options of a container about to be
// created, so a bad --network or -p fails before anything is made.
func prepareCheck(rec rootfs.Record) (string, error) {
	mode, _, err := ParseNetwork(rec.Namespaces["net"])
	if err != nil {
		return "", err
	}
	if _, err := netstack.ParsePorts(rec.Ports); err != nil {
		return "", err
	}
	for _, d := range rec.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return "", fmt.Errorf("invalid --dns %q: give an IP address", d)
		}
	}
	return mode, nil
}

func netstackDefaults() netstack.Config { return netstack.DefaultConfig() }
