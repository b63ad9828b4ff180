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
		timeout := time.Duration(req.Timeout) * time.Second
		if req.Timeout < 0 {
			timeout = 0
		}
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
		for {
			var req ctl.Request
			fs, err := c.Recv(&req)
			closeAll(fs)
			if err != nil {
				return
			}
			if req.Op == ctl.OpSignal && req.Signal > 0 {
				sigs <- syscall.Signal(req.Signal)
			}
		}
	}()
	code, err := userns.Spawn(userns.Options{
		Plan: *s.rt.Plan, Path: "/proc/self/exe", Args: r.Args, Env: r.Env,
		Stdin: files[0], Stdout: files[1], Stderr: files[2], Signals: sigs,
	})
	c.Send(done(code, err))
}
