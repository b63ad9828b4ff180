package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"github.com/rlcontainers/rl/container/initproc"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Stdio is what the workload reads and writes.
type Stdio struct {
	Stdin          *os.File // nil: /dev/null (no -i)
	Stdout, Stderr *os.File
}

// Process is a started container: its init has exec'd the workload.
type Process struct {
	Pid int
	cmd *exec.Cmd
	pty *os.File
	// ptyOnce closes pty once: on the workload's exit or on a hangup.
	ptyOnce sync.Once
	io      Stdio
	done    chan struct{}
	copy    sync.WaitGroup
}

// CloneFlags are the namespaces a container gets of its own. CLONE_NEWNS
// separates its mounts (pivot_root) from the supervisor's.
const CloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// Start runs in the supervisor (root of rl's user namespace, the host's
// network namespace). It clones the container's init in new namespaces,
// sends it the spec over a SOCK_SEQPACKET socketpair and waits for the
// outcome: the socket closing on exec means the workload runs; a message
// means the init failed, and that message is the error (with its exit code
// in an *ExitError). With a terminal the init first sends the pty master.
func Start(initPath string, spec *initproc.Spec, stdio Stdio) (*Process, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	ours := fds[0]
	theirs := os.NewFile(uintptr(fds[1]), "init-socket")
	defer unix.Close(ours)

	cmd := exec.Command(initPath, initproc.Arg)
	cmd.Args[0] = "rl-init"
	cmd.Env = []string{}
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: CloneFlags}
	if spec.Terminal {
		// The init replaces these with the pty it opens.
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	} else {
		if stdio.Stdin != nil {
			cmd.Stdin = stdio.Stdin
		}
		cmd.Stdout, cmd.Stderr = stdio.Stdout, stdio.Stderr
	}
	if err := cmd.Start(); err != nil {
		theirs.Close()
		return nil, fmt.Errorf("starting the container init: %w%s", err, cloneHint(err))
	}
	theirs.Close()
	p := &Process{Pid: cmd.Process.Pid, cmd: cmd, io: stdio, done: make(chan struct{})}

	msg, err := json.Marshal(spec)
	if err != nil {
		return nil, p.abort(err)
	}
	if err := unix.Sendmsg(ours, msg, nil, nil, 0); err != nil {
		return nil, p.abort(fmt.Errorf("sending the spec to the container init: %w", err))
	}
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(ours, buf, oob, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, p.abort(fmt.Errorf("reading from the container init: %w", err))
		}
		if n == 0 && oobn == 0 {
			break // close-on-exec: the workload is running
		}
		if oobn > 0 {
			f, err := receivedFile(oob[:oobn])
			if err != nil {
				return nil, p.abort(err)
			}
			p.pty = f
			continue
		}
		var ie initproc.InitError
		if err := json.Unmarshal(buf[:n], &ie); err != nil {
			return nil, p.abort(fmt.Errorf("container init sent %q", buf[:n]))
		}
		_ = cmd.Wait()
		if p.pty != nil {
			p.pty.Close()
		}
		return nil, &ExitError{Code: ie.Code, Err: errors.New(ie.Message)}
	}
	if p.pty != nil {
		p.startRelay()
	}
	return p, nil
}

// ExitError is a failure with the exit code rl must leave with.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the code rl exits with.
func (e *ExitError) ExitCode() int { return e.Code }

func (p *Process) abort(err error) error {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	return err
}

func receivedFile(oob []byte) (*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("bad control message from the container init")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("bad fd from the container init")
	}
	unix.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

func cloneHint(err error) string {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) {
		return " (the kernel refused new namespaces for the container)"
	}
	return ""
}

// startRelay copies between the user's terminal and the pty master and
// forwards window-size changes.
func (p *Process) startRelay() {
	if p.io.Stdin != nil {
		if term.IsTerminal(int(p.io.Stdin.Fd())) {
			resize := make(chan os.Signal, 1)
			signal.Notify(resize, unix.SIGWINCH)
			p.resize()
			go func() {
				for {
					select {
					case <-resize:
						p.resize()
					case <-p.done:
						signal.Stop(resize)
						return
					}
				}
			}()
		}
		go p.copyInput()
	} else if term.IsTerminal(int(p.io.Stdout.Fd())) {
		p.resizeFrom(p.io.Stdout)
	}
	p.copy.Add(1)
	go func() {
		defer p.copy.Done()
		// Reading the master ends with EIO once every slave fd is closed.
		_, _ = io.Copy(p.io.Stdout, p.pty)
	}()
}

// copyInput copies the user's input to the pty. When it ends, the workload
// must learn it as a terminal would: a terminal that went away (the window
// closed, ssh dropped) hangs up the pty, so a shell reading it exits; a
// pipe that ended is ^D, end of input at the start of a line.
func (p *Process) copyInput() {
	_, _ = io.Copy(p.pty, p.io.Stdin)
	select {
	case <-p.done:
		return
	default:
	}
	if term.IsTerminal(int(p.io.Stdin.Fd())) {
		p.hangup()
		return
	}
	_, _ = p.pty.Write([]byte{4})
}

// hangup closes the pty master: the kernel hangs up the container's
// terminal (SIGHUP to its session, EOF to its readers).
func (p *Process) hangup() {
	p.ptyOnce.Do(func() { p.pty.Close() })
}

func (p *Process) resize() { p.resizeFrom(p.io.Stdin) }

func (p *Process) resizeFrom(f *os.File) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err == nil {
		_ = unix.IoctlSetWinsize(int(p.pty.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// Signal forwards sig to the workload.
func (p *Process) Signal(sig syscall.Signal) error {
	return unix.Kill(p.Pid, sig)
}

// Wait waits for the workload and returns its exit code, 128+N when killed
// by signal N, as shells report it.
func (p *Process) Wait() int {
	err := p.cmd.Wait()
	p.copy.Wait()
	close(p.done)
	if p.pty != nil {
		p.hangup()
	}
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return initproc.ExitRlError
}
