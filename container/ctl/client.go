package ctl

import (
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/rlcontainers/rl/container/tty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// call sends one request and returns the final response.
func call(runRoot, id string, req Request) (Response, error) {
	c, err := Dial(runRoot, id)
	if err != nil {
		return Response{}, err
	}
	defer c.Close()
	if err := c.Send(req); err != nil {
		return Response{}, err
	}
	for {
		var r Response
		files, err := c.Recv(&r)
		for _, f := range files {
			f.Close()
		}
		if errors.Is(err, ErrClosed) {
			// The supervisor went away before answering: it was killed.
			return Response{}, ErrNotRunning
		}
		if err != nil {
			return Response{}, err
		}
		if r.Done {
			return r, r.err()
		}
	}
}

func (r Response) err() error {
	if r.Error == "" {
		return nil
	}
	return &Error{Msg: r.Error, Code: r.Code}
}

// Error is a failure the supervisor reported, with rl's exit code.
type Error struct {
	Msg  string
	Code int
}

func (e *Error) Error() string { return e.Msg }

// ExitCode is the code rl exits with.
func (e *Error) ExitCode() int { return e.Code }

// Kill sends sig to the container's workload.
func Kill(runRoot, id string, sig syscall.Signal) error {
	_, err := call(runRoot, id, Request{Op: OpKill, Signal: int(sig)})
	return err
}

// Stop sends the stop signal and, after timeout seconds, SIGKILL; it
// returns once the container has exited, with the workload's exit code.
func Stop(runRoot, id string, timeout int) (int, error) {
	r, err := call(runRoot, id, Request{Op: OpStop, Timeout: timeout})
	return r.Code, err
}

// Wait returns the workload's exit code once it exits.
func Wait(runRoot, id string) (int, error) {
	r, err := call(runRoot, id, Request{Op: OpWait})
	return r.Code, err
}

// RunExec runs e in the container with the caller's stdio and returns the
// process's exit code. With TTY the caller's terminal is put in raw mode
// and relayed to a pty the supervisor opened in the container; otherwise
// the caller's own stdin (with Interactive), stdout and stderr are handed
// to the process, so nothing is copied. Signals the caller gets are
// forwarded to the process. preserved become its fds 3, 4, ...
// (--preserve-fds).
func RunExec(runRoot, id string, e Exec, stdin, stdout, stderr *os.File, preserved []*os.File) (int, error) {
	c, err := Dial(runRoot, id)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var files []*os.File
	if !e.TTY {
		null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return 0, err
		}
		defer null.Close()
		in := stdin
		if !e.Interactive || e.Detach {
			in = null
		}
		files = []*os.File{in, stdout, stderr}
		if e.Detach {
			// Output of a detached exec goes nowhere, as docker's: holding
			// the caller's pipes would keep `$(rl exec -d ...)` waiting.
			files = []*os.File{null, null, null}
		}
	} else {
		if ws, err := unix.IoctlGetWinsize(int(stdout.Fd()), unix.TIOCGWINSZ); err == nil {
			e.Cols, e.Rows = ws.Col, ws.Row
		}
		if t := os.Getenv("TERM"); t != "" {
			e.Env = append([]string{"TERM=" + t}, e.Env...)
		}
	}
	e.Preserve = len(preserved)
	files = append(files, preserved...)
	r, err := stream(c, Request{Op: OpExec, Exec: &e}, files, func(r Response, got []*os.File) func() {
		if !r.Started || !r.HasFile || len(got) != 1 {
			return nil
		}
		var in *os.File
		var restore func()
		if e.Interactive {
			in = stdin
			if term.IsTerminal(int(in.Fd())) {
				if old, err := term.MakeRaw(int(in.Fd())); err == nil {
					restore = func() { term.Restore(int(in.Fd()), old) }
				}
			}
		}
		relay := tty.Start(got[0], in, stdout)
		return func() {
			relay.Finish()
			if restore != nil {
				restore()
			}
		}
	})
	return r.Code, err
}

// Spawn runs rl-core in the supervisor's user namespace with the caller's
// stdio (see the Spawn request) and returns its exit code; it returns 0 at
// once when that rl-core detaches (rl run -d).
func Spawn(runRoot, id string, args, env []string, stdin, stdout, stderr *os.File) (int, error) {
	c, err := Dial(runRoot, id)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	r, err := stream(c, Request{Op: OpSpawn, Spawn: &SpawnRequest{Args: args, Env: env}}, []*os.File{stdin, stdout, stderr}, nil)
	return r.Code, err
}

// stream sends a request whose process runs until a final response,
// forwarding the caller's signals meanwhile. started, if set, sees the
// intermediate responses and may return a cleanup to run at the end.
func stream(c *Conn, req Request, files []*os.File, started func(Response, []*os.File) func()) (Response, error) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	if err := c.Send(req, files...); err != nil {
		return Response{}, err
	}
	var cleanups []func()
	defer func() {
		for _, f := range cleanups {
			f()
		}
	}()
	go func() {
		for s := range sigs {
			_ = c.Send(Request{Op: OpSignal, Signal: int(s.(syscall.Signal))})
		}
	}()
	for {
		var r Response
		got, err := c.Recv(&r)
		if errors.Is(err, ErrClosed) {
			return Response{}, ErrNotRunning
		}
		if err != nil {
			return Response{}, err
		}
		if r.Done {
			for _, f := range got {
				f.Close()
			}
			return r, r.err()
		}
		if started != nil {
			if f := started(r, got); f != nil {
				cleanups = append(cleanups, f)
			}
		}
	}
}

// Attach connects the caller's stdio to a detached container until it
// exits (its exit code) or the caller detaches (ctrl-p ctrl-q: detached
// true). With a terminal container the caller's terminal goes raw.
func Attach(runRoot, id string, stdin, stdout, stderr *os.File) (code int, detached bool, err error) {
	c, err := Dial(runRoot, id)
	if err != nil {
		return 0, false, err
	}
	defer c.Close()
	r, err := stream(c, Request{Op: OpAttach}, []*os.File{stdin, stdout, stderr}, func(r Response, _ []*os.File) func() {
		if !r.Started || !r.TTY || !term.IsTerminal(int(stdin.Fd())) {
			return nil
		}
		old, err := term.MakeRaw(int(stdin.Fd()))
		if err != nil {
			return nil
		}
		return func() { term.Restore(int(stdin.Fd()), old) }
	})
	return r.Code, r.Detached, err
}
