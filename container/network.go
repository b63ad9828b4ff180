package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/internal/trace"
	"github.com/rlcontainers/rl/netstack/bypass"
	"github.com/rlcontainers/rl/netstack/netconf"
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
	case "bridge", "pasta":
		// docker's default network and podman 5's: rl's user-mode network
		// stands in for both, with its own options.
		if opts != "" {
			return "", "", fmt.Errorf("--network %s: rl's user-mode network has slirp's options, not %s's: use slirp:OPTIONS (%s)", s, mode, netconf.OptionNames())
		}
		mode = NetSlirp
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
		if _, err := netconf.ParseOptions(opts); err != nil {
			return "", "", fmt.Errorf("--network %s: %w", s, err)
		}
	}
	return mode, opts, nil
}

// network is a container's network as its supervisor runs it. With
// user-mode networking the stack runs in rl-net (cmd/rl-net), a process the
// supervisor starts when the container first uses its network: a frame on
// the TAP (other than the kernel's own MLD reports at link-up) or a client
// at a published port (netconf.WaitForTraffic). Until then the supervisor
// holds the TAP and the published ports' sockets; a container that never
// uses its network costs no stack.
type network struct {
	mode       string
	cfg        netconf.Config
	dns        []string // --dns: the container's nameservers instead of the stack's relay
	dnsSearch  []string // --dns-search: instead of the host's search domains ("." for none)
	dnsOptions []string // --dns-option: instead of the host's options
	addHosts   []hostEntry
	discarded  bool // -p or -P with a network that has no ports to publish (discardedWarning)
	listeners  *netconf.Listeners
	published  []string // "0.0.0.0:8080->80/tcp", ephemeral ports resolved
	warn       func(format string, a ...any)
	name       string // the container's, rl-net's argument (for ps)
	helperPath string // rl-net's

	tap    *os.File // the container's TAP, until rl-net has it
	netns  *os.File // the container's network namespace, with published ports
	cancel context.CancelFunc
	done   chan struct{} // closed when waiting (and starting rl-net) is over
	helper *exec.Cmd     // rl-net, once started
	ctl    *os.File      // our end of rl-net's control socket
	exited chan struct{} // closed when rl-net has exited (and is reaped)
	quiet  atomic.Bool   // rl-net's exit is expected (close, or a failed start)

	bypass *bypass.Server // bypass=true: the workload's connect(2) calls, answered
	// With bypass=true the published TCP ports are served here, their
	// clients handed to the workload as host sockets (bypass.Ports): tcp
	// until start, then handing.
	tcp     *netconf.Listeners
	handing *bypass.Ports
	accepts bool // the workload's accept(2) calls are to be reported
}

// prepareNetwork plans the network and, for user-mode networking, opens the
// published ports on the host: a port in use fails here, before the
// container starts.
func prepareNetwork(rec rootfs.Record) (*network, error) {
	mode, opts, err := ParseNetwork(rec.Namespaces["net"])
	if err != nil {
		return nil, err
	}
	n := &network{mode: mode, dns: rec.DNS, dnsSearch: rec.DNSSearch, dnsOptions: rec.DNSOptions, name: rec.Name}
	if n.addHosts, err = addHosts(rec.AddHosts, mode); err != nil {
		return nil, err
	}
	if mode != NetSlirp {
		n.discarded = len(rec.Ports) > 0 || rec.PublishAll
		return n, nil
	}
	if n.cfg, err = netconf.ParseOptions(opts); err != nil {
		return nil, err
	}
	if n.helperPath, err = netHelperPath(); err != nil {
		return nil, err
	}
	n.cfg.ResolvConf = "/etc/resolv.conf"
	if n.cfg.DNSServers, err = netconf.HostResolvers(n.cfg.ResolvConf); err != nil && len(rec.DNS) == 0 {
		return nil, err
	}
	specs := append([]string{}, rec.Ports...)
	if rec.PublishAll {
		for _, p := range rec.ExposedPorts {
			specs = append(specs, publishAllSpec(p))
		}
	}
	ports, err := netconf.ParsePorts(specs)
	if err != nil {
		return nil, err
	}
	if n.listeners, err = netconf.Listen(ports); err != nil {
		return nil, err
	}
	for _, p := range n.listeners.Ports() {
		n.published = append(n.published, p.String())
	}
	if n.cfg.Bypass {
		n.tcp = n.listeners.TakeTCP()
		n.accepts = n.tcp != nil
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

// guestNetwork is what the init of a container with proto's namespaces
// sets up in its network namespace (sent at the clone: Start).
func guestNetwork(proto rootfs.Record) (initproc.NetworkSpec, error) {
	mode, opts, err := ParseNetwork(proto.Namespaces["net"])
	if err != nil {
		return initproc.NetworkSpec{}, err
	}
	switch mode {
	case NetHost, NetContainer:
		return initproc.NetworkSpec{Shared: true}, nil
	case NetSlirp:
		cfg, err := netconf.ParseOptions(opts)
		if err != nil {
			return initproc.NetworkSpec{}, err
		}
		l := cfg.Link()
		return initproc.NetworkSpec{Link: &l}, nil
	}
	return initproc.NetworkSpec{}, nil
}

// start takes the container's TAP (user-mode networking) and waits, on a
// goroutine, for the container to use it; pid is the container's init,
// whose network namespace the published ports splice host loopback clients
// into.
func (n *network) start(tap *os.File, pid int) error {
	if n.mode != NetSlirp {
		return nil
	}
	if tap == nil {
		return fmt.Errorf("the container's init sent no TAP device")
	}
	n.tap = tap
	if len(n.published) > 0 {
		if ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil {
			n.netns = ns
		}
	}
	if n.tcp != nil {
		if n.netns == nil {
			return fmt.Errorf("the container's init exited before its published ports could be served (its network namespace is gone); run it again")
		}
		var err error
		n.handing, err = bypass.ServePorts(n.tcp, n.netns, n.cfg)
		n.tcp = nil
		if err != nil {
			return fmt.Errorf("serving the published ports: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		first, err := netconf.WaitForTraffic(ctx, int(n.tap.Fd()), n.listeners)
		if err == nil {
			err = n.spawn(first)
		}
		if err != nil && ctx.Err() == nil {
			n.warn("the container's network did not start: %v", err)
		}
	}()
	return nil
}

// bypassing says whether the workload's connect(2) calls are to be
// answered here (bypass=true with user-mode networking of its own).
func (n *network) bypassing() bool { return n != nil && n.mode == NetSlirp && n.cfg.Bypass }

// handingPorts says whether its accept(2) calls are too (bypassing, with
// published TCP ports).
func (n *network) handingPorts() bool { return n.bypassing() && n.accepts }

// startBypass serves the connect filter's listener the init sent: the
// container's TCP connections to the outside get host sockets
// (netstack/bypass). pid is the container's init, whose network namespace
// is the container's. No listener (the init could not install the filter,
// and warned): published ports' clients are spliced.
func (n *network) startBypass(listener *os.File, pid int) {
	if !n.bypassing() || listener == nil {
		if listener != nil {
			listener.Close()
		}
		n.handing.Degrade()
		return
	}
	var err error
	if n.bypass, err = n.serveConnect(listener, pid); err != nil {
		n.handing.Degrade()
		// The filter is installed: without its listener, connect(2) fails.
		n.warn("network option bypass=true: %v: the container's connect(2) calls fail (ENOSYS); run it without bypass=true", err)
	}
}

// serveExec serves the connect filter of a process rl exec started (and
// what it starts): until none of them is left, when the server ends itself.
// It is called on the exec's thread, whose /proc is the container's: the
// server starts from another (the calls wait for it meanwhile).
func (n *network) serveExec(listener *os.File, pid int) {
	go func() {
		srv, err := n.serveConnect(listener, pid)
		if err != nil {
			n.warn("network option bypass=true: %v: the exec'd process's connect(2) calls fail (ENOSYS)", err)
			return
		}
		srv.CloseWhenDone()
	}()
}

// serveConnect starts a bypass server on listener (its own from now on) for
// the network namespace of process pid.
func (n *network) serveConnect(listener *os.File, pid int) (*bypass.Server, error) {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		listener.Close()
		return nil, err
	}
	defer ns.Close()
	return bypass.Start(listener, ns, n.cfg, n.handing, n.warn)
}

// netHelper is the network's binary, beside rl-core.
const netHelper = "rl-net"

// helperTimeout bounds rl-net's start (its answer) and its exit.
const helperTimeout = 10 * time.Second

// netHelperPath is rl-net's path: beside rl-core (a build tree, or
// libexec/rl in an install). A missing one fails rl run at once rather than
// leave a container without its network.
func netHelperPath() (string, error) {
	p, _, err := helperBeside(netHelper)
	if err != nil {
		return "", fmt.Errorf("%s, which runs the container's network, is not beside rl-core (%v): reinstall rl (make install), or use --network none or host", netHelper, err)
	}
	return p, nil
}

// spawn starts rl-net and hands it the TAP, the published ports and
// first, the frame that woke us (netconf.Handoff).
func (n *network) spawn(first []byte) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "rl-net control"), os.NewFile(uintptr(fds[1]), "rl-net control")
	defer theirs.Close()
	ports, err := n.listeners.Files()
	if err != nil {
		ours.Close()
		return err
	}
	defer func() {
		for _, f := range ports {
			f.Close()
		}
	}()
	h := netconf.Handoff{Config: n.cfg, Ports: n.listeners.Ports(), First: first, NetNS: n.netns != nil}
	msg, err := json.Marshal(h)
	if err != nil {
		ours.Close()
		return err
	}
	cmd := exec.Command(n.helperPath, n.name)
	cmd.Stderr = warnWriter(n.warn)
	cmd.ExtraFiles = append([]*os.File{theirs, n.tap}, ports...)
	if n.netns != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, n.netns)
	}
	if err := cmd.Start(); err != nil {
		ours.Close()
		return fmt.Errorf("starting %s: %w", netHelper, err)
	}
	trace.Mark("core: rl-net started")
	n.helper, n.ctl, n.exited = cmd, ours, make(chan struct{})
	go func() {
		err := cmd.Wait()
		close(n.exited)
		if !n.quiet.Load() {
			// The container keeps running without a network: say so.
			n.warn("the container's network stopped: %s exited (%v); the container runs on without one until it is started again", netHelper, err)
		}
	}()
	// rl-net has them now.
	n.tap.Close()
	n.tap = nil
	if n.netns != nil {
		n.netns.Close()
		n.netns = nil
	}
	failed := func(err error) error {
		// Reported here once; its exit is no news.
		n.quiet.Store(true)
		cmd.Process.Kill()
		return err
	}
	if _, err := unix.Write(int(ours.Fd()), msg); err != nil {
		return failed(fmt.Errorf("handing the network to %s: %w", netHelper, err))
	}
	ours.SetReadDeadline(time.Now().Add(helperTimeout))
	buf := make([]byte, 4096)
	m, err := ours.Read(buf)
	ours.SetReadDeadline(time.Time{})
	if err != nil {
		return failed(fmt.Errorf("%s did not answer: %w", netHelper, err))
	}
	if reply := string(buf[:m]); reply != "ok" {
		return failed(errors.New(reply))
	}
	// Its copies serve the ports now; ours would only hold them open.
	n.listeners.Close()
	n.listeners = nil
	return nil
}

// warnWriter passes what rl-net prints (its errors) on as warnings, a
// line each.
type warnWriter func(format string, a ...any)

func (w warnWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			w("%s", l)
		}
	}
	return len(b), nil
}

// ports are the published ports as the host sees them ("0.0.0.0:8080->80/tcp").
func (n *network) ports() []string { return n.published }

// close stops waiting, or stops rl-net (its control socket closes: it
// stops the stack and exits) and reaps it; what the supervisor still holds
// is closed.
func (n *network) close() {
	n.quiet.Store(true)
	if n.bypass != nil {
		n.bypass.Close()
	}
	if n.handing != nil {
		n.handing.Close()
	}
	if n.cancel != nil {
		n.cancel()
		<-n.done
	}
	if n.helper != nil {
		n.ctl.Close()
		select {
		case <-n.exited:
		case <-time.After(helperTimeout):
			n.helper.Process.Kill()
			<-n.exited
		}
	}
	for _, f := range []*os.File{n.tap, n.netns} {
		if f != nil {
			f.Close()
		}
	}
	n.listeners.Close()
	n.tcp.Close()
}

// hosts is the container's /etc/hosts. Its own address has its hostname
// and its name, as podman writes it.
func (n *network) hosts(hostname, name string) string {
	s := "127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if name != "" && name != hostname {
		hostname += " " + name
	}
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
	gateway := "127.0.0.1" // --network host: the host's own loopback
	if n.mode == NetSlirp {
		gateway = n.cfg.Gateway.String()
	}
	return s + n.addedHosts(gateway)
}

// joinedHosts is the /etc/hosts of a container in another's network
// namespace (--network container:NAME): that one's file (its address, its
// names, host.containers.internal, its --add-host entries), then this
// one's hostname and name on the loopback unless that file names them
// already (a shared UTS namespace), then this one's --add-host entries
// (never host-gateway: addHosts refuses it in another's network).
func (n *network) joinedHosts(theirs, hostname, name string) string {
	s := theirs
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	known := hostsNames(theirs)
	var mine []string
	for _, h := range []string{hostname, name} {
		if h != "" && !known[h] && !slices.Contains(mine, h) {
			mine = append(mine, h)
		}
	}
	if len(mine) > 0 {
		s += "127.0.1.1\t" + strings.Join(mine, " ") + "\n"
	}
	return s + n.addedHosts("")
}

// hostsNames are the names an /etc/hosts file gives addresses to.
func hostsNames(hosts string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(hosts, "\n") {
		line, _, _ = strings.Cut(line, "#")
		if f := strings.Fields(line); len(f) > 1 {
			for _, name := range f[1:] {
				names[name] = true
			}
		}
	}
	return names
}

// addedHosts are the --add-host lines, host-gateway as gateway.
func (n *network) addedHosts(gateway string) string {
	var s string
	for _, e := range n.addHosts {
		ip := e.ip
		if ip == hostGateway {
			ip = gateway
		}
		s += ip + "\t" + strings.Join(e.names, " ") + "\n"
	}
	return s
}

// discardedWarning is the warning for -p or -P with --network host, none or
// container:NAME, which docker and podman give too (and run the container).
func (n *network) discardedWarning() string {
	why := map[string]string{
		NetHost:      "the container's ports are the host's",
		NetNone:      "the container has no network to publish on",
		NetContainer: "the container uses the other container's network: publish the ports on that one",
	}[n.mode]
	return fmt.Sprintf("--network %s: the published ports (-p, -P) are discarded: %s", n.mode, why)
}

// exposed reads --expose PORT[-PORT][/tcp|/udp] into the image's EXPOSE
// form, one port each ("80/tcp").
func exposed(specs []string) ([]string, error) {
	var out []string
	for _, s := range specs {
		var ms []netconf.PortMapping
		err := errors.New("a host address or port is -p's")
		if !strings.Contains(s, ":") {
			ms, err = netconf.ParsePort(s)
		}
		if err != nil {
			return nil, fmt.Errorf("invalid --expose %q: %v: give PORT, PORT/udp or a range as 8000-8010", s, err)
		}
		for _, m := range ms {
			out = append(out, m.Container())
		}
	}
	return out, nil
}

// resolverWords checks --dns-search or --dns-option values: each one word
// of resolv.conf's line.
func resolverWords(flag, example string, vals []string) error {
	for _, v := range vals {
		if v == "" || strings.ContainsAny(v, " \t\n#;") {
			return fmt.Errorf("invalid --%s %q: give one word, e.g. %s", flag, v, example)
		}
	}
	return nil
}

// hostEntry is one --add-host: its names and its address, or hostGateway.
type hostEntry struct {
	names []string
	ip    string
}

// hostGateway is --add-host's address for the host (docker's and
// podman's name): the gateway with user-mode networking (which reaches the
// host's loopback only with allow_host_loopback, as host.containers.internal
// does), the host's loopback with --network host.
const hostGateway = "host-gateway"

// addHosts reads --add-host NAME[;NAME...]:IP as docker and podman take it:
// the first colon ends the names, so an IPv6 address needs no brackets
// (they are allowed). host-gateway needs a network that has a way to the
// host.
func addHosts(specs []string, mode string) ([]hostEntry, error) {
	var out []hostEntry
	for _, s := range specs {
		bad := func(why string) error {
			return fmt.Errorf("invalid --add-host %q: %s: give NAME:IP, e.g. db:192.168.1.10 or myhost:%s", s, why, hostGateway)
		}
		names, ip, _ := strings.Cut(s, ":")
		switch {
		case names == "":
			return nil, bad("no name")
		case ip == "":
			return nil, bad("no address")
		}
		e := hostEntry{names: strings.Split(names, ";")}
		for _, name := range e.names {
			if name == "" || len(name) > 253 || strings.ContainsAny(name, " \t\n#:/") {
				return nil, bad(fmt.Sprintf("%q is not a host name", name))
			}
		}
		switch ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]"); {
		case ip == hostGateway && mode != NetSlirp && mode != NetHost:
			return nil, fmt.Errorf("--add-host %q: --network %s has no way to the host; use the default network or --network host", s, mode)
		case ip == hostGateway:
		default:
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return nil, bad(fmt.Sprintf("%q is not an IP address", ip))
			}
			ip = a.String()
		}
		e.ip = ip
		out = append(out, e)
	}
	return out, nil
}

// resolvConf is the container's /etc/resolv.conf: the stack's DNS relay,
// or --dns, with the host's search domains and options, or --dns-search's
// and --dns-option's.
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
		switch {
		case len(f) == 0:
		case (f[0] == "search" || f[0] == "domain") && len(n.dnsSearch) == 0, f[0] == "options" && len(n.dnsOptions) == 0:
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
	if len(n.dnsSearch) > 0 && !slices.Equal(n.dnsSearch, []string{"."}) {
		b.WriteString("search " + strings.Join(n.dnsSearch, " ") + "\n")
	}
	if len(n.dnsOptions) > 0 {
		b.WriteString("options " + strings.Join(n.dnsOptions, " ") + "\n")
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
	if _, err := netconf.ParsePorts(rec.Ports); err != nil {
		return "", err
	}
	if imageResolvConf(rec) {
		// As podman's --dns none: the image's file, as it is.
		switch {
		case len(rec.DNS) > 1:
			return "", fmt.Errorf("--dns none keeps the image's /etc/resolv.conf and names no nameserver: give it alone, or drop it")
		case len(rec.DNSSearch) > 0:
			return "", fmt.Errorf("--dns none keeps the image's /etc/resolv.conf, which --dns-search cannot change: drop one of them")
		case len(rec.DNSOptions) > 0:
			return "", fmt.Errorf("--dns none keeps the image's /etc/resolv.conf, which --dns-option cannot change: drop one of them")
		}
	} else {
		for _, d := range rec.DNS {
			if _, err := netip.ParseAddr(d); err != nil {
				return "", fmt.Errorf("invalid --dns %q: give an IP address, or none to keep the image's /etc/resolv.conf", d)
			}
		}
	}
	if rec.NoHosts && len(rec.AddHosts) > 0 {
		return "", fmt.Errorf("--no-hosts keeps the image's /etc/hosts, where --add-host cannot write: drop one of them")
	}
	if _, err := addHosts(rec.AddHosts, mode); err != nil {
		return "", err
	}
	if err := resolverWords("dns-search", "example.com", rec.DNSSearch); err != nil {
		return "", err
	}
	if err := resolverWords("dns-option", "ndots:2", rec.DNSOptions); err != nil {
		return "", err
	}
	return mode, nil
}

// imageResolvConf tells a container that keeps its image's
// /etc/resolv.conf (--dns none).
func imageResolvConf(rec rootfs.Record) bool { return slices.Contains(rec.DNS, "none") }

func netstackDefaults() netconf.Config { return netconf.DefaultConfig() }
