// Package bypass gives a container's TCP connections to the outside host
// sockets of their own (`--network slirp:bypass=true`), bypass4netns's
// technique: the workload's seccomp filter reports each connect(2) to the
// supervisor (SECCOMP_RET_USER_NOTIF, initproc.InstallConnectNotify); for a
// TCP socket of the container's network namespace whose destination the
// NAT would dial (netconf.Config.HostTarget, the one policy), the
// supervisor connects a socket of its own in the host's network namespace,
// puts it in the workload's place at the same descriptor number
// (SECCOMP_IOCTL_NOTIF_ADDFD) and answers the call with that connect's
// result. The bytes then take the host kernel's path alone, as between two
// host processes, not the TAP and the user-mode stack. Every other call
// (a Unix socket, UDP, a destination in the container, one the policy
// refuses) goes on as the workload made it (SECCOMP_USER_NOTIF_FLAG_CONTINUE):
// through the container's own network and the stack, which refuses what the
// policy refuses. The decision is made on the supervisor's copy of the
// address and its own connect, so the workload cannot change what is
// connected after the check.
//
// What differs from the stack's NAT: the socket is the host's, so
// getsockname names the host's address and the container's own view (ss,
// /proc/net/tcp, its firewall) does not see the connection; options set
// before connect are carried over (keep-alive, TCP_NODELAY, timeouts,
// linger, TOS; not the buffer sizes); a socket in one of the caller's epoll
// sets before its connect is left to the stack (the set would go on
// watching the socket it was given).
package bypass

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/rlcontainers/rl/netstack/netconf"
	"golang.org/x/sys/unix"
)

// The kernel's seccomp notification structures (linux/seccomp.h), which
// x/sys has the ioctls for but not the types.

// notif is struct seccomp_notif (80 bytes).
type notif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

// notifResp is struct seccomp_notif_resp (24 bytes).
type notifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// notifAddfd is struct seccomp_notif_addfd (24 bytes).
type notifAddfd struct {
	ID         uint64
	Flags      uint32
	Srcfd      uint32
	Newfd      uint32
	NewfdFlags uint32
}

// waitStep is how often a blocking connect under way checks that its
// caller still waits (a signal ends the call).
const waitStep = 200 * time.Millisecond

// Server answers the connect(2) calls its listener reports.
type Server struct {
	cfg     netconf.Config
	netns   unix.Stat_t // the container's network namespace: only its sockets are taken
	lfd     int         // the seccomp listener
	stop    int         // an eventfd: Close's word to serve
	closing atomic.Bool
	served  chan struct{} // closed when serve returns
	wg      sync.WaitGroup
	// bypassed counts the connections given host sockets (tests).
	bypassed atomic.Int64
	warn     func(format string, a ...any)
	failMu   sync.Mutex
	failed   error // the first call refused to rl (Failed)
	// ports, with published TCP ports, takes the workload's accept(2)
	// calls too (ports.go); nil: none are reported.
	ports *Ports
}

// Start serves listener, the seccomp listener of a container's workload
// (which Start owns from now on), for the container whose network
// namespace netns is (an open /proc/PID/ns/net, which the caller keeps),
// until Close or until no process uses the filter any more. ports, unless
// nil, are the published TCP ports whose clients the workload's accept(2)
// calls are given (the filter reports those calls). warn reports, once,
// that calls cannot be taken (a sandbox around rl that forbids reading the
// caller: they then take the container's network).
func Start(listener *os.File, netns *os.File, cfg netconf.Config, ports *Ports, warn func(format string, a ...any)) (*Server, error) {
	defer listener.Close()
	s := &Server{cfg: cfg, served: make(chan struct{}), warn: warn, ports: ports}
	if err := unix.Fstat(int(netns.Fd()), &s.netns); err != nil {
		return nil, fmt.Errorf("bypass: the container's network namespace: %w", err)
	}
	var err error
	if s.lfd, err = unix.FcntlInt(listener.Fd(), unix.F_DUPFD_CLOEXEC, 0); err != nil {
		return nil, fmt.Errorf("bypass: the seccomp listener: %w", err)
	}
	if s.stop, err = unix.Eventfd(0, unix.EFD_CLOEXEC); err != nil {
		unix.Close(s.lfd)
		return nil, fmt.Errorf("bypass: %w", err)
	}
	// The caller sleeps while we answer: wake us on its CPU, as a hand-off
	// (Linux 6.6; older kernels refuse the flag, which changes nothing).
	flags := uint64(unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	_ = ioctl(uintptr(s.lfd), unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, unsafe.Pointer(&flags))
	go s.serve()
	return s, nil
}

// Close stops serving and waits for the calls under way; a workload still
// running then gets ENOSYS from connect(2) (the kernel's answer when
// nobody listens).
func (s *Server) Close() {
	if s.closing.Swap(true) {
		return
	}
	one := [8]byte{1}
	_, _ = unix.Write(s.stop, one[:])
	<-s.served
	s.wg.Wait()
	unix.Close(s.lfd)
	unix.Close(s.stop)
}

// CloseWhenDone closes s (Close) once no process uses its filter any more,
// for a server nobody else closes.
func (s *Server) CloseWhenDone() {
	go func() {
		<-s.served
		s.Close()
	}()
}

// Bypassed is how many connections got host sockets so far.
func (s *Server) Bypassed() int { return int(s.bypassed.Load()) }

// serve takes each notification on a thread of its own, which the kernel
// wakes, and answers it there, but for a blocking caller whose host
// handshake is under way (answer). (Through Go's poller
// and a goroutine per call, a connect that goes on as made took 62-87 us
// in a container, against 14 without the filter; on this thread 37-66.)
func (s *Server) serve() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(s.served)
	p := []unix.PollFd{{Fd: int32(s.lfd), Events: unix.POLLIN}, {Fd: int32(s.stop), Events: unix.POLLIN}}
	for {
		p[0].Revents, p[1].Revents = 0, 0
		if _, err := unix.Poll(p, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		if p[1].Revents != 0 {
			return // Close
		}
		if p[0].Revents&unix.POLLIN == 0 {
			if p[0].Revents != 0 {
				return // POLLHUP: no process uses the filter any more
			}
			continue
		}
		var req notif // zeroed, as the kernel wants
		if err := ioctl(uintptr(s.lfd), unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&req)); err != nil {
			if err == unix.ENOENT || err == unix.EINTR {
				continue // the caller went away before we took its call
			}
			if s.warn != nil {
				s.warn("network option bypass=true: the seccomp listener: %v: the container's connect(2) calls are no longer answered", err)
			}
			return
		}
		if req.Nr == unix.SYS_ACCEPT || req.Nr == unix.SYS_ACCEPT4 {
			if s.ports == nil {
				s.reply(req.ID, 0, true)
			} else {
				s.takeAccept(&req)
			}
		} else if d, ok := s.read(&req); !ok {
			s.reply(req.ID, 0, true)
		} else {
			s.answer(&req, d)
		}
	}
}

// answer takes one call read and sends the answer, here, but for a
// blocking caller whose host handshake is still under way: that one waits
// on a goroutine of its own. (A goroutine for every call took a blocking
// connect to the host's loopback 0.54 ms, BenchmarkConnect; here 0.35-0.40
// ms, with 9 context switches instead of 14.)
//
// A caller with many descriptors (more than inlineFiles: its epoll sets are
// looked for among them all) is taken on a goroutine from the start, so
// that one process's large table does not hold up the calls of others.
func (s *Server) answer(req *notif, d dial) {
	t, errno, cont := s.connect(req, d, true)
	if errno == errLater || t != nil && t.err == unix.EINPROGRESS && !t.nonblock && !ready(t.hs, unix.POLLOUT) {
		r := *req
		s.wg.Add(1)
		go func(t *taking, errno unix.Errno, cont bool) {
			defer s.wg.Done()
			if errno == errLater {
				t, errno, cont = s.connect(&r, d, false)
			}
			s.settle(&r, t, errno, cont)
		}(t, errno, cont)
		return
	}
	s.settle(req, t, errno, cont)
}

// settle finishes t, when connect took the call, and sends the answer.
func (s *Server) settle(req *notif, t *taking, errno unix.Errno, cont bool) {
	if t != nil {
		errno, cont = s.finish(req, t)
	}
	s.send(req, errno, cont)
}

// inlineFiles is the most descriptors a caller may have for its connect to
// be taken on the serving thread.
const inlineFiles = 256

// send answers req, unless the call is over (errGone): nobody to answer.
func (s *Server) send(req *notif, errno unix.Errno, cont bool) {
	if errno != errGone {
		s.reply(req.ID, errno, cont)
	}
}

// ready says whether fd has one of events now.
func ready(fd int, events int16) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: events}}
	n, err := unix.Poll(p, 0)
	return err == nil && n > 0
}

// reply answers call id: go on as made (cont), or return errno (0:
// success). ENOENT (the caller was interrupted meanwhile) is no matter.
func (s *Server) reply(id uint64, errno unix.Errno, cont bool) {
	s.replyVal(id, 0, errno, cont)
}

// replyVal is reply with the call's result val when errno is 0.
func (s *Server) replyVal(id uint64, val int64, errno unix.Errno, cont bool) {
	resp := notifResp{ID: id, Val: val}
	if cont {
		resp.Flags = unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE
	} else {
		resp.Error = -int32(errno)
	}
	_ = s.ioctl(unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp))
}

// dial is a connect(2) the policy would have dialled from the host.
type dial struct {
	fd     int            // the caller's socket
	dst    netip.AddrPort // where it connects
	target netip.AddrPort // where the host connects for it
}

// read reads a call's arguments and the address it connects to, and says
// whether it is one to take further (the NAT would dial dst).
func (s *Server) read(req *notif) (dial, bool) {
	if req.Nr != unix.SYS_CONNECT {
		return dial{}, false
	}
	fd := int(int32(req.Args[0]))
	size := int(uint32(req.Args[2]))
	if fd < 0 || size < 2 || size > 128 {
		return dial{}, false // the kernel answers that
	}
	addr := make([]byte, size)
	if !s.peek(req, uintptr(req.Args[1]), addr) {
		return dial{}, false
	}
	dst, ok := sockaddrAddr(addr)
	if !ok {
		return dial{}, false
	}
	target, ok := s.cfg.HostTarget(dst)
	return dial{fd, dst, target}, ok
}

// errGone stands for a call that ended while we looked at it; errLater
// for one connect leaves to a goroutine (answer).
const (
	errGone  = unix.Errno(^uintptr(0))
	errLater = unix.Errno(^uintptr(1))
)

// taking is a connect(2) being taken: the caller's thread (a pidfd) and
// descriptor, our copy of its socket, and the host socket connecting for
// it, with the host connect's result so far.
type taking struct {
	fd, pidfd, orig, hs int
	nonblock, cloexec   bool
	err                 error
}

func (t *taking) close() {
	unix.Close(t.pidfd)
	unix.Close(t.orig)
	unix.Close(t.hs)
}

// connect handles one connect(2) read as far as the host's connect: a
// taking to finish, or, for one not taken, its answer: cont lets it go on
// as made; otherwise errno is its result. inline (on the serving thread)
// it gives errLater, before doing anything, for a caller with more than
// inlineFiles descriptors.
func (s *Server) connect(req *notif, d dial, inline bool) (taken *taking, errno unix.Errno, cont bool) {
	fd, dst, target := d.fd, d.dst, d.target
	t := &taking{fd: fd, pidfd: -1, orig: -1, hs: -1}
	defer func() {
		if taken == nil {
			t.close()
		}
	}()
	var err error
	if t.pidfd, err = openThread(int(req.Pid)); err != nil {
		s.denied("pidfd_open", err)
		return nil, 0, true
	}
	if t.orig, err = unix.PidfdGetfd(t.pidfd, fd, 0); err != nil {
		s.denied("pidfd_getfd", err)
		return nil, 0, true
	}
	// What was read belongs to the caller only if its call still waits
	// (its pid could otherwise be another process's by now).
	if !s.valid(req.ID) {
		return nil, errGone, false
	}
	domain, ok := s.takeable(t.orig, dst)
	if !ok {
		return nil, 0, true
	}
	// The caller's descriptor table, through the thread's /proc entry.
	files, err := openProcFiles(int(req.Pid))
	if err != nil {
		return nil, 0, true
	}
	defer files.Close()
	names, err := files.names()
	if err != nil {
		return nil, 0, true
	}
	if inline && len(names) > inlineFiles {
		return nil, errLater, false
	}
	if files.inEpollSet(names, t.orig) {
		return nil, 0, true
	}
	flags, err := unix.FcntlInt(uintptr(t.orig), unix.F_GETFL, 0)
	if err != nil {
		return nil, 0, true
	}
	t.nonblock = flags&unix.O_NONBLOCK != 0
	t.cloexec = files.cloexec(fd)

	if t.hs, err = unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP); err != nil {
		return nil, 0, true
	}
	copyOptions(t.orig, t.hs, domain)
	if l := s.cfg.LocalFor(target.Addr()); l.IsValid() {
		if err := unix.Bind(t.hs, sockaddr(domain, netip.AddrPortFrom(l, 0))); err != nil {
			return nil, errnoOf(err), false
		}
	}
	t.err = unix.Connect(t.hs, sockaddr(domain, target))
	return t, 0, false
}

// finish waits, for a blocking caller, for the host's handshake, and puts
// the host socket in the caller's place: the call's answer, as connect's.
func (s *Server) finish(req *notif, t *taking) (errno unix.Errno, cont bool) {
	defer t.close()
	err := t.err
	if err == unix.EINPROGRESS && !t.nonblock {
		err = s.wait(req.ID, t.hs, t.orig)
	}
	if err != nil && err != unix.EINPROGRESS {
		return errnoOf(err), false
	}
	if !t.nonblock {
		if e := unix.SetNonblock(t.hs, false); e != nil {
			return 0, true
		}
	}
	// The descriptor must still be the socket we looked at: another
	// thread of the workload may have closed it meanwhile.
	if !sameFile(t.pidfd, t.fd, t.orig) {
		return 0, true
	}
	add := notifAddfd{ID: req.ID, Flags: unix.SECCOMP_ADDFD_FLAG_SETFD, Srcfd: uint32(t.hs), Newfd: uint32(t.fd)}
	if t.cloexec {
		add.NewfdFlags = unix.O_CLOEXEC
	}
	if e := s.ioctl(unix.SECCOMP_IOCTL_NOTIF_ADDFD, unsafe.Pointer(&add)); e != nil {
		if e == unix.ENOENT {
			return errGone, false
		}
		s.unavailable("SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9)", e)
		return 0, true
	}
	s.bypassed.Add(1)
	return errnoOf(err), false
}

// takeable says whether orig (the workload's socket, our copy) is one to
// give a host socket for a connect to dst, and its family: a TCP socket of
// the container's network namespace, of dst's family, not bound to a port
// or device, not yet connecting, without TCP Fast Open's connect.
func (s *Server) takeable(orig int, dst netip.AddrPort) (int, bool) {
	domain, err := unix.GetsockoptInt(orig, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil || (domain != unix.AF_INET && domain != unix.AF_INET6) || (domain == unix.AF_INET) != dst.Addr().Is4() {
		return 0, false
	}
	if t, err := unix.GetsockoptInt(orig, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || t != unix.SOCK_STREAM {
		return 0, false
	}
	if p, err := unix.GetsockoptInt(orig, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || p != unix.IPPROTO_TCP {
		return 0, false
	}
	if !s.ours(orig) {
		return 0, false // a host socket (ours, from an earlier connect) or another namespace's
	}
	if info, err := unix.GetsockoptTCPInfo(orig, unix.IPPROTO_TCP, unix.TCP_INFO); err != nil || info.State != tcpClose {
		return 0, false
	}
	sa, err := unix.Getsockname(orig)
	if err != nil {
		return 0, false
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		if a.Port != 0 || a.Addr != [4]byte{} {
			return 0, false
		}
	case *unix.SockaddrInet6:
		if a.Port != 0 || a.Addr != [16]byte{} {
			return 0, false
		}
	default:
		return 0, false
	}
	if dev, err := unix.GetsockoptString(orig, unix.SOL_SOCKET, unix.SO_BINDTODEVICE); err == nil && dev != "" {
		return 0, false
	}
	if v, err := unix.GetsockoptInt(orig, unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT); err == nil && v != 0 {
		return 0, false
	}
	return domain, true
}

// ours says whether socket fd is of the container's network namespace.
func (s *Server) ours(fd int) bool {
	nsfd, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
	if err != nil {
		return false
	}
	var st unix.Stat_t
	err = unix.Fstat(nsfd, &st)
	unix.Close(nsfd)
	return err == nil && st.Ino == s.netns.Ino && st.Dev == s.netns.Dev
}

// tcpClose is TCP_CLOSE, a socket neither connecting nor connected.
const tcpClose = 7

// wait waits for a connect under way on hs for a caller that blocks, as
// long as the call lasts; the workload's send timeout (SO_SNDTIMEO, which
// bounds a blocking connect) ends it with EINPROGRESS, as the kernel does.
func (s *Server) wait(id uint64, hs, orig int) error {
	if err := s.waitFor(id, hs, unix.POLLOUT, timeout(orig, unix.SO_SNDTIMEO)); err != nil {
		if err == unix.EAGAIN {
			return unix.EINPROGRESS
		}
		return err
	}
	v, err := unix.GetsockoptInt(hs, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return unix.Errno(v)
	}
	return nil
}

// timeout is the deadline socket option opt of fd sets from now (zero:
// none).
func timeout(fd, opt int) time.Time {
	if tv, err := unix.GetsockoptTimeval(fd, unix.SOL_SOCKET, opt); err == nil && (tv.Sec != 0 || tv.Usec != 0) {
		return time.Now().Add(time.Duration(tv.Nano()))
	}
	return time.Time{}
}

// waitFor waits until fd has one of events, as long as call id lasts:
// errGone when it ended (a signal) or the server closes, EAGAIN at
// deadline (zero: none).
func (s *Server) waitFor(id uint64, fd int, events int16, deadline time.Time) error {
	for {
		step := waitStep
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return unix.EAGAIN
			}
			step = min(step, left)
		}
		p := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(p, int(step.Milliseconds())+1)
		if err != nil && err != unix.EINTR {
			return err
		}
		if n > 0 {
			return nil
		}
		if s.closing.Load() || !s.valid(id) {
			return errGone
		}
	}
}

// intOptions are the socket options carried from the workload's socket to
// its host socket, where they differ (IP_TOS for IPv4, the IPv6 ones for
// IPv6). Buffer sizes are not: setting one stops the kernel's tuning of it,
// and the workload's cannot tell whether it set them.
var intOptions = []struct{ level, opt, domain int }{
	{unix.SOL_SOCKET, unix.SO_REUSEADDR, 0},
	{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0},
	{unix.SOL_SOCKET, unix.SO_OOBINLINE, 0},
	{unix.SOL_SOCKET, unix.SO_PRIORITY, 0},
	{unix.IPPROTO_TCP, unix.TCP_NODELAY, 0},
	{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 0},
	{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 0},
	{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 0},
	{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 0},
	{unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, 0},
	{unix.IPPROTO_TCP, unix.TCP_CORK, 0},
	{unix.IPPROTO_IP, unix.IP_TOS, unix.AF_INET},
	{unix.IPPROTO_IPV6, unix.IPV6_TCLASS, unix.AF_INET6},
	{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, unix.AF_INET6},
}

// copyOptions sets on hs what the workload set on orig before connecting.
// A value the host refuses (a priority that needs CAP_NET_ADMIN) is left.
func copyOptions(orig, hs, domain int) {
	for _, o := range intOptions {
		if o.domain != 0 && o.domain != domain {
			continue
		}
		v, err := unix.GetsockoptInt(orig, o.level, o.opt)
		if err != nil {
			continue
		}
		if cur, err := unix.GetsockoptInt(hs, o.level, o.opt); err == nil && cur == v {
			continue
		}
		_ = unix.SetsockoptInt(hs, o.level, o.opt, v)
	}
	if l, err := unix.GetsockoptLinger(orig, unix.SOL_SOCKET, unix.SO_LINGER); err == nil && l.Onoff != 0 {
		_ = unix.SetsockoptLinger(hs, unix.SOL_SOCKET, unix.SO_LINGER, l)
	}
	for _, opt := range []int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO} {
		if tv, err := unix.GetsockoptTimeval(orig, unix.SOL_SOCKET, opt); err == nil && (tv.Sec != 0 || tv.Usec != 0) {
			_ = unix.SetsockoptTimeval(hs, unix.SOL_SOCKET, opt, tv)
		}
	}
}

// sockaddrAddr reads a struct sockaddr_in or sockaddr_in6 (not a scoped,
// link-local IPv6 address, which names an interface of the container).
func sockaddrAddr(b []byte) (netip.AddrPort, bool) {
	family := binary.NativeEndian.Uint16(b)
	switch {
	case family == unix.AF_INET && len(b) >= unix.SizeofSockaddrInet4:
		a := netip.AddrFrom4([4]byte(b[4:8]))
		return netip.AddrPortFrom(a, binary.BigEndian.Uint16(b[2:4])), true
	case family == unix.AF_INET6 && len(b) >= 24: // SIN6_LEN_RFC2133: no scope id
		a := netip.AddrFrom16([16]byte(b[8:24]))
		if len(b) >= unix.SizeofSockaddrInet6 && binary.NativeEndian.Uint32(b[24:28]) != 0 || a.IsLinkLocalUnicast() {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(a, binary.BigEndian.Uint16(b[2:4])), true
	}
	return netip.AddrPort{}, false
}

// sockaddr is a of domain's family (an IPv4 address in an AF_INET6
// socket's: v4-mapped).
func sockaddr(domain int, a netip.AddrPort) unix.Sockaddr {
	if domain == unix.AF_INET {
		return &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
}

// pidfdThread is PIDFD_THREAD (Linux 6.9): a pidfd of a thread.
const pidfdThread = unix.O_EXCL

// openThread is a pidfd for thread tid, whose descriptor table it names
// (pidfd_getfd): the thread's own since Linux 6.9 (PIDFD_THREAD), its
// process's before.
func openThread(tid int) (int, error) {
	fd, err := unix.PidfdOpen(tid, pidfdThread)
	if err == unix.EINVAL {
		fd, err = unix.PidfdOpen(threadGroup(tid), 0)
	}
	return fd, err
}

// threadGroup is the process of thread tid (the notification names the
// calling thread; pidfd_open wants a process before Linux 6.9).
func threadGroup(tid int) int {
	f, err := os.Open("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return tid
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Tgid:"); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return n
			}
		}
	}
	return tid
}

// procFiles is a thread's /proc/TID/fd and /proc/TID/fdinfo (its
// descriptor table's), opened once for one call's lookups: names relative
// to them spare procfs the walk to the thread for each file.
type procFiles struct{ fd, fdinfo int }

func openProcFiles(tid int) (procFiles, error) {
	base := "/proc/" + strconv.Itoa(tid)
	fd, err := unix.Open(base+"/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return procFiles{}, err
	}
	info, err := unix.Open(base+"/fdinfo", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		return procFiles{}, err
	}
	return procFiles{fd, info}, nil
}

func (p procFiles) Close() {
	unix.Close(p.fd)
	unix.Close(p.fdinfo)
}

// info is the fdinfo of descriptor name.
func (p procFiles) info(name string) ([]byte, error) {
	f, err := unix.Openat(p.fdinfo, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(f)
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(f, buf)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

// names are the table's descriptors (their numbers).
func (p procFiles) names() ([]string, error) {
	dents := make([]byte, 8192)
	var names []string
	for {
		n, err := unix.ReadDirent(p.fd, dents)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(dents[:n], -1, names)
	}
}

// cloexec says whether descriptor fd is close-on-exec (its fdinfo's flags,
// in octal).
func (p procFiles) cloexec(fd int) bool {
	b, err := p.info(strconv.Itoa(fd))
	if err != nil {
		return true
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "flags:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return err != nil || n&unix.O_CLOEXEC != 0
		}
	}
	return true
}

// inEpollSet says whether the socket orig is a copy of is in one of the
// epoll sets among the table's descriptors names (their fdinfo names each watched file by its inode):
// a program that watches a socket before connecting it (nginx does) would
// go on watching the socket it made, which would be no longer its
// descriptor's, and never hear of the host socket; such a connect takes
// the stack.
func (p procFiles) inEpollSet(names []string, orig int) bool {
	var st unix.Stat_t
	if unix.Fstat(orig, &st) != nil {
		return true
	}
	// The inode alone (sdev is the kernel's encoding of the device): another
	// file of the same number elsewhere only makes the connect take the stack.
	want := fmt.Sprintf(" ino:%x sdev:", st.Ino)
	const epoll = "anon_inode:[eventpoll]"
	link := make([]byte, len(epoll)+1)
	for _, name := range names {
		if n, err := unix.Readlinkat(p.fd, name, link); err != nil || string(link[:n]) != epoll {
			continue
		}
		b, err := p.info(name)
		if err != nil {
			return true
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "tfd:") && strings.Contains(line, want) {
				return true
			}
		}
	}
	return false
}

// sameFile says whether fd of pidfd's process is still the socket orig is
// a copy of (sockets have an inode each).
func sameFile(pidfd, fd, orig int) bool {
	again, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return false
	}
	defer unix.Close(again)
	var a, b unix.Stat_t
	return unix.Fstat(again, &a) == nil && unix.Fstat(orig, &b) == nil && a.Ino == b.Ino && a.Dev == b.Dev
}

// denied reports call refused to rl itself (EPERM, ENOSYS: a seccomp
// profile or an old kernel around rl), not a caller that went away.
func (s *Server) denied(call string, err error) {
	if err == unix.EPERM || err == unix.ENOSYS {
		s.unavailable(call, err)
	}
}

// unavailable records that call failed with err, so that connections
// cannot be taken, and warns about the first such failure.
func (s *Server) unavailable(call string, err error) {
	s.failMu.Lock()
	first := s.failed == nil
	if first {
		s.failed = fmt.Errorf("%s: %w", call, err)
	}
	s.failMu.Unlock()
	if first {
		s.ports.Degrade()
	}
	if first && s.warn != nil {
		s.warn("network option bypass=true: %s: %v (a seccomp profile or kernel around rl forbids it): the container's connections take the user-mode network; rl doctor names the fix", call, err)
	}
}

// Failed is the first failure that kept a connection from being taken
// (a call refused to rl), or nil.
func (s *Server) Failed() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.failed
}

// valid says whether call id still waits for its answer.
func (s *Server) valid(id uint64) bool {
	return s.ioctl(unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) == nil
}

// ioctl runs an ioctl on the listener (which Close closes only once the
// calls under way are answered).
func (s *Server) ioctl(req uint, arg unsafe.Pointer) error {
	return ioctl(uintptr(s.lfd), req, arg)
}

// ioctlRet is ioctl with the call's result.
func (s *Server) ioctlRet(req uint, arg unsafe.Pointer) (int, error) {
	return ioctlRet(uintptr(s.lfd), req, arg)
}

func ioctl(fd uintptr, req uint, arg unsafe.Pointer) error {
	_, err := ioctlRet(fd, req, arg)
	return err
}

func ioctlRet(fd uintptr, req uint, arg unsafe.Pointer) (int, error) {
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
}

// errnoOf is err's errno (EIO for another error).
func errnoOf(err error) unix.Errno {
	if err == nil {
		return 0
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}
