package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/container/tty"
	"github.com/rlcontainers/rl/internal/trace"
	"github.com/rlcontainers/rl/userns"
	"golang.org/x/sys/unix"
)

// Stdio is what the workload reads and writes.
type Stdio struct {
	Stdin          *os.File // nil: /dev/null (no -i)
	Stdout, Stderr *os.File
}

// Process is a started container: its init has exec'd the workload.
type Process struct {
	Pid   int
	cmd   *exec.Cmd
	relay *tty.Relay
	// exited is closed when the thread that forked the init may go (see
	// Start); waited carries cmd.Wait's result.
	exited chan struct{}
	waited chan error
}

// Start runs in the supervisor (root of rl's user namespace, the host's
// network namespace). It clones the container's init in new namespaces,
// sends it the spec over a SOCK_SEQPACKET socketpair and waits for the
// outcome: the socket closing on exec means the workload runs; a message
// means the init failed, and that message is the error (with its exit code
// in an *ExitError). With a terminal the init first sends the pty master,
// relayed to stdio. extra files become the init's fds 4, 5, ...
//
// The init takes SIGKILL as its parent-death signal (initproc.Init), so a
// killed supervisor takes its container along instead of leaving it
// unsupervised. The kernel sends it when the forking *thread* exits, so the
// fork happens on a goroutine locked to its thread until the workload has
// been waited for.
//
// onMsg is called with what else the init sends, and the init's pid, as
// it comes, while the init still sets the container up: the container's
// TAP (initproc.MsgTap, user-mode networking), the connect filter's
// listener (initproc.MsgConnect), each the callee's, or a warning (a kind
// that starts with initproc.MsgWarn, no file).
//
// netSpec goes to the init at once after the clone: it sets up its network
// namespace while specFn runs.
//
// specFn is called once the init is cloned, with its pid, and gives the
// spec and the rootfs as a detached mount tree (open_tree(2)), sent
// together: the init starts (exec, Go's start-up: ~2.5 ms) while the
// caller still creates and mounts the container; once it is sent, the
// workload may run before Start returns. Whatever is mounted after the
// clone the init does not see (its mount namespace is a copy of the
// caller's at the clone); the tree is how the rootfs gets there. A nil
// tree means the rootfs was mounted before this clone. terminal says
// whether the spec will ask for one (the init's stdio is set at the
// clone).
func Start(initPath string, terminal bool, netSpec initproc.NetworkSpec, specFn func(pid int) (*initproc.Spec, *os.File, error), ns *nsPlan, user *userNS, stdio Stdio, onMsg func(kind string, f *os.File, pid int), extra ...*os.File) (*Process, error) {
	type started struct {
		p   *Process
		err error
	}
	ch := make(chan started)
	go func() {
		runtime.LockOSThread()
		// Namespaces of another container are entered by this thread only
		// (the clone inherits them); Go retires a locked thread whose
		// goroutine ends, so they never leak to other goroutines.
		if err := ns.enter(); err != nil {
			ch <- started{nil, err}
			return
		}
		p, err := start(initPath, terminal, netSpec, specFn, ns.flags, user, stdio, onMsg, extra)
		ch <- started{p, err}
		if err != nil {
			return
		}
		// The thread stays until the workload has exited.
		p.waited <- p.cmd.Wait()
		close(p.exited)
	}()
	s := <-ch
	return s.p, s.err
}

func start(initPath string, terminal bool, netSpec initproc.NetworkSpec, specFn func(pid int) (*initproc.Spec, *os.File, error), flags uintptr, user *userNS, stdio Stdio, onMsg func(kind string, f *os.File, pid int), extra []*os.File) (*Process, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	ours := fds[0]
	theirs := os.NewFile(uintptr(fds[1]), "init-socket")
	defer unix.Close(ours)

	cmd := exec.Command(initPath, initproc.Arg)
	cmd.Args[0] = "rl-init"
	// GOMAXPROCS=1: the init's Go runtime would otherwise work its value
	// out from the cgroup's CPU limit (~0.13 ms of its start) and, with
	// more than one P, start threads to run idle Ps that the init's exec
	// must then kill and wait for; its work is system calls on two locked
	// threads, which run side by side all the same (a thread in a system
	// call gives up its P). Measured (paired, 10 %-trimmed means): -0.24
	// +- 0.06 ms against no GOMAXPROCS; GOMAXPROCS=1 against rl-core's
	// value -0.60 +- 0.21 ms of CPU per run and -0.15 +- 0.17 ms of wall
	// time (1500 pairs). The workload gets its own environment, not this.
	cmd.Env = []string{"GOMAXPROCS=1"}
	if trace.On() {
		cmd.Env = append(cmd.Env, "RL_TRACE=1")
	}
	cmd.ExtraFiles = append([]*os.File{theirs}, extra...)
	// No Pdeathsig here: Go's child compares getppid() with the parent's pid
	// and kills itself when they differ, which they do in a joined PID
	// namespace (the parent is outside it: getppid() is 0). The init sets
	// it itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags}
	if user != nil {
		// A nested user namespace: Go writes its maps before the exec;
		// the init execs as the user (not root there), so it keeps its
		// capabilities as ambient ones and drops them before the workload.
		caps, err := userns.AllCaps()
		if err != nil {
			theirs.Close()
			return nil, err
		}
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = user.uids
		cmd.SysProcAttr.GidMappings = user.gids
		cmd.SysProcAttr.GidMappingsEnableSetgroups = user.setgroups
		cmd.SysProcAttr.AmbientCaps = caps
	}
	if !terminal {
		// With a terminal the init replaces these with the pty it opens.
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
	p := &Process{Pid: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{}), waited: make(chan error, 1)}
	msg, err := netSpec.MarshalBinary()
	if err == nil {
		err = unix.Sendmsg(ours, msg, nil, nil, 0)
	}
	if err != nil {
		if _, tree, _ := specFn(p.Pid); tree != nil { // the caller's side of the handshake
			tree.Close()
		}
		return nil, p.abort(fmt.Errorf("sending the network spec to the container init: %w", err))
	}

	spec, tree, err := specFn(p.Pid)
	if err != nil {
		return nil, p.abort(err)
	}
	defer tree.Close()
	if spec.Terminal != terminal {
		return nil, p.abort(fmt.Errorf("container init: the spec's terminal (%v) is not the one it was started for", spec.Terminal))
	}
	if msg, err = spec.MarshalBinary(); err != nil {
		return nil, p.abort(err)
	}
	var rights []byte
	if tree != nil {
		rights = unix.UnixRights(int(tree.Fd()))
	}
	// EPIPE: the init failed setting up its network and left, and its
	// report waits below (ECONNRESET there if it left just after this).
	if err := unix.Sendmsg(ours, msg, rights, nil, 0); err != nil && !errors.Is(err, unix.EPIPE) {
		return nil, p.abort(fmt.Errorf("sending the spec to the container init: %w", err))
	}
	var master *os.File
	ie, err := readInit(ours, func(kind string, f *os.File) {
		switch kind {
		case initproc.MsgPty:
			master = f
		default:
			onMsg(kind, f, p.Pid)
		}
	})
	if err != nil {
		if master != nil {
			master.Close()
		}
		return nil, p.abort(err)
	}
	if ie != nil {
		_ = cmd.Wait()
		if master != nil {
			master.Close()
		}
		return nil, &ExitError{Code: ie.Code, Err: errors.New(ie.Message)}
	}
	if master != nil {
		p.relay = tty.Start(master, stdio.Stdin, stdio.Stdout)
	}
	return p, nil
}

// readInit reads the init's messages on fd until its exec closes the
// socket (EOF): the files it sends (the TAP, the pty master) go to onFile
// with their kind; a failure report ends it, returned as ie.
func readInit(fd int, onFile func(kind string, f *os.File)) (ie *initproc.InitError, err error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	reset := false
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ECONNRESET && !reset {
			// The init left with the spec unread (it failed before it
			// read it: its network), and the kernel says so first, once;
			// its report is still queued behind that.
			reset = true
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading from the container init: %w", err)
		}
		if n == 0 && oobn == 0 {
			if reset {
				return nil, errors.New("the container init exited before it started the workload, without saying why: run rl doctor, which checks what containers need on this machine")
			}
			return nil, nil // close-on-exec: the workload is running
		}
		if oobn > 0 {
			f, err := receivedFile(oob[:oobn])
			if err != nil {
				return nil, err
			}
			onFile(string(buf[:n]), f)
			continue
		}
		if msg := string(buf[:n]); strings.HasPrefix(msg, initproc.MsgWarn) {
			onFile(msg, nil)
			continue
		}
		var report initproc.InitError
		if err := json.Unmarshal(buf[:n], &report); err != nil {
			return nil, fmt.Errorf("container init sent %q", buf[:n])
		}
		return &report, nil
	}
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

// abort kills the init after a failed handshake; when the init had died
// already, its fate goes into the error.
func (p *Process) abort(err error) error {
	_ = p.cmd.Process.Kill()
	if werr := p.cmd.Wait(); werr != nil && !strings.Contains(werr.Error(), "killed") {
		return fmt.Errorf("%w (the container init: %v)", err, werr)
	} else if werr != nil && errors.Is(err, unix.EPIPE) {
		return fmt.Errorf("%w (the container init: %v)", err, werr)
	}
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
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

func cloneHint(err error) string {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) {
		return " (the kernel refused new namespaces for the container)"
	}
	return ""
}

// Signal forwards sig to the workload.
func (p *Process) Signal(sig syscall.Signal) error {
	return unix.Kill(p.Pid, sig)
}

// Wait waits for the workload and returns its exit code, 128+N when killed
// by signal N, as shells report it.
func (p *Process) Wait() int {
	err := <-p.waited
	<-p.exited
	if p.relay != nil {
		p.relay.Finish()
	}
	return exitCodeOf(err)
}

func exitCodeOf(err error) int {
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
