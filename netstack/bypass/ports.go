package bypass

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rlcontainers/rl/netstack/netconf"
	"golang.org/x/sys/unix"
)

// Published TCP ports with bypass=true: the client's own host socket is
// handed to the workload.
//
// The supervisor accepts a client at a published port on the host, as
// always, and then wakes the container's service the way the loopback
// splice does (netstack/splice.go): a connection from the container's
// loopback to its address, made inside its network namespace. That
// connection is only a doorbell. The workload's accept(2) is reported to
// the supervisor like its connect(2) (initproc.InstallConnectNotify with
// accept); for a listening TCP socket of the container at a published port
// the supervisor accepts on its copy of the socket itself, and when what
// it gets is a doorbell it gives the workload the client's host socket in
// its place (SECCOMP_IOCTL_NOTIF_ADDFD, SECCOMP_ADDFD_FLAG_SEND: the new
// descriptor is accept's result) and the client's address. The workload
// then reads and writes the client's socket itself: host loopback speed,
// the client's own address, no relay. Anything else accepted (a client in
// the container) is given as it is. A doorbell nobody takes through the
// filter within handWait (a workload that accepts through io_uring) has
// its connection spliced to the client's instead, as without bypass.
//
// A doorbell carries no data, so a listener with TCP_DEFER_ACCEPT (nginx's
// `listen ... deferred`) would not queue it until the kernel's timeout: one
// not taken within nudgeAfter sends one byte of urgent data (MSG_OOB),
// which completes it. The byte goes with the doorbell when the client is
// handed over; when spliced, it is out of band, unseen by read(2) (unless
// the workload asked for SO_OOBINLINE).

// handWait is how long a client waits for the workload's accept to take
// its host socket before it is spliced instead.
const handWait = 2 * time.Second

// nudgeAfter is how long a doorbell waits for the workload's accept before
// it sends its urgent byte.
const nudgeAfter = 20 * time.Millisecond

// Ports serves published TCP ports by handing each client's socket to the
// workload.
type Ports struct {
	cfg    netconf.Config
	netns  *netconf.NetNS     // the container's network namespace (ours)
	guest  map[uint16]bool    // the container's published ports
	l      *netconf.Listeners // the host's side
	files  []*os.File         // duplicates of l's sockets, which we accept on
	ctx    context.Context    // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loops and clients
	mu     sync.Mutex
	bells  map[netip.AddrPort]*handoff // by the doorbell's local address (the container's loopback)
	// accepting serializes the accepts made for the workload's callers
	// (acceptReady).
	accepting sync.Mutex
	// degraded: accept(2) is not reported (no filter, or its server
	// cannot take calls): splice at once.
	degraded atomic.Bool
	// handed and spliced count the clients (tests).
	handed, spliced atomic.Int64
}

// handoff is a client's host socket waiting for the workload's accept.
type handoff struct {
	fd int // the client's socket: the taker's once taken
	// done says, once, what the taker did: true, the workload has the
	// client (the taker closed fd); false, it gives fd back to be spliced.
	done chan bool
}

// ServePorts serves l's TCP listeners (which it owns from now on) for the
// container whose network namespace netns is (an open /proc/PID/ns/net,
// which the caller keeps), until Close.
func ServePorts(l *netconf.Listeners, netns *os.File, cfg netconf.Config) (*Ports, error) {
	fd, err := unix.FcntlInt(netns.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		l.Close()
		return nil, err
	}
	p := &Ports{cfg: cfg, netns: netconf.NewNetNS(os.NewFile(uintptr(fd), "netns")), guest: map[uint16]bool{}, l: l,
		bells: map[netip.AddrPort]*handoff{}}
	// A listener's own SyscallConn cannot be read (EINVAL); duplicates
	// share its O_NONBLOCK and are in Go's poller.
	if p.files, err = l.Files(); err != nil {
		p.netns.Close()
		l.Close()
		return nil, err
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for i, m := range l.Ports() {
		if m.Proto != "tcp" {
			continue
		}
		p.guest[m.GuestPort] = true
		p.wg.Add(1)
		go p.serve(p.files[i], m.GuestPort)
	}
	return p, nil
}

// Close stops serving: clients not yet handed over are reset, those
// spliced are ended.
func (p *Ports) Close() {
	p.mu.Lock() // again adds to wg under mu, only before this
	p.cancel()
	p.mu.Unlock()
	p.l.Close()
	for _, f := range p.files {
		f.Close()
	}
	p.wg.Wait()
	p.netns.Close()
}

// Degrade has clients spliced at once from now on: the workload's accept
// calls are not reported (its filter could not be installed or served).
func (p *Ports) Degrade() {
	if p != nil {
		p.degraded.Store(true)
	}
}

// Handed is how many clients the workload got as host sockets, Spliced how
// many were spliced instead.
func (p *Ports) Handed() int  { return int(p.handed.Load()) }
func (p *Ports) Spliced() int { return int(p.spliced.Load()) }

// published says whether the container's port is published.
func (p *Ports) published(port uint16) bool { return p.guest[port] }

// serve accepts the clients of one published port (raw sockets: a socket
// handed over must not be in our poller).
func (p *Ports) serve(ln *os.File, guestPort uint16) {
	defer p.wg.Done()
	rc, err := ln.SyscallConn()
	if err != nil {
		return
	}
	for {
		var fd int
		var sa unix.Sockaddr
		var aerr error
		err := rc.Read(func(lfd uintptr) bool {
			fd, sa, aerr = unix.Accept4(int(lfd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			return aerr != unix.EAGAIN
		})
		switch {
		case err != nil:
			return // closed
		case aerr == unix.EMFILE || aerr == unix.ENFILE || aerr == unix.ENOBUFS || aerr == unix.ENOMEM:
			time.Sleep(50 * time.Millisecond) // wait rather than spin
			continue
		case aerr != nil:
			continue // ECONNABORTED and the like: that client is gone
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.hand(fd, netconf.SockaddrAddrPort(sa), guestPort)
		}()
	}
}

// again hands fd, a connection accepted for a caller that could not be
// given it (its call ended), to the service once more: a new doorbell,
// which its next accept takes. After Close it is reset.
func (p *Ports) again(fd int, from netip.AddrPort, guestPort uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		resetClose(fd)
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.hand(fd, from, guestPort)
	}()
}

// hand rings the container's service for the client on fd and waits for
// the workload to take fd; failing that, it splices the two.
func (p *Ports) hand(fd int, client netip.AddrPort, guestPort uint16) {
	var targets []netip.AddrPort
	for _, a := range p.cfg.GuestAddrs(client.Addr()) {
		targets = append(targets, netip.AddrPortFrom(a, guestPort))
	}
	h := &handoff{fd: fd, done: make(chan bool, 1)}
	var rung []netip.AddrPort
	// Each attempt's address is known before its connect starts: the
	// workload may accept before the dial returns.
	bound := func(a netip.AddrPort) {
		if p.degraded.Load() {
			return
		}
		p.mu.Lock()
		p.bells[a] = h
		p.mu.Unlock()
		rung = append(rung, a)
	}
	bell, err := p.netns.DialFromLoopback(p.ctx, targets, bound)
	var key netip.AddrPort
	if err == nil {
		key = unmapPort(bell.LocalAddr().(*net.TCPAddr).AddrPort())
	}
	for _, a := range rung {
		if a == key {
			continue
		}
		if _, ok := p.take(a); !ok {
			// An attempt the dial gave up on (Close cancelled it) that
			// the workload accepted and took: fd is the taker's.
			if <-h.done {
				if bell != nil {
					bell.Close()
				}
				return
			}
		}
	}
	if err != nil {
		// Nothing listens in the container: reset, as a closed port.
		resetClose(fd)
		return
	}
	if len(rung) > 0 {
		t := time.NewTimer(handWait)
		defer t.Stop()
		nudge := time.NewTimer(nudgeAfter)
		defer nudge.Stop()
		handed, told := false, false
	wait:
		for {
			select {
			case handed = <-h.done:
				told = true
				break wait
			case <-nudge.C:
				urgent(bell)
			case <-t.C:
				break wait
			case <-p.ctx.Done():
				break wait
			}
		}
		if _, ok := p.take(key); !ok && !told {
			// Being taken: wait for the taker's word.
			handed = <-h.done
		}
		if handed {
			bell.Close()
			return
		}
	}
	if p.ctx.Err() != nil {
		resetClose(fd)
		bell.Close()
		return
	}
	// Spliced: the workload accepted the doorbell without the filter
	// seeing it, or cannot be given the client's socket.
	f := os.NewFile(uintptr(fd), "client")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		bell.Close()
		return
	}
	p.spliced.Add(1)
	stop := context.AfterFunc(p.ctx, func() {
		c.Close()
		bell.Close()
	})
	defer stop()
	netconf.Splice(c.(*net.TCPConn), bell)
}

// urgent sends one byte of urgent data on c, which completes its
// connection at a listener with TCP_DEFER_ACCEPT.
func urgent(c *net.TCPConn) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Write(func(fd uintptr) bool {
		_ = unix.Sendto(int(fd), []byte{0}, unix.MSG_OOB|unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, nil)
		return true
	})
}

// take removes the client whose doorbell came from bell (the container's
// loopback address and port) and returns it, for the one who then owns
// its socket: the workload's accept, or hand when nobody took it in time.
func (p *Ports) take(bell netip.AddrPort) (*handoff, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.bells[bell]
	if ok {
		delete(p.bells, bell)
	}
	return h, ok
}

// acceptReady accepts a connection waiting on ln, the workload's listening
// socket (our copy), or fails with EAGAIN when none waits. A blocking
// socket's accept would wait in the kernel, where neither the caller's
// signal nor Close could end it; so the queue is looked at first, and the
// accepts the supervisor makes, for every caller of every listener, one at
// a time, so that no other caller takes the connection in between.
func (p *Ports) acceptReady(ln int) (int, unix.Sockaddr, error) {
	p.accepting.Lock()
	defer p.accepting.Unlock()
	fds := []unix.PollFd{{Fd: int32(ln), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 0); err != nil {
		return -1, nil, err
	} else if n == 0 || fds[0].Revents&unix.POLLIN == 0 {
		return -1, nil, unix.EAGAIN
	}
	return unix.Accept4(ln, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
}

// resetClose closes fd with a reset (a client nothing will serve).
func resetClose(fd int) {
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(fd)
}

func unmapPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
