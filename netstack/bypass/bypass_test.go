package bypass

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/netstack/netconf"
	"golang.org/x/sys/unix"
)

// onFilteredThread runs f on a thread of its own with the connect filter
// installed (with ports, reporting accept too) (no_new_privs: no privilege needed) and served by a Server for
// cfg, this process's network namespace standing for the container's. The
// thread ends with f (its filter with it).
func onFilteredThread(t testing.TB, cfg netconf.Config, ports *Ports, f func(s *Server)) {
	t.Helper()
	ns, err := os.Open("/proc/thread-self/ns/net") // not self: a test may have left the main thread wedged in a namespace of its own (Probe)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			done <- err
			return
		}
		fd, err := initproc.InstallConnectNotify(ports != nil)
		if err != nil {
			done <- err
			return
		}
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
			done <- fmt.Errorf("the listener is not close-on-exec (%#x, %v): what the thread execs would hold it", fl, err)
			return
		}
		s, err := Start(os.NewFile(uintptr(fd), "listener"), ns, cfg, ports, t.Errorf)
		if err != nil {
			done <- err
			return
		}
		defer s.Close()
		f(s)
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a connect on the filtered thread was not answered in 30 s")
	}
}

// hostService listens on the host's loopback (ip: 127.0.0.1 or ::1) and
// writes each client its address, as the host saw it.
func hostService(t testing.TB, ip net.IP) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "client %s\n", c.RemoteAddr())
			c.Close()
		}
	}()
	return ln
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// TestBypassNonBlocking: Go's dialer connects non-blocking (EINPROGRESS,
// then epoll): a connection to the gateway becomes a host socket connected
// to the host's loopback; one the policy does not take goes on as made; a
// refused port is refused.
func TestBypassNonBlocking(t *testing.T) {
	port := hostService(t, net.IPv4(127, 0, 0, 1)).Addr().(*net.TCPAddr).Port
	closed := closedPort(t)
	cfg := netconf.DefaultConfig()
	cfg.AllowHostLoopback = true
	onFilteredThread(t, cfg, nil, func(s *Server) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("10.0.2.2:%d", port), 5*time.Second)
		if err != nil {
			t.Errorf("dial the gateway: %v", err)
		} else {
			b, _ := io.ReadAll(c)
			c.Close()
			want := fmt.Sprintf("127.0.0.1:%d", port)
			if c.RemoteAddr().String() != want || !strings.HasPrefix(string(b), "client 127.0.0.1:") {
				t.Errorf("dial the gateway: peer %v, read %q; want a host socket to %s", c.RemoteAddr(), b, want)
			}
		}
		if n := s.Bypassed(); n != 1 {
			t.Errorf("after one connection to the gateway: %d bypassed, want 1", n)
		}
		// The host's loopback itself is the container's own: not taken.
		before := s.Bypassed()
		c, err = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			t.Errorf("dial 127.0.0.1: %v", err)
		} else {
			c.Close()
		}
		if n := s.Bypassed(); n != before {
			t.Errorf("a connection to loopback was bypassed (%d, %d before)", n, before)
		}
		_, err = net.DialTimeout("tcp", fmt.Sprintf("10.0.2.2:%d", closed), 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("dial the gateway's closed port %d: %v, want connection refused", closed, err)
		}
	})
}

// TestBypassBlocking: a blocking connect waits for the host's handshake and
// its descriptor keeps its number, its close-on-exec flag and its blocking
// mode; UDP is not taken.
func TestBypassBlocking(t *testing.T) {
	port := hostService(t, net.IPv4(127, 0, 0, 1)).Addr().(*net.TCPAddr).Port
	closed := closedPort(t)
	cfg := netconf.DefaultConfig()
	cfg.AllowHostLoopback = true
	onFilteredThread(t, cfg, nil, func(s *Server) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			t.Error(err)
		}
		gw := &unix.SockaddrInet4{Port: port, Addr: [4]byte{10, 0, 2, 2}}
		if err := unix.Connect(fd, gw); err != nil {
			t.Errorf("blocking connect to the gateway: %v", err)
			return
		}
		peer, err := unix.Getpeername(fd)
		if p, ok := peer.(*unix.SockaddrInet4); err != nil || !ok || p.Addr != [4]byte{127, 0, 0, 1} || p.Port != port {
			t.Errorf("peer after a blocking connect: %#v, %v; want 127.0.0.1:%d", peer, err, port)
		}
		if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
			t.Errorf("the host socket lost close-on-exec")
		}
		if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); fl&unix.O_NONBLOCK != 0 {
			t.Errorf("the host socket is non-blocking; the workload's was not")
		}
		if v, _ := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); v != 1 {
			t.Errorf("TCP_NODELAY not carried over to the host socket")
		}
		buf := make([]byte, 64)
		n, err := unix.Read(fd, buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), "client 127.0.0.1:") {
			t.Errorf("read on the host socket: %q, %v", buf[:n], err)
		}

		refused, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		defer unix.Close(refused)
		if err := unix.Connect(refused, &unix.SockaddrInet4{Port: closed, Addr: [4]byte{10, 0, 2, 2}}); err != unix.ECONNREFUSED {
			t.Errorf("blocking connect to a closed port: %v, want ECONNREFUSED", err)
		}

		udp, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		defer unix.Close(udp)
		_ = unix.Connect(udp, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
		if n := s.Bypassed(); n != 1 {
			t.Errorf("%d bypassed, want 1 (the TCP connection only)", n)
		}
	})
}

// TestBypassIPv6: an IPv6 socket to the IPv6 gateway reaches the host's ::1;
// one to the IPv4 gateway, v4-mapped, the host's 127.0.0.1 (still an IPv6
// socket).
func TestBypassIPv6(t *testing.T) {
	ln6, err := net.ListenTCP("tcp6", &net.TCPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skip("no IPv6 loopback here:", err)
	}
	ln6.Close()
	port := hostService(t, net.IPv4(127, 0, 0, 1)).Addr().(*net.TCPAddr).Port
	cfg := netconf.DefaultConfig()
	cfg.AllowHostLoopback = true
	onFilteredThread(t, cfg, nil, func(s *Server) {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer unix.Close(fd)
		mapped := netip.AddrFrom4([4]byte{10, 0, 2, 2}).As16()
		mapped[10], mapped[11] = 0xff, 0xff
		if err := unix.Connect(fd, &unix.SockaddrInet6{Port: port, Addr: mapped}); err != nil {
			t.Errorf("connect to [::ffff:10.0.2.2]:%d: %v", port, err)
			return
		}
		peer, err := unix.Getpeername(fd)
		want := netip.AddrFrom4([4]byte{127, 0, 0, 1}).As16()
		want[10], want[11] = 0xff, 0xff
		if p, ok := peer.(*unix.SockaddrInet6); err != nil || !ok || p.Addr != want || p.Port != port {
			t.Errorf("peer of the v4-mapped connect: %#v, %v; want [::ffff:127.0.0.1]:%d", peer, err, port)
		}
	})
	port6 := hostService(t, net.IPv6loopback).Addr().(*net.TCPAddr).Port
	onFilteredThread(t, cfg, nil, func(s *Server) {
		c, err := net.DialTimeout("tcp6", fmt.Sprintf("[fd00::2]:%d", port6), 5*time.Second)
		if err != nil {
			t.Errorf("dial [fd00::2]:%d: %v", port6, err)
			return
		}
		defer c.Close()
		if got := c.RemoteAddr().String(); got != fmt.Sprintf("[::1]:%d", port6) {
			t.Errorf("dial [fd00::2]: peer %s, want the host's [::1]:%d", got, port6)
		}
	})
}

// TestBypassEpollFirst: a socket in an epoll set before its connect (as
// nginx does) is left to the stack: the set watches that socket. The same
// in a process with more descriptors than the serving thread looks through
// itself (taken on a goroutine).
func TestBypassEpollFirst(t *testing.T) {
	for _, many := range []bool{false, true} {
		t.Run(fmt.Sprintf("many=%v", many), func(t *testing.T) {
			if many {
				for range inlineFiles {
					f, err := os.Open(os.DevNull)
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
				}
			}
			testEpollFirst(t)
		})
	}
}

func testEpollFirst(t *testing.T) {
	port := hostService(t, net.IPv4(127, 0, 0, 1)).Addr().(*net.TCPAddr).Port
	cfg := netconf.DefaultConfig()
	cfg.AllowHostLoopback = true
	onFilteredThread(t, cfg, nil, func(s *Server) {
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			t.Error(err)
			return
		}
		defer unix.Close(ep)
		fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		defer unix.Close(fd)
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(fd)}); err != nil {
			t.Error(err)
			return
		}
		_ = unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{10, 0, 2, 2}})
		if n := s.Bypassed(); n != 0 {
			t.Errorf("a socket in an epoll set was bypassed (%d)", n)
		}
		// Out of the set, the next socket is taken.
		fd2, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		defer unix.Close(fd2)
		if err := unix.Connect(fd2, &unix.SockaddrInet4{Port: port, Addr: [4]byte{10, 0, 2, 2}}); err != nil || s.Bypassed() != 1 {
			t.Errorf("a socket in no epoll set: connect %v, %d bypassed, want 1", err, s.Bypassed())
		}
	})
}

// TestBypassPolicy: without allow_host_loopback the gateway is not taken
// (the connect goes on as made: here, in a namespace without 10.0.2.0/24,
// it fails as the kernel says).
func TestBypassPolicy(t *testing.T) {
	port := hostService(t, net.IPv4(127, 0, 0, 1)).Addr().(*net.TCPAddr).Port
	onFilteredThread(t, netconf.DefaultConfig(), nil, func(s *Server) {
		fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		defer unix.Close(fd)
		err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{10, 0, 2, 2}})
		if peer, perr := unix.Getpeername(fd); perr == nil {
			if p, ok := peer.(*unix.SockaddrInet4); ok && p.Addr == [4]byte{127, 0, 0, 1} {
				t.Errorf("the gateway reached the host's loopback without allow_host_loopback (connect: %v)", err)
			}
		}
		if n := s.Bypassed(); n != 0 {
			t.Errorf("%d bypassed without allow_host_loopback, want 0", n)
		}
	})
}

func TestSockaddrAddr(t *testing.T) {
	v4 := make([]byte, unix.SizeofSockaddrInet4)
	v4[0], v4[1] = byte(unix.AF_INET), 0 // little-endian family
	v4[2], v4[3] = 0x1f, 0x90            // 8080
	copy(v4[4:], []byte{192, 0, 2, 7})
	v6 := make([]byte, unix.SizeofSockaddrInet6)
	v6[0] = byte(unix.AF_INET6)
	v6[2], v6[3] = 0, 80
	a6 := netip.MustParseAddr("2001:db8::1").As16()
	copy(v6[8:], a6[:])
	ll := append([]byte{}, v6...)
	llAddr := netip.MustParseAddr("fe80::1").As16()
	copy(ll[8:], llAddr[:])
	scoped := append([]byte{}, v6...)
	scoped[24] = 2
	for _, c := range []struct {
		b    []byte
		want string
	}{
		{v4, "192.0.2.7:8080"},
		{v4[:8], ""},
		{v6, "[2001:db8::1]:80"},
		{v6[:24], "[2001:db8::1]:80"},
		{ll, ""},
		{scoped, ""},
		{[]byte{byte(unix.AF_UNIX), 0, '/', 'x'}, ""},
	} {
		got, ok := sockaddrAddr(c.b)
		if s := got.String(); ok != (c.want != "") || ok && s != c.want {
			t.Errorf("sockaddrAddr(%x) = %v, %v; want %q", c.b, got, ok, c.want)
		}
	}
}

// BenchmarkConnect: a blocking connect(2) and close to a host loopback
// listener, without the filter, through it as made (CONTINUE), and
// bypassed (the gateway, a host socket put in its place).
func BenchmarkConnect(b *testing.B) {
	port := hostService(b, net.IPv4(127, 0, 0, 1)).Addr().(*net.TCPAddr).Port
	cfg := netconf.DefaultConfig()
	cfg.AllowHostLoopback = true
	loop := func(b *testing.B, addr [4]byte) {
		for i := 0; i < b.N; i++ {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Error(err)
				return
			}
			err = unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: addr})
			unix.Close(fd)
			if err != nil {
				b.Error(err)
				return
			}
		}
	}
	lo := [4]byte{127, 0, 0, 1}
	b.Run("plain", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		loop(b, lo)
	})
	b.Run("continue", func(b *testing.B) {
		onFilteredThread(b, cfg, nil, func(*Server) { loop(b, lo) })
	})
	b.Run("bypassed", func(b *testing.B) {
		onFilteredThread(b, cfg, nil, func(*Server) { loop(b, [4]byte{10, 0, 2, 2}) })
	})
	// A Unix socket's, with the length C programs pass for it
	// (sizeof(struct sockaddr_un)), through the filter.
	path := b.TempDir() + "/s"
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var sun unix.RawSockaddrUnix
	sun.Family = unix.AF_UNIX
	for i := range path {
		sun.Path[i] = int8(path[i])
	}
	unixLoop := func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Error(err)
				return
			}
			_, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sun)), unix.SizeofSockaddrUnix)
			unix.Close(fd)
			if errno != 0 {
				b.Error(errno)
				return
			}
		}
	}
	b.Run("unix-plain", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		unixLoop(b)
	})
	b.Run("unix", func(b *testing.B) {
		onFilteredThread(b, cfg, nil, func(*Server) { unixLoop(b) })
	})
}

// TestProbe: rl doctor's probe works on this machine (the tests above run
// the same path).
func TestProbe(t *testing.T) {
	if err := Probe(); err != nil {
		t.Fatalf("Probe: %v", err)
	}
}
