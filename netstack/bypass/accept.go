package bypass

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"time"
	"unsafe"

	"github.com/rlcontainers/rl/netstack/netconf"
	"golang.org/x/sys/unix"
)

// The workload's accept(2) and accept4(2), with published TCP ports
// (ports.go): for its listening socket at a published port the server
// accepts on a copy of the socket itself, and gives the workload the
// client's host socket when what it got is a doorbell, or what it got.

// acceptCall is an accept call of a listening socket of the container at
// a published port, being answered.
type acceptCall struct {
	req      notif
	ln       int // our copy of the listener
	domain   int // its family
	flags    int // accept4's
	addr     uintptr
	addrLen  uintptr
	room     int    // the caller's room for the address (-1: addr is nil)
	port     uint16 // the listener's (a published port of the container)
	blocking bool
	deadline time.Time // SO_RCVTIMEO's, for a blocking one
}

// errWait: a blocking accept finds no connection yet (accept's wait).
const errWait = unix.Errno(^uintptr(0) - 1)

// takeAccept answers an accept call on the serving thread when it can: one
// that goes on as made, one whose connection waits, a non-blocking one
// that finds none; a blocking one that must wait for a connection waits
// on a goroutine of its own.
func (s *Server) takeAccept(req *notif) {
	a, errno, cont := s.readAccept(req)
	if a == nil {
		if errno != errGone {
			s.reply(req.ID, errno, cont)
		}
		return
	}
	if errno = s.accept(a, false); errno != errWait {
		s.endAccept(a, errno)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.endAccept(a, s.accept(a, true))
	}()
}

// endAccept sends the answer errno (none for errGone) and lets a go.
func (s *Server) endAccept(a *acceptCall, errno unix.Errno) {
	if errno != errGone {
		s.reply(a.req.ID, errno, false)
	}
	unix.Close(a.ln)
}

// readAccept reads an accept call: nil and the answer (errGone: none)
// unless it is one of a published listener's.
func (s *Server) readAccept(req *notif) (a *acceptCall, errno unix.Errno, cont bool) {
	fd := int(int32(req.Args[0]))
	a = &acceptCall{req: *req, addr: uintptr(req.Args[1]), addrLen: uintptr(req.Args[2]), room: -1}
	if req.Nr == unix.SYS_ACCEPT4 {
		a.flags = int(int32(req.Args[3]))
	}
	if fd < 0 || a.flags&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 {
		return nil, 0, true // the kernel answers that
	}
	// The room the caller has for the address, read before anything is
	// accepted: a bad pointer is the kernel's to refuse.
	if a.addr != 0 {
		var b [4]byte
		if !s.peek(req, a.addrLen, b[:]) {
			return nil, 0, true
		}
		if a.room = int(int32(binary.NativeEndian.Uint32(b[:]))); a.room < 0 {
			return nil, 0, true
		}
	}
	pidfd, err := openThread(int(req.Pid))
	if err != nil {
		s.denied("pidfd_open", err)
		return nil, 0, true
	}
	defer unix.Close(pidfd)
	if a.ln, err = unix.PidfdGetfd(pidfd, fd, 0); err != nil {
		s.denied("pidfd_getfd", err)
		return nil, 0, true
	}
	if !s.valid(req.ID) {
		unix.Close(a.ln)
		return nil, errGone, false
	}
	fl, err := unix.FcntlInt(uintptr(a.ln), unix.F_GETFL, 0)
	var ok bool
	if a.domain, a.port, ok = s.publishedListener(a.ln); !ok || err != nil {
		unix.Close(a.ln)
		return nil, 0, true
	}
	if a.blocking = fl&unix.O_NONBLOCK == 0; a.blocking {
		a.deadline = timeout(a.ln, unix.SO_RCVTIMEO)
	}
	return a, 0, false
}

// accept accepts for call a and gives the caller what it got: errGone
// once answered (or the call is over), errWait when a blocking call finds
// nothing and wait is false, otherwise the call's error.
func (s *Server) accept(a *acceptCall, wait bool) unix.Errno {
	req := &a.req
	var c int
	var peer unix.Sockaddr
	var err error
	for {
		c, peer, err = s.ports.acceptReady(a.ln)
		if err == unix.EAGAIN && a.blocking {
			if !wait {
				return errWait
			}
			// Wait as the call would (SO_RCVTIMEO bounds it), but here,
			// where the caller's end (a signal) and Close are seen.
			if err = s.waitFor(req.ID, a.ln, unix.POLLIN, a.deadline); err == nil {
				continue
			}
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return errnoOf(err)
		}
		break
	}
	give, from := c, netconf.SockaddrAddrPort(peer)
	h, handed := s.ports.take(from)
	if handed {
		// The client's host socket instead of the doorbell, if the
		// workload's socket family can name the client.
		if sa, err := unix.Getpeername(h.fd); err == nil {
			from = netconf.SockaddrAddrPort(sa)
		}
		if a.domain == unix.AF_INET && !from.Addr().Is4() {
			h.done <- false // spliced
			handed = false
			from = netconf.SockaddrAddrPort(peer)
		} else {
			give = h.fd
		}
	}
	if handed {
		s.ports.handed.Add(1) // before the caller runs on
	}
	if beforeGive != nil {
		beforeGive(int(req.Pid))
	}
	errno := s.give(a, give, from)
	// A call that ended before it got the connection (a signal) does not
	// lose it: the service is rung again for it, as for a new client, and
	// its next accept (the call restarted, or the next one) gets it.
	keep := -1
	if errno == errGone {
		keep = give
	}
	if c != keep {
		unix.Close(c)
	}
	if handed {
		if h.fd != keep {
			unix.Close(h.fd)
		}
		if errno != 0 {
			s.ports.handed.Add(-1)
		}
		h.done <- true // the doorbell is done with either way
	}
	if keep >= 0 {
		s.ports.again(keep, from, a.port)
	}
	if errno == 0 {
		return errGone // answered
	}
	return errno
}

// beforeGive, when set (tests), runs before an accepted connection is
// given to the calling thread tid.
var beforeGive func(tid int)

// give puts fd in the caller's table as its accept's result (O_NONBLOCK
// and close-on-exec as accept4 asked), after writing the peer's address
// (from, in the listener's family) where accept(2) would. 0: the call is
// answered; errGone: it is over; another errno is the call's error.
func (s *Server) give(a *acceptCall, fd int, from netip.AddrPort) unix.Errno {
	req := &a.req
	if err := unix.SetNonblock(fd, a.flags&unix.SOCK_NONBLOCK != 0); err != nil {
		return errnoOf(err)
	}
	if a.addr != 0 {
		b := rawSockaddr(a.domain, from)
		n := min(a.room, len(b))
		var size [4]byte
		binary.NativeEndian.PutUint32(size[:], uint32(len(b)))
		if (n > 0 && !s.poke(req, a.addr, b[:n])) || !s.poke(req, a.addrLen, size[:]) {
			return unix.EFAULT
		}
	}
	add := notifAddfd{ID: req.ID, Flags: unix.SECCOMP_ADDFD_FLAG_SEND, Srcfd: uint32(fd)}
	if a.flags&unix.SOCK_CLOEXEC != 0 {
		add.NewfdFlags = unix.O_CLOEXEC
	}
	e := s.addfdSend(&add)
	if e == unix.EINVAL {
		// Before Linux 5.14 (no ADDFD_FLAG_SEND): add, then answer.
		add.Flags = 0
		newfd, err := s.ioctlRet(unix.SECCOMP_IOCTL_NOTIF_ADDFD, unsafe.Pointer(&add))
		if err == nil {
			s.replyVal(req.ID, int64(newfd), 0, false)
			return 0
		}
		e = err
	}
	switch e {
	case nil:
		return 0
	case unix.ENOENT, unix.ESRCH:
		return errGone // the call ended (a signal) before or while the descriptor went in
	}
	s.unavailable("SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9)", e)
	return unix.EIO // no way left to give it: the connection is lost
}

// addfdSend makes SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND
// with every signal blocked. Its wait for the caller is interruptible, and
// a signal there (Go's preemption signal, SIGURG, will do) leaves the call
// marked answered with no descriptor given: the kernel restarts the ioctl,
// which finds the call over, while the caller's accept returns 0 (its
// stdin). TestPortsAcceptInterrupted saw it 3 times in about 550 runs
// before, in none of 1320 after.
func (s *Server) addfdSend(add *notifAddfd) error {
	runtime.LockOSThread() // the mask is the thread's
	defer runtime.UnlockOSThread()
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^all.Val[i]
	}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &all, &old); err != nil {
		return err
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return s.ioctl(unix.SECCOMP_IOCTL_NOTIF_ADDFD, unsafe.Pointer(add))
}

// publishedListener says whether fd is a listening TCP socket of the
// container at a published port, and its family and port.
func (s *Server) publishedListener(fd int) (int, uint16, bool) {
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v == 0 {
		return 0, 0, false
	}
	// Multipath TCP too: Go's listeners are (since Go 1.24), and a plain
	// TCP client of one is a TCP socket as ever.
	if p, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || (p != unix.IPPROTO_TCP && p != unix.IPPROTO_MPTCP) {
		return 0, 0, false
	}
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil || (domain != unix.AF_INET && domain != unix.AF_INET6) {
		return 0, 0, false
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, 0, false
	}
	port := netconf.SockaddrAddrPort(sa).Port()
	if !s.ports.published(port) || !s.ours(fd) {
		return 0, 0, false
	}
	return domain, port, true
}

// rawSockaddr is a as a struct sockaddr_in or sockaddr_in6 (an IPv4
// address v4-mapped), of domain.
func rawSockaddr(domain int, a netip.AddrPort) []byte {
	if domain == unix.AF_INET {
		b := make([]byte, unix.SizeofSockaddrInet4)
		binary.NativeEndian.PutUint16(b, unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], a.Port())
		ip := a.Addr().Unmap().As4()
		copy(b[4:], ip[:])
		return b
	}
	b := make([]byte, unix.SizeofSockaddrInet6)
	binary.NativeEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], a.Port())
	ip := a.Addr().As16()
	copy(b[8:], ip[:])
	return b
}

// peek reads len(b) bytes at the caller's address at.
func (s *Server) peek(req *notif, at uintptr, b []byte) bool { return s.vm(req, at, b, false) }

// poke writes b at the caller's address at.
func (s *Server) poke(req *notif, at uintptr, b []byte) bool { return s.vm(req, at, b, true) }

// vm copies between b and the caller's memory at at.
func (s *Server) vm(req *notif, at uintptr, b []byte, write bool) bool {
	local := []unix.Iovec{{Base: &b[0]}}
	local[0].SetLen(len(b))
	remote := []unix.RemoteIovec{{Base: at, Len: len(b)}}
	call, f := "process_vm_readv", unix.ProcessVMReadv
	if write {
		call, f = "process_vm_writev", unix.ProcessVMWritev
	}
	n, err := f(int(req.Pid), local, remote, 0)
	if err != nil {
		s.denied(call, err)
	}
	return err == nil && n == len(b)
}
