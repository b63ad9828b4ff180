package netstack

import (
	"io"
	"net"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// The benchmarks stream through the stack on the in-memory channel link (two
// gVisor stacks, so the guest's TCP costs as much CPU as rl's): a lower
// bound for the real TAP, where the guest's TCP is the kernel's.

// BenchmarkGuestToHost: the container uploads to a host server through NAT
// (10.0.2.2 -> 127.0.0.1).
func BenchmarkGuestToHost(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan int64)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		done <- n
	}()
	tn := newTestNet(b, allowLoopback(), nil)
	c, err := tn.dial(b, netip.AddrPortFrom(netip.MustParseAddr("10.0.2.2"), uint16(ln.Addr().(*net.TCPAddr).Port)))
	if err != nil {
		b.Fatal(err)
	}
	stream(b, c)
	c.Close()
	<-done
}

// BenchmarkHostToGuest: a host client uploads to the container through a
// published port.
func BenchmarkHostToGuest(b *testing.B) {
	l, err := Listen([]PortMapping{{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), GuestPort: 5201}})
	if err != nil {
		b.Fatal(err)
	}
	tn := newTestNet(b, DefaultConfig(), l)
	gl, err := gonet.ListenTCP(tn.guest, full(netip.MustParseAddrPort("10.0.2.100:5201")), ipv4.ProtocolNumber)
	if err != nil {
		b.Fatal(err)
	}
	defer gl.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := gl.Accept()
		if err != nil {
			return
		}
		io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, make([]byte, 256<<10))
		c.Close()
	}()
	c, err := net.Dial("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), l.Ports()[0].HostPort).String())
	if err != nil {
		b.Fatal(err)
	}
	stream(b, c)
	c.Close()
	<-done
}

func stream(b *testing.B, c net.Conn) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}
