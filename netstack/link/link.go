// Package link is the container side of rl's user-mode network: it runs in
// the container's init, in the container's new network namespace, and gives
// that namespace its TAP device, addresses and routes. The fd of the TAP goes
// to the supervisor, which runs the network stack (package netstack) on it in
// the host's network namespace.
//
// The init binary must start in about 2 ms, so this package imports only the
// standard library and golang.org/x/sys: the interface is configured with a
// few hand-written rtnetlink messages, not a netlink library.
package link

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Config describes the container's side of the link. DefaultConfig gives
// podman's slirp4netns addresses; netstack.Config.Link derives one from the
// stack's configuration so both sides agree.
type Config struct {
	// Name is the TAP device's name inside the container ("tap0", as slirp4netns).
	Name string
	// MTU of the TAP device; 65520 by default, as podman's slirp4netns, so
	// that a TCP segment is nearly 64 KiB and a gigabyte costs ~16k packets.
	MTU uint32
	// TxQueueLen is the TAP's transmit queue in packets (see DefaultTxQueueLen).
	TxQueueLen uint32
	// Addr is the container's IPv4 address and prefix (10.0.2.100/24).
	Addr netip.Prefix
	// Gateway is the IPv4 default route's next hop (10.0.2.2), the stack.
	Gateway netip.Addr
	// Addr6 is the container's IPv6 address (fd00::100/64); the zero Prefix
	// leaves IPv6 off on the TAP (enable_ipv6=false).
	Addr6 netip.Prefix
	// Gateway6 is the IPv6 default route's next hop (fd00::2).
	Gateway6 netip.Addr
}

// DefaultTxQueueLen is the TAP's default transmit queue length. The tun
// driver defaults to 500 packets and drops (tx_dropped) what does not fit
// in its ring while the supervisor is busy; TCP reads each drop as
// congestion and halves its window. One 4 MiB send buffer (tcp_wmem's
// maximum) is only 64 frames at MTU 65520, but ACK streams, small-packet and
// UDP bursts are counted in packets, not bytes: 4096 frames absorb a full
// window of 1 KiB packets from several flows. Queued packets stay charged to
// their sockets' buffers, so a long queue costs nothing while idle.
const DefaultTxQueueLen = 4096

// DefaultConfig is the container side of podman's default slirp4netns
// network, with IPv6 on.
func DefaultConfig() Config {
	return Config{
		Name:       "tap0",
		MTU:        65520,
		TxQueueLen: DefaultTxQueueLen,
		Addr:       netip.MustParsePrefix("10.0.2.100/24"),
		Gateway:    netip.MustParseAddr("10.0.2.2"),
		Addr6:      netip.MustParsePrefix("fd00::100/64"),
		Gateway6:   netip.MustParseAddr("fd00::2"),
	}
}

// TunError reports that /dev/net/tun could not be opened or did not make a
// TAP device, with the cause and the fix when the kernel's refusal is a
// known one.
type TunError struct {
	Op  string // "open /dev/net/tun", "TUNSETIFF tap0"
	Err error
}

func (e *TunError) Error() string {
	switch {
	case errors.Is(e.Err, unix.EACCES):
		return e.Op + ": /dev/net/tun is mode 0600: chmod 0666 /dev/net/tun (distributions ship it 0666 through udev), or use --network none or --network host"
	case errors.Is(e.Err, unix.ENOENT), errors.Is(e.Err, unix.ENODEV), errors.Is(e.Err, unix.ENXIO):
		return e.Op + ": no /dev/net/tun: in a container, give it the device (docker/podman run --device /dev/net/tun); on a host, load the tun module (modprobe tun); or use --network none or --network host (rl.conf: network = \"host\")"
	case errors.Is(e.Err, unix.EPERM):
		return e.Op + ": operation not permitted (a seccomp profile or a missing CAP_NET_ADMIN in rl's user namespace): use --network none/host"
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *TunError) Unwrap() error { return e.Err }

// SetupGuest runs in the container's init, in its new network namespace, as
// root of rl's user namespace: it brings lo up, creates the TAP device and
// gives it MTU, queue length, addresses and default routes. It returns the
// TAP's fd (close-on-exec, so it never reaches the workload) for the init to
// send to the supervisor; the caller closes it once sent.
func SetupGuest(cfg Config) (int, error) {
	if err := cfg.validate(); err != nil {
		return -1, err
	}
	if err := LoopbackUp(); err != nil {
		return -1, err
	}
	fd, err := OpenTAP(cfg.Name)
	if err != nil {
		return -1, err
	}
	if err := configure(cfg); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func (c Config) validate() error {
	if c.Name == "" || len(c.Name) >= unix.IFNAMSIZ {
		return fmt.Errorf("network: invalid interface name %q", c.Name)
	}
	if !c.Addr.IsValid() || !c.Addr.Addr().Is4() || !c.Gateway.Is4() {
		return fmt.Errorf("network: %s needs an IPv4 address and gateway (have %v via %v)", c.Name, c.Addr, c.Gateway)
	}
	if c.Addr6.IsValid() && (!c.Addr6.Addr().Is6() || !c.Gateway6.Is6()) {
		return fmt.Errorf("network: invalid IPv6 address %v or gateway %v", c.Addr6, c.Gateway6)
	}
	if c.Addr6.IsValid() && c.MTU != 0 && c.MTU < 1280 {
		// The kernel turns IPv6 off on a link with an MTU below 1280.
		return fmt.Errorf("network: mtu=%d is below IPv6's minimum of 1280: raise it or set enable_ipv6=false", c.MTU)
	}
	return nil
}

// OpenTAP creates the TAP device name in the current network namespace and
// returns its fd. Frames carry a virtio_net_hdr (IFF_VNET_HDR) and an
// Ethernet header, and no packet-info prefix (IFF_NO_PI), which is what
// netstack's TAP endpoint reads.
func OpenTAP(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &TunError{Op: "open /dev/net/tun", Err: err}
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("network: interface name %q: %w", name, err)
	}
	// IFF_VNET_HDR: each frame is preceded by a virtio_net_hdr, which is
	// what lets the two sides leave TCP checksums to each other and pass
	// 64 KiB TSO segments whatever the MTU (netstack's tapLink). A frame
	// written with a zeroed header is an ordinary one, checksums done.
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, &TunError{Op: "TUNSETIFF " + name, Err: err}
	}
	// Offloads the stack accepts from the container: frames with a partial
	// checksum (TUN_F_CSUM; without it the container's kernel checksums
	// every frame in software) and TCP segments up to 64 KiB (TSO). Best
	// effort: without them the container's kernel does that work itself.
	_ = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6)
	// A non-persistent TAP is unregistered by the close of its last fd, and
	// that close waits for the kernel (unregister_netdevice, RCU): 12-25 ms
	// measured here, in the supervisor's exit path. A persistent one outlives
	// the close; it lives in the container's network namespace, which the
	// kernel tears down (devices included) in the background once the
	// container and the fd are gone. Measured: the close drops to 0.4 ms and
	// no namespace is left behind (/proc/slabinfo net_namespace stays flat
	// over 60 runs).
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
		unix.Close(fd)
		return -1, &TunError{Op: "TUNSETPERSIST " + name, Err: err}
	}
	return fd, nil
}

// LoopbackUp brings up lo. It runs in the container's new network namespace,
// where lo exists but starts down (--network none stops here).
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing up lo: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	return nil
}

// configure applies cfg to the TAP device that OpenTAP made.
func configure(cfg Config) error {
	index, err := ifIndex(cfg.Name)
	if err != nil {
		return err
	}
	setSysctls(cfg)
	nl, err := dialNetlink()
	if err != nil {
		return err
	}
	defer nl.close()
	for _, req := range cfg.plan(index) {
		if err := nl.do(req); err != nil {
			if req.family == unix.AF_INET6 && errors.Is(err, unix.EAFNOSUPPORT) {
				return fmt.Errorf("network: %s: %w: the kernel has IPv6 disabled: set enable_ipv6=false", req.op, err)
			}
			return fmt.Errorf("network: %s: %w", req.op, err)
		}
	}
	return nil
}

func ifIndex(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("network: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("network: index of %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// setSysctls makes the IPv6 address usable at once and keeps the kernel from
// configuring the TAP on its own. /proc/sys/net is the writer's network
// namespace's, so these touch only the container's. They are best effort:
// the address is added with IFA_F_NODAD anyway, and a masked /proc must not
// cost the container its network.
func setSysctls(cfg Config) {
	dir := "/proc/sys/net/ipv6/conf/" + cfg.Name + "/"
	if !cfg.Addr6.IsValid() {
		_ = os.WriteFile(dir+"disable_ipv6", []byte("1"), 0)
		return
	}
	for _, s := range []string{"accept_dad", "accept_ra", "autoconf"} {
		_ = os.WriteFile(dir+s, []byte("0"), 0)
	}
}

// AllowPing lets every group of the container open ICMP echo sockets
// (net.ipv4.ping_group_range), so ping works without CAP_NET_RAW, which
// the default capabilities leave out: podman and docker set it for a
// container's own network namespace too. The range is the groups the user
// namespace maps from 0 up (the kernel refuses an unmapped end). Best
// effort, like setSysctls: a masked /proc must not cost the container its
// network.
func AllowPing() {
	data, err := os.ReadFile("/proc/self/gid_map")
	if err != nil {
		return
	}
	if top, ok := mappedFromZero(string(data)); ok {
		_ = os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte(fmt.Sprintf("0 %d", top)), 0)
	}
}

// mappedFromZero is the highest ID of the run of IDs that a uid_map or
// gid_map maps contiguously from 0 ("inside outside count" lines).
func mappedFromZero(idMap string) (uint64, bool) {
	type extent struct{ start, count uint64 }
	var extents []extent
	for _, line := range strings.Split(idMap, "\n") {
		var in, out, count uint64
		if n, _ := fmt.Sscan(line, &in, &out, &count); n == 3 && count > 0 {
			extents = append(extents, extent{in, count})
		}
	}
	next, found := uint64(0), false
	for grew := true; grew; {
		grew = false
		for _, e := range extents {
			if e.start <= next && next < e.start+e.count {
				next, found, grew = e.start+e.count, true, true
			}
		}
	}
	if !found {
		return 0, false
	}
	return next - 1, true
}
