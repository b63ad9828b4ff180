package container

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/rlcontainers/rl/container/ctl"
	"github.com/rlcontainers/rl/userns"
	"golang.org/x/sys/unix"
)

// serve answers the container's control socket (container/ctl) until the
// supervisor closes it.
func (s *supervisor) serve(lfd int) {
	for {
		fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			return
		}
		s.handlers.Add(1)
		go s.handle(ctl.NewConn(fd))
	}
}

func (s *supervisor) handle(c *ctl.Conn) {
	defer s.handlers.Done()
	defer c.Close()
	var req ctl.Request
	files, err := c.Recv(&req)
	if err != nil {
		return
	}
	switch req.Op {
	case ctl.OpKill:
		closeAll(files)
		err := s.proc.Signal(syscall.Signal(req.Signal))
		if errors.Is(err, unix.ESRCH) {
			err = nil // exiting already
		}
		c.Send(done(0, err))
	case ctl.OpStop:
		closeAll(files)
		secs := req.Timeout
		if secs < 0 { // the container's own --stop-timeout
			secs = s.rec.StopTimeout
			if secs <= 0 {
				secs = 10
			}
		}
		timeout := time.Duration(secs) * time.Second
		s.stop(timeout)
		<-s.exited
		c.Send(done(s.code, nil))
	case ctl.OpWait:
		closeAll(files)
		<-s.exited
		c.Send(done(s.code, nil))
	case ctl.OpExec:
		s.exec(c, req.Exec, files)
	case ctl.OpSpawn:
		s.spawn(c, req.Spawn, files)
	case ctl.OpAttach:
		s.attach(c, files)
	default:
		closeAll(files)
		c.Send(done(ExitRlError, fmt.Errorf("unknown control request %q", req.Op)))
	}
}

func done(code int, err error) ctl.Response {
	r := ctl.Response{Done: true, Code: code}
	if err != nil {
		r.Error = err.Error()
		var ee *ExitError
		if errors.As(err, &ee) {
			r.Code = ee.Code
		} else {
			r.Code = ExitRlError
		}
	}
	return r
}

// spawn starts rl-core in this supervisor's user namespace, for a container
// that joins this one's namespaces (docker's container:NAME modes: joining
// a namespace takes the capabilities of the user namespace that owns it).
// The new supervisor speaks the usual handshake with us as its parent.
func (s *supervisor) spawn(c *ctl.Conn, r *ctl.SpawnRequest, files []*os.File) {
	defer closeAll(files)
	if r == nil || len(r.Args) == 0 || len(files) != 3 || s.rt.Plan == nil {
		c.Send(done(0, errors.New("spawn: malformed request")))
		return
	}
	sigs := make(chan os.Signal, 8)
	go func() {
		defer close(sigs)
		relaySignals(c, func(sig syscall.Signal) { sigs <- sig })
	}()
	code, err := userns.Spawn(userns.Options{
		Plan: *s.rt.Plan, Path: "/proc/self/exe", Args: r.Args, Env: r.Env,
		Stdin: files[0], Stdout: files[1], Stderr: files[2], Signals: sigs,
	})
	c.Send(done(code, err))
}

// attach connects a client to a detached container: its output as it
// comes (files[1], files[2]) and, when the container has -i, its input
// (files[0]), until the container exits (Done with the exit code) or the
// client detaches (ctrl-p ctrl-q with a terminal, or the end of its input).
func (s *supervisor) attach(c *ctl.Conn, files []*os.File) {
	defer closeAll(files)
	if s.logs == nil || len(files) != 3 {
		c.Send(done(0, errors.New("the container runs attached to another terminal already (rl run without -d)")))
		return
	}
	defer s.logs.log.attach("stdout", files[1])()
	defer s.logs.log.attach("stderr", files[2])()
	if err := c.Send(ctl.Response{Started: true, TTY: s.rec.TTY}); err != nil {
		return
	}
	detached := make(chan struct{})
	if s.input != nil {
		go func() {
			// Only the detach keys detach; the end of a piped input
			// leaves the container's stdin open (docker without
			// StdinOnce) and attach waits for the exit.
			if copyDetachable(s.input, files[0], s.rec.TTY) {
				close(detached)
			}
		}()
	}
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		relaySignals(c, func(sig syscall.Signal) { _ = s.proc.Signal(sig) })
	}()
	select {
	case <-s.exited:
		c.Send(done(s.code, nil))
	case <-detached:
		c.Send(ctl.Response{Done: true, Detached: true})
	case <-gone:
	}
}

// relaySignals passes each signal the client sends on c to deliver, until
// the client hangs up (or sends what cannot be read).
func relaySignals(c *ctl.Conn, deliver func(syscall.Signal)) {
	for {
		var req ctl.Request
		fs, err := c.Recv(&req)
		closeAll(fs)
		if err != nil {
			return
		}
		if req.Op == ctl.OpSignal && req.Signal > 0 {
			deliver(syscall.Signal(req.Signal))
		}
	}
}

// copyDetachable copies the client's input to the container's until it
// ends or, with a terminal, until ctrl-p ctrl-q (docker's detach keys,
// which are not passed on; it then returns true).
func copyDetachable(dst, src *os.File, tty bool) bool {
	buf := make([]byte, 32<<10)
	prevCtrlP := false
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if tty {
				for i, b := range chunk {
					if prevCtrlP && b == 0x11 {
						if i > 1 {
							dst.Write(chunk[:i-1])
						}
						return true
					}
					prevCtrlP = b == 0x10
				}
			}
			if _, werr := dst.Write(chunk); werr != nil {
				return false
			}
		}
		if err != nil {
			return false
		}
	}
}
