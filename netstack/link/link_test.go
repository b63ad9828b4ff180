package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// childEnv marks the re-executed test binary that runs SetupGuest in its own
// user and network namespace.
const childEnv = "RL_LINK_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if err := guestChild(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestPlan(t *testing.T) {
	cfg := DefaultConfig()
	reqs := cfg.plan(7)
	var ops []string
	for _, r := range reqs {
		ops = append(ops, r.op)
		if got := binary.NativeEndian.Uint32(r.msg); int(got) != len(r.msg) {
			t.Errorf("%s: nlmsg_len %d, message is %d bytes", r.op, got, len(r.msg))
		}
		if len(r.msg)%4 != 0 {
			t.Errorf("%s: message of %d bytes is not 4-aligned", r.op, len(r.msg))
		}
		flags := binary.NativeEndian.Uint16(r.msg[6:])
		if flags&unix.NLM_F_ACK == 0 || flags&unix.NLM_F_REQUEST == 0 {
			t.Errorf("%s: flags %#x lack REQUEST|ACK", r.op, flags)
		}
	}
	want := []string{
		"ip link set tap0 up mtu 65520 txqueuelen 4096",
		"ip addr add 10.0.2.100/24 dev tap0",
		"ip route add default via 10.0.2.2 dev tap0",
		"ip addr add fd00::100/64 dev tap0",
		"ip route add default via fd00::2 dev tap0",
	}
	if strings.Join(ops, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(ops, "\n"), strings.Join(want, "\n"))
	}
	// The IPv4 address message: ifaddrmsg then IFA_LOCAL 10.0.2.100.
	addr := reqs[1].msg[unix.SizeofNlMsghdr:]
	if addr[0] != unix.AF_INET || addr[1] != 24 || binary.NativeEndian.Uint32(addr[4:]) != 7 {
		t.Errorf("ifaddrmsg = %v", addr[:8])
	}
	if !bytes.Contains(addr, []byte{10, 0, 2, 100}) {
		t.Errorf("address message lacks 10.0.2.100: %v", addr)
	}
	if v6 := reqs[3].msg[unix.SizeofNlMsghdr:]; v6[2]&unix.IFA_F_NODAD == 0 {
		t.Errorf("IPv6 address without IFA_F_NODAD: %v", v6[:8])
	}

	cfg.Addr6 = netip.Prefix{}
	if n := len(cfg.plan(7)); n != 3 {
		t.Errorf("without IPv6: %d requests, want 3", n)
	}
}

func TestParseAck(t *testing.T) {
	ack := func(seq uint32, code int32) []byte {
		b := make([]byte, unix.SizeofNlMsghdr+4+unix.SizeofNlMsghdr)
		binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
		binary.NativeEndian.PutUint16(b[4:], unix.NLMSG_ERROR)
		binary.NativeEndian.PutUint32(b[8:], seq)
		binary.NativeEndian.PutUint32(b[16:], uint32(code))
		return b
	}
	if done, err := parseAck(ack(3, 0), 3); !done || err != nil {
		t.Errorf("ack: %v %v", done, err)
	}
	if done, err := parseAck(ack(3, -int32(unix.EEXIST)), 3); !done || !errors.Is(err, unix.EEXIST) {
		t.Errorf("EEXIST: %v %v", done, err)
	}
	if done, _ := parseAck(ack(2, 0), 3); done {
		t.Error("an ack for another seq was taken")
	}
	if done, err := parseAck(append(ack(2, 0), ack(3, -int32(unix.EPERM))...), 3); !done || !errors.Is(err, unix.EPERM) {
		t.Errorf("second message: %v %v", done, err)
	}
}

func TestTunError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{unix.EACCES, "chmod 0666 /dev/net/tun"},
		{unix.ENOENT, "--device /dev/net/tun"},
		{unix.ENOENT, "--network none or --network host"},
		{unix.EBUSY, "device or resource busy"},
	} {
		err := error(&TunError{Op: "open /dev/net/tun", Err: tc.err})
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %q lacks %q", tc.err, err, tc.want)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%v: errors.Is fails through Unwrap", tc.err)
		}
	}
}

func TestValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MTU = 1000
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "enable_ipv6=false") {
		t.Errorf("mtu 1000 with IPv6: %v", err)
	}
	cfg.Addr6 = netip.Prefix{}
	if err := cfg.validate(); err != nil {
		t.Errorf("mtu 1000 without IPv6: %v", err)
	}
}

// TestSetupGuest runs SetupGuest for real in a new user and network
// namespace (the test binary re-executes itself there) and checks the
// kernel's view of the result.
func TestSetupGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs user namespaces and /dev/net/tun")
	}
	if fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
		t.Skipf("/dev/net/tun is unusable here: %v", &TunError{Op: "open /dev/net/tun", Err: err})
	} else {
		unix.Close(fd)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EINVAL) {
		t.Skipf("cannot create a user namespace here: %v", err)
	}
	if s, ok := strings.CutPrefix(string(out), "SKIP: "); ok {
		t.Skip(s)
	}
	if err != nil {
		t.Fatalf("SetupGuest in a new netns: %v\n%s", err, out)
	}
}

// guestChild runs in the re-executed test binary: root of a new user
// namespace, in new network and mount namespaces.
func guestChild() error {
	cfg := DefaultConfig()
	fd, err := SetupGuest(cfg)
	if err != nil {
		var te *TunError
		if errors.As(err, &te) {
			fmt.Println("SKIP:", err)
			return nil
		}
		return fmt.Errorf("SetupGuest: %w", err)
	}
	defer unix.Close(fd)

	// /sys/class/net shows the network namespace of whoever mounted sysfs: mount
	// our own (allowed: this user namespace owns this network namespace).
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	sys, err := os.MkdirTemp("", "rl-link-sys")
	if err != nil {
		return err
	}
	defer os.Remove(sys)
	if err := unix.Mount("sysfs", sys, "sysfs", 0, ""); err != nil {
		return fmt.Errorf("mount sysfs: %w", err)
	}
	defer unix.Unmount(sys, unix.MNT_DETACH)

	var errs []error
	check := func(what, got, want string) {
		if got != want {
			errs = append(errs, fmt.Errorf("%s = %q, want %q", what, got, want))
		}
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
		}
		return strings.TrimSpace(string(b))
	}
	net := filepath.Join(sys, "class/net")
	check("tap0 mtu", read(net+"/tap0/mtu"), "65520")
	check("tap0 tx_queue_len", read(net+"/tap0/tx_queue_len"), fmt.Sprint(DefaultTxQueueLen))
	check("tap0 type (ARPHRD_ETHER)", read(net+"/tap0/type"), "1")
	check("lo operstate", read(net+"/lo/operstate"), "unknown") // lo has no carrier state: "unknown" once up
	flags := read(net + "/tap0/flags")
	var f uint32
	fmt.Sscanf(flags, "0x%x", &f)
	if f&unix.IFF_UP == 0 {
		errs = append(errs, fmt.Errorf("tap0 flags %s: not up", flags))
	}

	// /proc/net is the reading process's network namespace.
	route := read("/proc/net/route")
	// Iface Destination Gateway: default via 10.0.2.2 (little-endian hex 0202000A).
	if !strings.Contains(route, "tap0\t00000000\t0202000A") {
		errs = append(errs, fmt.Errorf("no IPv4 default route via 10.0.2.2:\n%s", route))
	}
	if !strings.Contains(route, "tap0\t0002000A\t00000000") {
		errs = append(errs, fmt.Errorf("no 10.0.2.0/24 route on tap0:\n%s", route))
	}
	if6 := read("/proc/net/if_inet6")
	// fd00::100, prefix 64 (0x40), scope global (00), flags without tentative (0x40).
	var found bool
	for _, line := range strings.Split(if6, "\n") {
		fs := strings.Fields(line)
		if len(fs) == 6 && fs[0] == "fd000000000000000000000000000100" && fs[5] == "tap0" {
			found = true
			check("fd00::100 prefix length", fs[2], "40")
			var fl uint32
			fmt.Sscanf(fs[4], "%x", &fl)
			if fl&unix.IFA_F_TENTATIVE != 0 {
				errs = append(errs, fmt.Errorf("fd00::100 is still tentative (flags %s)", fs[4]))
			}
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("no fd00::100 on tap0:\n%s", if6))
	}
	route6 := read("/proc/net/ipv6_route")
	// Destination ::/0, next hop fd00::2, on tap0.
	if !strings.Contains(route6, "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000002") {
		errs = append(errs, fmt.Errorf("no IPv6 default route via fd00::2:\n%s", route6))
	}
	check("accept_dad", read("/proc/sys/net/ipv6/conf/tap0/accept_dad"), "0")
	return errors.Join(errs...)
}

func TestMappedFromZero(t *testing.T) {
	for _, c := range []struct {
		in   string
		top  uint64
		some bool
	}{
		{"         0       1002          1\n", 0, true},
		{"         0       1002          1\n         1     100000      65536\n", 65536, true},
		// Out of order, and a gap after which nothing counts.
		{"1 100000 999\n0 1000 1\n2000 300000 10\n", 999, true},
		{"1 100000 65536\n", 0, false},
		{"", 0, false},
	} {
		top, ok := mappedFromZero(c.in)
		if top != c.top || ok != c.some {
			t.Errorf("mappedFromZero(%q) = %d, %v; want %d, %v", c.in, top, ok, c.top, c.some)
		}
	}
}
