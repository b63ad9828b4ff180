package netconf

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// loopbackService listens on 127.0.0.1 (or ::1) and closes what it accepts.
func loopbackService(t testing.TB, network, addr string) netip.AddrPort {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// ownNetNS is the test's own network namespace as a NetNS.
func ownNetNS(t testing.TB) *NetNS {
	t.Helper()
	f, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	n := NewNetNS(f)
	t.Cleanup(n.Close)
	return n
}

// TestNetNSDial: a connection from the loopback of the target's family,
// whose address bound learns before the connect; a refused target gives
// way to the next; a refusal is ECONNREFUSED; after Close, ErrNamespace.
func TestNetNSDial(t *testing.T) {
	n := ownNetNS(t)
	to4 := loopbackService(t, "tcp4", "127.0.0.1:0")
	to6 := loopbackService(t, "tcp6", "[::1]:0")
	// A port nothing listens on (a listener's, closed).
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().(*net.TCPAddr).AddrPort()
	l.Close()
	for _, to := range []netip.AddrPort{to4, to6} {
		for i := 0; i < 2*ready+1; i++ { // past the sockets kept ready
			var got netip.AddrPort
			c, err := n.DialFromLoopback(context.Background(), []netip.AddrPort{refused, to}, func(a netip.AddrPort) { got = a })
			if err != nil {
				t.Fatalf("dial %s: %v", to, err)
			}
			local := c.LocalAddr().(*net.TCPAddr).AddrPort()
			remote := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			c.Close()
			if local != got || remote != to || !local.Addr().IsLoopback() || local.Addr().Is4() != to.Addr().Is4() {
				t.Fatalf("dial %s: connection %s -> %s, bound told %s", to, local, remote, got)
			}
		}
	}
	if _, err := n.DialFromLoopback(context.Background(), []netip.AddrPort{refused}, nil); !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("dial %s, where nothing listens: want ECONNREFUSED, got %v", refused, err)
	}
	n.Close()
	if _, err := n.DialFromLoopback(context.Background(), []netip.AddrPort{to4}, nil); !errors.Is(err, ErrNamespace) {
		t.Fatalf("dial after Close: want ErrNamespace, got %v", err)
	}
}

// TestNetNSOtherNamespace: sockets are made in the namespace given, not
// the caller's: a thread of the test enters a new one (lo down there),
// and a dial to the test's own service through it fails.
func TestNetNSOtherNamespace(t *testing.T) {
	to := loopbackService(t, "tcp4", "127.0.0.1:0")
	ch := make(chan *os.File, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- nil
			return
		}
		f, _ := os.Open("/proc/thread-self/ns/net")
		ch <- f
	}()
	f := <-ch
	if f == nil {
		t.Skip("cannot unshare a network namespace here")
	}
	n := NewNetNS(f)
	defer n.Close()
	if c, err := n.DialFromLoopback(context.Background(), []netip.AddrPort{to}, nil); err == nil {
		c.Close()
		t.Fatalf("a dial through another namespace reached the test's own %s", to)
	}
	if c, err := ownNetNS(t).DialFromLoopback(context.Background(), []netip.AddrPort{to}, nil); err != nil {
		t.Fatalf("through the test's own: %v", err)
	} else {
		c.Close()
	}
}

// BenchmarkDialFromLoopback: one connection into a namespace (here the
// test's own), as a published port's loopback client makes (the splice,
// bypass's doorbell).
func BenchmarkDialFromLoopback(b *testing.B) {
	to := loopbackService(b, "tcp4", "127.0.0.1:0")
	n := ownNetNS(b)
	for b.Loop() {
		c, err := n.DialFromLoopback(context.Background(), []netip.AddrPort{to}, nil)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// TestNetNSConcurrentClose: dials from many goroutines, past the sockets
// kept ready, with Close in their midst: each connects or fails with
// ErrNamespace, none waits on, and Close leaves no socket of the pool open.
func TestNetNSConcurrentClose(t *testing.T) {
	to := loopbackService(t, "tcp4", "127.0.0.1:0")
	f, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	n := NewNetNS(f)
	errs := make(chan error, 64)
	for i := 0; i < cap(errs); i++ {
		go func() {
			c, err := n.DialFromLoopback(context.Background(), []netip.AddrPort{to}, nil)
			if err == nil {
				c.Close()
			}
			errs <- err
		}()
		if i == cap(errs)/2 {
			n.Close()
		}
	}
	for i := 0; i < cap(errs); i++ {
		if err := <-errs; err != nil && !errors.Is(err, ErrNamespace) {
			t.Errorf("a dial beside Close: %v", err)
		}
	}
	for i := range n.pool {
		if k := len(n.pool[i]); k != 0 {
			t.Errorf("%d sockets left in the pool after Close", k)
		}
	}
}
