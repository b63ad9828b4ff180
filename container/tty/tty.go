// Package tty relays between the user's terminal and a container's pty
// master: for rl run -t (in the supervisor) and rl exec -t (in the host-side
// rl, which gets the master over the control socket). It links only the
// standard library, x/sys and x/term.
package tty

import (
	"io"
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Relay copies the user's input to the master and the master's output to
// the user, and keeps the pty's window size that of the user's terminal.
type Relay struct {
	master *os.File
	in     *os.File // nil: no input (no -i)
	out    *os.File
	done   chan struct{}
	output sync.WaitGroup
	once   sync.Once
}

// Start begins relaying; in may be nil.
func Start(master, in, out *os.File) *Relay {
	r := &Relay{master: master, in: in, out: out, done: make(chan struct{})}
	sizeFrom := in
	if sizeFrom == nil || !term.IsTerminal(int(sizeFrom.Fd())) {
		sizeFrom = out
	}
	if term.IsTerminal(int(sizeFrom.Fd())) {
		resize := make(chan os.Signal, 1)
		signal.Notify(resize, unix.SIGWINCH)
		r.resizeFrom(sizeFrom)
		go func() {
			defer signal.Stop(resize)
			for {
				select {
				case <-resize:
					r.resizeFrom(sizeFrom)
				case <-r.done:
					return
				}
			}
		}()
	}
	if in != nil {
		go r.copyInput()
	}
	r.output.Add(1)
	go func() {
		defer r.output.Done()
		// Reading the master ends with EIO once every slave fd is closed.
		_, _ = io.Copy(out, master)
	}()
	return r
}

// copyInput copies the user's input to the pty. When it ends, the workload
// must learn it as a terminal would: a terminal that went away (the window
// closed, ssh dropped) hangs up the pty, so a shell reading it exits; a
// pipe that ended is ^D, end of input at the start of a line.
func (r *Relay) copyInput() {
	_, _ = io.Copy(r.master, r.in)
	select {
	case <-r.done:
		return
	default:
	}
	if term.IsTerminal(int(r.in.Fd())) {
		r.Hangup()
		return
	}
	_, _ = r.master.Write([]byte{4})
}

// Hangup closes the master: the kernel hangs up the container's terminal
// (SIGHUP to its session, EOF to its readers).
func (r *Relay) Hangup() {
	r.once.Do(func() { r.master.Close() })
}

func (r *Relay) resizeFrom(f *os.File) {
	if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(r.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// Finish waits for the output to drain (the workload exited and its pty
// closed) and stops relaying.
func (r *Relay) Finish() {
	r.output.Wait()
	close(r.done)
	r.Hangup()
}

// OpenPty opens a new pty pair from ptmx (a container's /dev/pts/ptmx or
// /dev/ptmx) and returns the master and the slave. TIOCGPTPEER opens the
// slave without a path lookup (linux 4.13), so it is the container's.
func OpenPty(ptmx string) (master, slave *os.File, err error) {
	m, err := unix.Open(ptmx, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, err
	}
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(m)
		return nil, nil, errno
	}
	return os.NewFile(uintptr(m), "pty-master"), os.NewFile(s, "pty-slave"), nil
}
