package bypass

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/rlcontainers/rl/netstack/netconf"
	"golang.org/x/sys/unix"
)

// publishFixture publishes the "container's" port guest (this process's
// network namespace stands for the container's, 127.0.0.1 for its
// address) on a free port of the host's loopback (hostIP, if given), served
// by Ports.
func publishFixture(t testing.TB, guest int, hostIP ...netip.Addr) (*Ports, netconf.Config, string) {
	t.Helper()
	cfg := netconf.DefaultConfig()
	cfg.Guest = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	cfg.IPv6 = false // no fd00::100 here
	m := netconf.PortMapping{Proto: "tcp", HostIP: cfg.Guest, GuestPort: uint16(guest)}
	if len(hostIP) > 0 {
		m.HostIP = hostIP[0]
	}
	l, err := netconf.Listen([]netconf.PortMapping{m})
	if err != nil {
		t.Fatal(err)
	}
	host := l.Ports()[0].Host()
	ns, err := os.Open("/proc/thread-self/ns/net") // not self: a test may have left the main thread wedged in a namespace of its own (Probe)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	p, err := ServePorts(l, ns, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, cfg, host
}

// serviceListener is the "container's" service: a listener of network
// ("tcp", "tcp4") on 127.0.0.1 made with lc, closed with the test, and its
// port.
func serviceListener(t testing.TB, lc net.ListenConfig, network string) (net.Listener, int) {
	t.Helper()
	ln, err := lc.Listen(context.Background(), network, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// echoClient connects to addr from another thread, sends msg and returns
// its own address and what it read (the service's answer).
func echoClient(addr, msg string) <-chan string {
	out := make(chan string, 1)
	go func() {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			out <- "dial: " + err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(c, msg)
		c.(*net.TCPConn).CloseWrite()
		b, err := io.ReadAll(c)
		if err != nil {
			out <- "read: " + err.Error()
			return
		}
		out <- fmt.Sprintf("%s %s", c.LocalAddr(), b)
	}()
	return out
}

// exchange sends msg from a client at addr and serves it on ln's next
// accept (serveOne); r is what the client read, client its own address,
// peer and local the addresses the service saw.
func exchange(t *testing.T, ln net.Listener, addr, msg string) (r, client, peer, local string) {
	t.Helper()
	got := echoClient(addr, msg)
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	serveOne(t, c)
	r = <-got
	fmt.Sscanf(r, "%s peer=%s local=%s", &client, &peer, &local)
	return r, client, peer, local
}

// serveOne answers one client on c: "peer=ADDR local=ADDR " and what the
// client sent.
func serveOne(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Errorf("reading the client: %v", err)
	}
	fmt.Fprintf(c, "peer=%s local=%s %s", c.RemoteAddr(), c.LocalAddr(), b)
}

// TestPortsHandOver: a client at a published port reaches the service's
// accept as the client's own host socket (it sees the client's address,
// and its socket's local address is the published one); a client of the
// service's own (not through the port) is accepted as it is.
func TestPortsHandOver(t *testing.T) {
	ln, guest := serviceListener(t, net.ListenConfig{}, "tcp")
	p, cfg, host := publishFixture(t, guest)
	onFilteredThread(t, cfg, p, func(s *Server) {
		handOne(t, p, ln, host, "through the port")
		// Its own client: as it is.
		r, client, peer, local := exchange(t, ln, ln.Addr().String(), "inside")
		if peer != client || local != ln.Addr().String() {
			t.Errorf("a client of the service itself: %q, want its own connection", r)
		}
		if n, m := p.Handed(), p.Spliced(); n != 1 || m != 0 {
			t.Errorf("%d handed over and %d spliced, want 1 and 0", n, m)
		}
	})
}

// TestPortsDeferAccept: a service whose listener defers accept until data
// comes (TCP_DEFER_ACCEPT, nginx's `deferred`) gets the client handed over
// too: the doorbell's urgent byte completes it (without, it would be
// spliced after handWait, the service seeing the doorbell's address).
func TestPortsDeferAccept(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 30)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, guest := serviceListener(t, lc, "tcp")
	p, cfg, host := publishFixture(t, guest)
	onFilteredThread(t, cfg, p, func(s *Server) {
		handOne(t, p, ln, host, "deferred")
		if n := p.Spliced(); n != 0 {
			t.Errorf("%d spliced, want 0", n)
		}
	})
}

// handOne sends msg from a client at host (ln's published port) and checks
// that ln's accept got the client's own socket: the service sees the
// client's address, at host, and just what it sent.
func handOne(t *testing.T, p *Ports, ln net.Listener, host, msg string) {
	t.Helper()
	handed := p.Handed()
	r, client, peer, local := exchange(t, ln, host, msg)
	if peer != client || local != host || !strings.HasSuffix(r, " "+msg) {
		t.Errorf("client at %s: the service saw peer %s, local %s (read %q); want the client's own address at %s", host, peer, local, r, host)
	}
	if n := p.Handed(); n != handed+1 {
		t.Errorf("%d clients handed over, want %d", n, handed+1)
	}
}

// TestPortsFamily: a client whose address an IPv4 listener cannot name
// (an IPv6 one) is spliced at once, not handed over.
func TestPortsFamily(t *testing.T) {
	ln, guest := serviceListener(t, net.ListenConfig{}, "tcp4")
	p, cfg, host := publishFixture(t, guest, netip.IPv6Loopback())
	onFilteredThread(t, cfg, p, func(s *Server) {
		start := time.Now()
		r, client, peer, _ := exchange(t, ln, host, "from ::1")
		if client == peer || !strings.HasSuffix(r, "from ::1") {
			t.Errorf("an IPv6 client of an IPv4 listener: %q, want the doorbell's connection (spliced)", r)
		}
		if n, m := p.Handed(), p.Spliced(); n != 0 || m != 1 {
			t.Errorf("%d handed over and %d spliced, want 0 and 1", n, m)
		}
		if took := time.Since(start); took >= handWait {
			t.Errorf("spliced after %v, want at once", took)
		}
	})
}

// rawListener is a listening TCP socket of domain on the loopback (the
// wildcard for IPv6, which takes IPv4 clients too), blocking, and its port.
func rawListener(t testing.TB, domain, backlog int) (int, int) {
	t.Helper()
	var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if domain == unix.AF_INET6 {
		sa = &unix.SockaddrInet6{}
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, int(netconf.SockaddrAddrPort(bound).Port())
}

// TestPortsAcceptFlags: accept4's flags hold for the socket handed over
// (blocking, close-on-exec), a blocking accept waits for the client, and
// the client's address is written as accept(2) writes it, in the
// listener's family (v4-mapped for an IPv6 listener).
func TestPortsAcceptFlags(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("ipv6=%v", v6), func(t *testing.T) {
			domain := unix.AF_INET
			if v6 {
				domain = unix.AF_INET6
			}
			lfd, port := rawListener(t, domain, 8)
			p, cfg, host := publishFixture(t, port)
			onFilteredThread(t, cfg, p, func(s *Server) {
				gotc := make(chan (<-chan string), 1)
				go func() {
					time.Sleep(100 * time.Millisecond) // the accept below waits first
					gotc <- echoClient(host, "blocking")
				}()
				// Raw accept4 with room for any address.
				var buf [128]byte
				size := uint32(len(buf))
				fd, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), unix.SOCK_CLOEXEC, 0, 0)
				if e != 0 {
					t.Fatalf("accept4: %v", e)
				}
				c := int(fd)
				defer unix.Close(c)
				if fl, _ := unix.FcntlInt(uintptr(c), unix.F_GETFL, 0); fl&unix.O_NONBLOCK != 0 {
					t.Errorf("accept4 without SOCK_NONBLOCK gave a non-blocking socket")
				}
				if fl, _ := unix.FcntlInt(uintptr(c), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
					t.Errorf("accept4 with SOCK_CLOEXEC gave a socket without close-on-exec")
				}
				peer, _ := unix.Getpeername(c)
				want := rawSockaddr(domain, netconf.SockaddrAddrPort(peer))
				if int(size) != len(want) || string(buf[:size]) != string(want) {
					t.Errorf("accept4's address: %x (%d bytes), want %x", buf[:size], size, want)
				}
				if local, _ := unix.Getsockname(c); netconf.SockaddrAddrPort(local).String() != host {
					t.Errorf("the socket accepted is at %v, want the published %s (the client's host socket)", netconf.SockaddrAddrPort(local), host)
				}
				msg := make([]byte, 8)
				n, _ := unix.Read(c, msg)
				unix.Write(c, []byte("ok "+string(msg[:n])))
				unix.Shutdown(c, unix.SHUT_WR)
				if r := <-<-gotc; len(r) < 11 || r[len(r)-11:] != "ok blocking" {
					t.Errorf("the client read %q, want the service's answer", r)
				}
			})
			if n := p.Handed(); n != 1 {
				t.Errorf("%d clients handed over, want 1", n)
			}
		})
	}
}

// TestPortsAcceptInterrupted: a signal that ends the accept call between
// the supervisor's accept and its answer does not lose the client: the
// restarted call (SA_RESTART, as Go's handlers are) gets it.
func TestPortsAcceptInterrupted(t *testing.T) {
	lfd, port := rawListener(t, unix.AF_INET, 8)
	// Without the client, the restarted accept would wait: bound it.
	unix.SetsockoptTimeval(lfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
	p, cfg, host := publishFixture(t, port)
	signalled := 0
	beforeGive = func(tid int) {
		if signalled++; signalled == 1 {
			unix.Tgkill(unix.Getpid(), tid, unix.SIGURG) // Go's preemption signal: handled, SA_RESTART
			time.Sleep(50 * time.Millisecond)            // the call is ended before the answer
		}
	}
	defer func() { beforeGive = nil }()
	onFilteredThread(t, cfg, p, func(s *Server) {
		got := echoClient(host, "interrupted")
		fd, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0, unix.SOCK_CLOEXEC, 0, 0)
		if e != 0 {
			t.Fatalf("accept4: %v (the client was lost)", e)
		}
		c := os.NewFile(fd, "client")
		conn, err := net.FileConn(c)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		serveOne(t, conn)
		r := <-got
		var client, peer string
		fmt.Sscanf(r, "%s peer=%s", &client, &peer)
		if peer != client || !strings.HasSuffix(r, " interrupted") {
			t.Errorf("after the signal: %q, want the client's own connection", r)
		}
	})
	if signalled < 2 {
		t.Errorf("%d connections given, want 2 (the first one's call ended by the signal)", signalled)
	}
	if n := p.Handed(); n != 1 {
		t.Errorf("%d clients handed over, want 1", n)
	}
}

// TestPortsAcceptWaiting: a blocking accept waiting for a client is
// waited for where Close ends it (the supervisor must not wait in the
// kernel's accept, which nothing would end), and SO_RCVTIMEO bounds it.
func TestPortsAcceptWaiting(t *testing.T) {
	lfd, port := rawListener(t, unix.AF_INET, 8)
	p, cfg, _ := publishFixture(t, port)
	onFilteredThread(t, cfg, p, func(s *Server) {
		unix.SetsockoptTimeval(lfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 300000})
		start := time.Now()
		_, _, err := unix.Accept(lfd)
		if took := time.Since(start); err != unix.EAGAIN || took < 250*time.Millisecond || took > 2*time.Second {
			t.Errorf("accept with SO_RCVTIMEO 0.3 s: %v after %v, want EAGAIN after 0.3 s", err, took)
		}
		unix.SetsockoptTimeval(lfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{})
		go func() {
			time.Sleep(300 * time.Millisecond)
			s.Close()
		}()
		_, _, err = unix.Accept(lfd)
		if err == nil {
			t.Errorf("accept after Close: a connection, want an error")
		}
	})
}

// TestPortsSpliced: a doorbell the filter never sees accepted (here: no
// filter at all) has its client spliced once handWait is over, and a
// degraded Ports splices at once.
func TestPortsSpliced(t *testing.T) {
	for _, degraded := range []bool{false, true} {
		t.Run(fmt.Sprintf("degraded=%v", degraded), func(t *testing.T) {
			ln, guest := serviceListener(t, net.ListenConfig{}, "tcp")
			p, _, host := publishFixture(t, guest)
			if degraded {
				p.Degrade()
			}
			start := time.Now()
			r, client, peer, local := exchange(t, ln, host, "spliced")
			took := time.Since(start)
			// Just what the client sent: the doorbell's urgent byte (sent
			// while nobody took it) is out of band.
			if local != ln.Addr().String() || peer == client || !strings.HasSuffix(r, " spliced") {
				t.Errorf("%q: want the doorbell's connection (spliced), not the client's, and the client's bytes alone", r)
			}
			if n, m := p.Handed(), p.Spliced(); n != 0 || m != 1 {
				t.Errorf("%d handed over and %d spliced, want 0 and 1", n, m)
			}
			if degraded && took >= handWait {
				t.Errorf("degraded: the answer took %v, want it spliced at once", took)
			}
			if !degraded && took < handWait {
				t.Errorf("the answer came after %v, before handWait (%v): spliced before the filter had its chance", took, handWait)
			}
		})
	}
}

// BenchmarkAccept: accept(2) of a client on the loopback without the
// filter, with it for a listener at no published port (goes on as made),
// and for one at a published port (the supervisor accepts and gives the
// connection, as it is: no doorbell). At most -benchtime 4000x.
func BenchmarkAccept(b *testing.B) {
	const backlog = 4000
	lfd, port := rawListener(b, unix.AF_INET, backlog)
	lo := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}
	// The clients connect first (the backlog holds them), then the
	// accepts alone are timed.
	loop := func(b *testing.B) {
		if b.N > backlog {
			b.Fatalf("-benchtime %dx: at most %dx (the listener's backlog)", b.N, backlog)
		}
		clients := make([]int, b.N)
		for i := range clients {
			c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err == nil {
				err = unix.Connect(c, lo)
			}
			if err != nil {
				b.Fatal(err)
			}
			clients[i] = c
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			a, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
			if err != nil {
				b.Fatal(err)
			}
			unix.Close(a)
		}
		b.StopTimer()
		for _, c := range clients {
			unix.Close(c)
		}
	}
	b.Run("plain", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		loop(b)
	})
	other, cfg, _ := publishFixture(b, lo.Port+1)
	b.Run("continue", func(b *testing.B) {
		onFilteredThread(b, cfg, other, func(*Server) { loop(b) })
	})
	published, cfg, _ := publishFixture(b, lo.Port)
	b.Run("published", func(b *testing.B) {
		onFilteredThread(b, cfg, published, func(*Server) { loop(b) })
	})
}
