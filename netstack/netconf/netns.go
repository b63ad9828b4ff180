package netconf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNamespace: the container's network namespace could not be entered.
var ErrNamespace = errors.New("entering the container's network namespace")

// InNamespace runs f on a thread of its own in the network namespace
// netns (an open /proc/PID/ns/net) and returns f's result, or the error of
// entering it. setns affects the calling thread only, and the runtime
// discards a thread whose goroutine ends locked to it: no other goroutine
// ever runs in that namespace. Sockets f makes stay in it.
func InNamespace(netns *os.File, f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Setns(int(netns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- fmt.Errorf("%w: %v", ErrNamespace, err)
			return
		}
		ch <- f()
	}()
	return <-ch
}

// GuestDialTimeout bounds a connect inside the container's namespace; on
// its loopback it completes or is refused at once.
const GuestDialTimeout = 10 * time.Second

// NetNS makes TCP sockets in a network namespace (an open /proc/PID/ns/net)
// for DialFromLoopback. A socket's namespace is fixed when it is made, so
// only socket(2) has to run there: a thread of its own enters the
// namespace once, on first use, and keeps a few sockets of each family
// ready; the bind and the connect run on the caller's. (A thread per dial,
// made, moved into the namespace and discarded, cost ~115 us a connection:
// BenchmarkDialFromLoopback.)
type NetNS struct {
	file  *os.File
	start sync.Once
	shut  sync.Once
	pool  [2]chan int // ready sockets: IPv4, IPv6
	want  chan struct{}
	reqs  chan sockReq // when the pool is empty
	quit  chan struct{}
	done  chan struct{} // the thread has ended
	err   error         // why it could not enter the namespace (once done)
}

type sockReq struct {
	family int
	reply  chan sockResult
}

type sockResult struct {
	fd  int
	err error
}

// ready is how many sockets of each family a NetNS keeps made; its thread
// is woken to make more once half are taken. On rl-net's one processor
// (cmd/rl-net) each wake hands the processor to that thread and back:
// refilled after every socket (4 kept), connections through -p from 8
// clients at a time went 5500 -> 4800/s against two processors; refilled
// by 8, 4600-5050/s.
const ready = 16

// NewNetNS takes netns (an open /proc/PID/ns/net), which Close closes.
func NewNetNS(netns *os.File) *NetNS {
	n := &NetNS{file: netns, want: make(chan struct{}, 1), reqs: make(chan sockReq), quit: make(chan struct{}), done: make(chan struct{})}
	for i := range n.pool {
		n.pool[i] = make(chan int, ready)
	}
	return n
}

// File is the namespace's file, for what else runs in it (InNamespace).
func (n *NetNS) File() *os.File { return n.file }

// Close ends the thread, closes the sockets it made and the namespace's
// file. A dial under way fails (ErrNamespace) or goes on with its socket.
func (n *NetNS) Close() {
	n.shut.Do(func() {
		n.start.Do(func() { close(n.done) }) // never used: no thread
		close(n.quit)
		<-n.done
		for _, p := range n.pool {
			for len(p) > 0 {
				unix.Close(<-p)
			}
		}
		n.file.Close()
	})
}

// maker is the namespace's thread: it makes sockets until Close.
func (n *NetNS) maker() {
	defer close(n.done)
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
	if err := unix.Setns(int(n.file.Fd()), unix.CLONE_NEWNET); err != nil {
		n.err = fmt.Errorf("%w: %v", ErrNamespace, err)
		return
	}
	for {
		for i, family := range []int{unix.AF_INET, unix.AF_INET6} {
			for len(n.pool[i]) < cap(n.pool[i]) {
				fd, err := tcpSocket(family)
				if err != nil {
					break // asked for, the error goes to the caller
				}
				n.pool[i] <- fd
			}
		}
		select {
		case r := <-n.reqs:
			fd, err := tcpSocket(r.family)
			r.reply <- sockResult{fd, err}
		case <-n.want:
		case <-n.quit:
			return
		}
	}
}

func tcpSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}

// socket is a TCP socket of family made in the namespace.
func (n *NetNS) socket(family int) (int, error) {
	n.start.Do(func() { go n.maker() })
	i := 0
	if family == unix.AF_INET6 {
		i = 1
	}
	select {
	case fd := <-n.pool[i]:
		if len(n.pool[i]) <= ready/2 {
			select {
			case n.want <- struct{}{}:
			default:
			}
		}
		return fd, nil
	default:
	}
	reply := make(chan sockResult, 1)
	select {
	case n.reqs <- sockReq{family, reply}:
	case <-n.done:
		if n.err != nil {
			return -1, n.err
		}
		return -1, fmt.Errorf("%w: closed", ErrNamespace)
	}
	r := <-reply
	return r.fd, r.err
}

// DialFromLoopback connects, inside the namespace, from the container's
// own loopback to each of its addresses in targets (guest address and
// port) in turn, and returns the first connection made; a service
// listening on the container's loopback only is not reached. The error is
// the last target's (refused: nothing listens), or ErrNamespace. bound,
// unless nil, learns each attempt's local address before its connect
// starts. Cancelling ctx ends a connect that waits.
func (n *NetNS) DialFromLoopback(ctx context.Context, targets []netip.AddrPort, bound func(netip.AddrPort)) (*net.TCPConn, error) {
	var err error
	for _, t := range targets {
		var c *net.TCPConn
		if c, err = n.dial(ctx, t, bound); err == nil || errors.Is(err, ErrNamespace) {
			return c, err
		}
	}
	return nil, err
}

func (n *NetNS) dial(ctx context.Context, to netip.AddrPort, bound func(netip.AddrPort)) (*net.TCPConn, error) {
	var family int
	var dst unix.Sockaddr
	if a := to.Addr().Unmap(); a.Is4() {
		family, dst = unix.AF_INET, &unix.SockaddrInet4{Addr: a.As4(), Port: int(to.Port())}
	} else {
		family, dst = unix.AF_INET6, &unix.SockaddrInet6{Addr: a.As16(), Port: int(to.Port())}
	}
	fd, err := n.socket(family)
	if err != nil {
		return nil, err
	}
	if err := bindLoopback(fd, to.Addr(), bound); err != nil {
		unix.Close(fd)
		return nil, err
	}
	err = connectWait(ctx, fd, dst)
	if err == nil && to.Addr().Unmap().IsLoopback() && selfConnected(fd) {
		// The port bound is the one dialled, where nothing listened: the
		// kernel connected the socket to itself (as Go's dialer, refused).
		err = os.NewSyscallError("connect", unix.ECONNREFUSED)
	}
	if err != nil {
		unix.Close(fd)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(to), Err: err}
	}
	f := os.NewFile(uintptr(fd), "tcp")
	c, err := net.FileConn(f) // a copy, in Go's poller
	f.Close()
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// selfConnected says whether fd's peer is fd itself.
func selfConnected(fd int) bool {
	local, err1 := unix.Getsockname(fd)
	peer, err2 := unix.Getpeername(fd)
	return err1 == nil && err2 == nil && SockaddrAddrPort(local) == SockaddrAddrPort(peer)
}

// connectWait connects the non-blocking socket fd to sa and waits for the
// handshake (GuestDialTimeout at most, or until ctx ends). On the
// container's loopback it is over at once: the wait is a poll(2) in slices.
func connectWait(ctx context.Context, fd int, sa unix.Sockaddr) error {
	err := unix.Connect(fd, sa)
	if err != unix.EINPROGRESS && err != unix.EINTR {
		return os.NewSyscallError("connect", err)
	}
	deadline := time.Now().Add(GuestDialTimeout)
	for {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		k, err := unix.Poll(p, 50)
		if err != nil && err != unix.EINTR {
			return os.NewSyscallError("poll", err)
		}
		if k > 0 {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return os.NewSyscallError("connect", unix.ETIMEDOUT)
		}
	}
	soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && soErr != 0 {
		err = unix.Errno(soErr)
	}
	if err != nil {
		return os.NewSyscallError("connect", err)
	}
	return nil
}

// bindLoopback binds the socket fd to the loopback address of to's
// family, any port, and tells bound the address. Without bound the port is
// left to connect(2) (IP_BIND_ADDRESS_NO_PORT), which may use one another
// connection holds, to another destination or in TIME_WAIT: bind(2)'s own
// choice must be free of both, and with ~15,000 connections of the
// namespace's loopback in TIME_WAIT (clients that close first, at ~250 a
// second) it took milliseconds, then failed (BenchmarkDialFromLoopback).
func bindLoopback(fd int, to netip.Addr, bound func(netip.AddrPort)) error {
	var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if lo := LoopbackFor(to); lo.Is6() {
		sa = &unix.SockaddrInet6{Addr: lo.As16()}
	}
	if bound == nil {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1); err != nil {
			return os.NewSyscallError("setsockopt IP_BIND_ADDRESS_NO_PORT", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	if bound == nil {
		return nil
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return os.NewSyscallError("getsockname", err)
	}
	bound(SockaddrAddrPort(got))
	return nil
}

// LoopbackFor is the loopback address of a's family.
func LoopbackFor(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		return netip.IPv6Loopback()
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// SockaddrAddrPort is sa's address, IPv4 unmapped (the zero value for
// another family).
func SockaddrAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}
