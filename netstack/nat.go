package netstack

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/rlcontainers/rl/netstack/netconf"
)

const (
	// dialTimeout bounds the host-side connect of a guest's connection; the
	// guest retransmits its SYN meanwhile (one forwarder request per flow).
	dialTimeout = 30 * time.Second
	// udpIdle ends a UDP flow that carried nothing for this long (Linux's
	// conntrack keeps a replied UDP flow for 120 s, an unreplied one 30 s).
	udpIdle = 60 * time.Second
	// copyBufSize is the buffer of a TCP relay direction: a large one means
	// few syscalls per 64 KiB segment at full speed.
	copyBufSize = 256 << 10
	// maxDatagram is the largest UDP payload (IPv4: 65535 - 20 - 8).
	maxDatagram = 65535
)

var (
	copyBufs     = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}
	datagramBufs = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}
)

// forwardTCP handles a guest's SYN to an address with no listener in the
// stack: it dials the host first and completes the guest's handshake only
// once the host accepted, so a refused or unreachable port is refused (RST)
// in the container, at once, rather than accepted and then dropped.
func (n *Stack) forwardTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	target, ok := n.cfg.HostTarget(netip.AddrPortFrom(fromTCPIP(id.LocalAddress), id.LocalPort))
	if !ok {
		r.Complete(true)
		return
	}
	d := n.dialer(target.Addr(), dialTimeout)
	host, err := d.DialContext(n.ctx, "tcp", target.String())
	if err != nil {
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	r.Complete(false)
	if terr != nil {
		// The guest gave up (RST) while the host dial was under way.
		host.Close()
		return
	}
	n.goTracked(func() { relayGuestTCP(guestTCP{ep, &wq}, host.(*net.TCPConn)) })
}

// forwardUDP handles a guest's datagram that belongs to no flow yet: it
// opens a host socket connected to the destination and relays the flow both
// ways until it idles. Returning false makes the stack answer ICMP port
// unreachable, so a refused destination fails fast.
func (n *Stack) forwardUDP(r *udp.ForwarderRequest) bool {
	id := r.ID()
	target, ok := n.cfg.HostTarget(netip.AddrPortFrom(fromTCPIP(id.LocalAddress), id.LocalPort))
	if !ok {
		return false
	}
	host, err := net.DialUDP("udp", n.localUDP(target.Addr()), net.UDPAddrFromAddrPort(target))
	if err != nil {
		return false
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		host.Close()
		return true
	}
	guest := gonet.NewUDPConn(&wq, ep)
	n.goTracked(func() { relayUDP(guest, host) })
	return true
}

// halfCloser is a connection whose write side can be shut alone (TCP FIN).
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// relayTCP copies both ways between a guest connection and a host one
// through a buffer: the DNS relay's path (NAT and published ports take
// relayGuestTCP, which has none). A clean end of one direction (FIN)
// becomes a FIN on the other side, so half-closed protocols work; an error
// (reset, abort) ends both.
func relayTCP(guest *gonet.TCPConn, host *net.TCPConn) {
	netconf.BothWays[halfCloser](guest, host, pipeTCP)
}

// pipeTCP copies src to dst with a large pooled buffer. The io.Reader and
// io.Writer wrappers hide ReadFrom/WriteTo, which would use a 32 KiB
// buffer of their own.
func pipeTCP(dst, src halfCloser) {
	bp := copyBufs.Get().(*[]byte)
	_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
	copyBufs.Put(bp)
	if err != nil {
		dst.Close()
		src.Close()
		return
	}
	dst.CloseWrite()
}

// relayUDP relays a NAT flow between the guest's endpoint and its host
// socket until neither side has sent anything for udpIdle.
func relayUDP(guest *gonet.UDPConn, host *net.UDPConn) {
	f := newUDPFlow()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.pump(host, func(b []byte) error { _, err := guest.Write(b); return err })
		guest.Close()
		host.Close()
	}()
	f.pump(guest, func(b []byte) error { _, err := host.Write(b); return err })
	guest.Close()
	host.Close()
	wg.Wait()
}

// udpFlow is the shared idle clock of a UDP flow's two directions.
type udpFlow struct {
	last atomic.Int64 // unix nanoseconds of the last datagram either way
}

func newUDPFlow() *udpFlow {
	f := &udpFlow{}
	f.touch()
	return f
}

func (f *udpFlow) touch() { f.last.Store(time.Now().UnixNano()) }

// pump reads datagrams from src and hands each to send until src fails or
// the flow idles. The read deadline is moved only when it fires, not per
// datagram: a gonet deadline costs a timer each time it is set.
func (f *udpFlow) pump(src net.Conn, send func([]byte) error) {
	bp := datagramBufs.Get().(*[]byte)
	defer datagramBufs.Put(bp)
	buf := *bp
	src.SetReadDeadline(time.Now().Add(udpIdle))
	for {
		k, err := src.Read(buf)
		if err != nil {
			// A host socket reports an ICMP unreachable for an earlier
			// datagram on the next read; the flow itself goes on.
			if f.awake(src, err) || errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			return
		}
		f.touch()
		_ = send(buf[:k]) // UDP: a datagram that cannot be sent is lost
	}
}

// awake says whether a read of src that failed with err may go on: its
// deadline fired but the flow has not idled (the deadline is moved to
// udpIdle after the flow's last datagram).
func (f *udpFlow) awake(src interface{ SetReadDeadline(time.Time) error }, err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	last := time.Unix(0, f.last.Load())
	if time.Since(last) >= udpIdle {
		return false
	}
	src.SetReadDeadline(last.Add(udpIdle))
	return true
}

// isPortInUse reports whether a bind failed on a port the stack already uses.
func isPortInUse(err tcpip.Error) bool {
	_, ok := err.(*tcpip.ErrPortInUse)
	return ok
}

// dialer dials TCP to dst from its local address (outbound_addr), or the
// kernel's choice.
func (n *Stack) dialer(dst netip.Addr, timeout time.Duration) net.Dialer {
	d := net.Dialer{Timeout: timeout}
	if l := n.cfg.LocalFor(dst); l.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: l.AsSlice()}
	}
	return d
}

// localUDP is the local address of a UDP socket to dst (outbound_addr), nil
// for the kernel's choice.
func (n *Stack) localUDP(dst netip.Addr) *net.UDPAddr {
	if l := n.cfg.LocalFor(dst); l.IsValid() {
		return &net.UDPAddr{IP: l.AsSlice()}
	}
	return nil
}
