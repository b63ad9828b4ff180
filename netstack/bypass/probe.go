package bypass

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/netstack/netconf"
	"golang.org/x/sys/unix"
)

// Probe tries bypass=true's whole path in this process, as rl doctor's
// check, which runs in rl's user namespace as a supervisor does: a thread
// of its own enters a network namespace of its own (a container's,
// owned by rl's user namespace), installs the connect filter (under
// no_new_privs) and connects, non-blocking, to the gateway 10.0.2.2; a
// Server for that namespace (allow_host_loopback) answers with a host
// socket to a listener on the host's 127.0.0.1. nil: it works here;
// otherwise what stopped it.
func Probe() error {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	cfg := netconf.DefaultConfig()
	cfg.AllowHostLoopback = true
	result := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread, its namespace and its filter end with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			result <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		ns, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			result <- err
			return
		}
		defer ns.Close()
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			result <- fmt.Errorf("no_new_privs: %w", err)
			return
		}
		fd, err := initproc.InstallConnectNotify(false)
		if err != nil {
			result <- err
			return
		}
		s, err := Start(os.NewFile(uintptr(fd), "probe listener"), ns, cfg, nil, nil)
		if err != nil {
			result <- err
			return
		}
		defer s.Close()
		sock, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			result <- err
			return
		}
		err = unix.Connect(sock, &unix.SockaddrInet4{Port: port, Addr: [4]byte{10, 0, 2, 2}})
		unix.Close(sock)
		switch {
		case s.Bypassed() == 1 && (err == nil || err == unix.EINPROGRESS):
			result <- nil
		case s.Failed() != nil:
			result <- s.Failed()
		case err != nil && err != unix.EINPROGRESS:
			result <- fmt.Errorf("connect: %w", err)
		default:
			result <- errors.New("the connect went on without a host socket")
		}
	}()
	select {
	case err := <-result:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("the connect was not answered in 5 s")
	}
}
