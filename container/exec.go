package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"github.com/rlcontainers/rl/container/caps"
	"github.com/rlcontainers/rl/container/ctl"
	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/container/tty"
	"golang.org/x/sys/unix"
)

// namespaces an exec joins, in order: the mount namespace last, since
// entering it changes the root that /proc/PID/ns paths resolve against.
// The user namespace is the supervisor's own (the container shares it).
var execNamespaces = []struct {
	name string
	flag int
}{
	{"ipc", unix.CLONE_NEWIPC},
	{"uts", unix.CLONE_NEWUTS},
	{"net", unix.CLONE_NEWNET},
	{"cgroup", unix.CLONE_NEWCGROUP},
	{"pid", unix.CLONE_NEWPID},
	{"mnt", unix.CLONE_NEWNS},
}

// exec runs an rl exec request (docs/process-model.md): the process is
// forked by the supervisor from a thread that joined the workload's
// namespaces, so no rl binary ever runs inside the container. It answers
// {Started} (with the pty master for -t), then {Done, Code} on exit.
func (s *supervisor) exec(c *ctl.Conn, e *ctl.Exec, files []*os.File) {
	defer closeAll(files)
	if e == nil || len(e.Args) == 0 {
		c.Send(done(ExitRlError, errors.New("exec: no command")))
		return
	}
	stdio, preserved, err := execFiles(e, files)
	if err != nil {
		c.Send(done(ExitRlError, err))
		return
	}
	cmd, master, err := s.startExec(e, stdio, preserved)
	if err != nil {
		c.Send(done(0, err))
		return
	}
	started := ctl.Response{Started: true, Pid: cmd.Process.Pid}
	if master != nil {
		started.HasFile = true
		err = c.Send(started, master)
		master.Close()
	} else {
		err = c.Send(started)
	}
	if e.Detach {
		go cmd.Wait()
		c.Send(ctl.Response{Done: true})
		return
	}
	// Forward the client's signals while the process runs.
	go relaySignals(c, func(sig syscall.Signal) { _ = cmd.Process.Signal(sig) })
	code := exitCodeOf(cmd.Wait())
	c.Send(ctl.Response{Done: true, Code: code})
}

// execFiles splits an exec request's files into its stdio (none with a
// terminal) and its --preserve-fds files.
func execFiles(e *ctl.Exec, files []*os.File) (stdio, preserved []*os.File, err error) {
	n := 3
	if e.TTY {
		n = 0
	}
	if e.Preserve < 0 || len(files) != n+e.Preserve {
		return nil, nil, fmt.Errorf("exec: the request carries %d descriptors, not %d for stdio and %d preserved: rl and the container's supervisor come from different builds; restart the container with this rl", len(files), n, e.Preserve)
	}
	return files[:n], files[n:], nil
}

// startExec forks the process on a thread of its own that joined the
// container's namespaces. The thread is never unlocked: Go ends it with
// its goroutine, so no other goroutine runs in those namespaces.
func (s *supervisor) startExec(e *ctl.Exec, files, preserved []*os.File) (*exec.Cmd, *os.File, error) {
	if s.rec.UserNS == "keep-id" {
		return s.startExecNested(e, files, preserved)
	}
	type result struct {
		cmd    *exec.Cmd
		master *os.File
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		cmd, master, err := s.startExecLocked(e, files, preserved)
		ch <- result{cmd, master, err}
	}()
	r := <-ch
	return r.cmd, r.master, r.err
}

func (s *supervisor) startExecLocked(e *ctl.Exec, files, preserved []*os.File) (*exec.Cmd, *os.File, error) {
	// setns(CLONE_NEWNS) needs a thread whose fs struct is its own.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return nil, nil, fmt.Errorf("exec: unshare(CLONE_FS): %w", err)
	}
	for _, ns := range execNamespaces {
		if err := joinNamespace(s.proc.Pid, ns.name, ns.flag); err != nil {
			return nil, nil, err
		}
	}
	// Now / is the container's root and the paths below are its own.
	userSpec := e.User
	if userSpec == "" {
		userSpec = s.rec.User
	}
	eu, err := initproc.ResolveUser(userSpec)
	if err != nil {
		return nil, nil, err
	}
	// The exec'd process gets the container's seccomp filter,
	// capabilities and no_new_privs: all are the forking thread's to pass
	// on. The filters go first, while the thread has CAP_SYS_ADMIN; with
	// bypass=true the connect filter before the container's, its listener
	// (in this process) served from the fork on.
	listener := s.execConnectFilter()
	defer func() {
		if listener >= 0 {
			unix.Close(listener)
		}
	}()
	if err := initproc.InstallSeccomp(s.seccomp); err != nil {
		return nil, nil, err
	}
	if err := caps.Bound(recordCaps(s.rec)); err != nil {
		return nil, nil, err
	}
	if err := caps.Limit(recordCaps(s.rec)); err != nil {
		return nil, nil, err
	}
	if s.rec.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return nil, nil, err
		}
	}
	if s.rt.SingleID && (eu.Uid != 0 || eu.Gid != 0) {
		return nil, nil, fmt.Errorf("exec as uid %d gid %d: only id 0 is mapped in rl's user namespace (no /etc/subuid range for you): add ranges to /etc/subuid and /etc/subgid, or exec as root", eu.Uid, eu.Gid)
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts) // this thread's UTS namespace: the container's
	env := containerEnv(s.rec, unix.ByteSliceToString(uts.Nodename[:]))
	if e.TTY && !s.rec.TTY {
		env = append(env, "TERM="+termName())
	}
	env = initproc.Environ(append(env, e.Env...), eu.Home)
	path, err := initproc.LookPath(e.Args[0], env)
	if err != nil {
		return nil, nil, &ExitError{Code: initproc.ExitNotFound, Err: err}
	}
	if err := initproc.RefuseSelf(path, ownBinary); err != nil {
		return nil, nil, &ExitError{Code: initproc.ExitCannotExecute, Err: err}
	}
	dir := e.Workdir
	if dir == "" {
		dir = s.rec.Workdir
	}
	if dir == "" {
		dir = "/"
	}
	cmd := &exec.Cmd{Path: path, Args: e.Args, Env: env, Dir: dir, ExtraFiles: preserved}
	cred := &syscall.Credential{Uid: uint32(eu.Uid), Gid: uint32(eu.Gid)}
	for _, g := range eu.Sgids {
		cred.Groups = append(cred.Groups, uint32(g))
	}
	// With a single-ID map setgroups is refused (user_namespaces(7)). (This
	// thread's /proc is the container's now: ask the runtime, not /proc.)
	cred.NoSetGroups = s.rt.SingleID
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: cred}
	var master *os.File
	if e.TTY {
		m, slave, err := tty.OpenPty("/dev/ptmx")
		if err != nil {
			return nil, nil, fmt.Errorf("exec: opening a pty in the container: %w", err)
		}
		defer slave.Close()
		master = m
		if e.Cols > 0 && e.Rows > 0 {
			_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: e.Cols, Row: e.Rows})
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 0
	} else {
		if len(files) != 3 {
			return nil, nil, fmt.Errorf("exec: %d stdio files, want 3", len(files))
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = files[0], files[1], files[2]
	}
	if err := cmd.Start(); err != nil {
		if master != nil {
			master.Close()
		}
		code, err := initproc.ExecError(e.Args[0], unwrapExec(err))
		if errors.Is(err, unix.ENOENT) || code == initproc.ExitNotFound {
			return nil, nil, &ExitError{Code: code, Err: err}
		}
		if pe := (*os.PathError)(nil); errors.As(err, &pe) && pe.Op == "chdir" {
			return nil, nil, fmt.Errorf("exec: workdir %s: %v", dir, pe.Err)
		}
		return nil, nil, &ExitError{Code: code, Err: err}
	}
	if listener >= 0 {
		s.net.serveExec(os.NewFile(uintptr(listener), "connect listener"), s.proc.Pid)
		listener = -1
	}
	return cmd, master, nil
}

// execConnectFilter installs, with bypass=true, the connect filter on the
// calling thread, which forks an rl exec process, and returns its listener
// (for network.serveExec once the fork is done), or -1: no bypass, or a
// filter that cannot be installed (a warning; the process takes the stack).
func (s *supervisor) execConnectFilter() int {
	if !s.net.bypassing() {
		return -1
	}
	fd, err := initproc.InstallConnectNotify(s.net.handingPorts())
	if err != nil {
		s.rt.warn("network option bypass=true: %v: the exec'd process's connections take the user-mode network; rl doctor names the fix", err)
		return -1
	}
	return fd
}

// joinNamespace enters the workload's namespace of the given kind, unless
// this thread is in it already (a container sharing the host's network:
// setns into one's own namespace is harmless, but needs no work).
func joinNamespace(pid int, name string, flag int) error {
	target := fmt.Sprintf("/proc/%d/ns/%s", pid, name)
	theirs, err := os.Readlink(target)
	if err != nil {
		return fmt.Errorf("exec: the container has exited (%v)", err)
	}
	if ours, err := os.Readlink("/proc/thread-self/ns/" + name); err == nil && ours == theirs {
		return nil
	}
	fd, err := unix.Open(target, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("exec: opening %s: %w", target, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, flag); err != nil {
		return fmt.Errorf("exec: joining the container's %s namespace: %w", name, err)
	}
	return nil
}

func unwrapExec(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Op != "chdir" {
		return pe.Err
	}
	return err
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// startExecNested runs an exec in a container with a user namespace of
// its own (--userns keep-id). A multithreaded Go process cannot enter a
// user namespace (setns(2): EINVAL), so util-linux's nsenter, a
// single-threaded C program, enters them all and execs the command; while
// it runs, /proc/PID/exe names a root-owned file the container cannot
// overwrite. The user, environment and pty are found from a thread that
// joined the container's mount and UTS namespaces.
func (s *supervisor) startExecNested(e *ctl.Exec, files, preserved []*os.File) (*exec.Cmd, *os.File, error) {
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return nil, nil, errors.New("exec into a --userns keep-id container needs nsenter (util-linux), which is not installed")
	}
	type prepared struct {
		uid, gid      int
		env           []string
		dir           string
		master, slave *os.File
		err           error
	}
	ch := make(chan prepared, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		var p prepared
		defer func() { ch <- p }()
		if p.err = unix.Unshare(unix.CLONE_FS); p.err != nil {
			return
		}
		for _, ns := range []struct {
			name string
			flag int
		}{{"uts", unix.CLONE_NEWUTS}, {"mnt", unix.CLONE_NEWNS}} {
			if p.err = joinNamespace(s.proc.Pid, ns.name, ns.flag); p.err != nil {
				return
			}
		}
		userSpec := e.User
		if userSpec == "" {
			userSpec = s.rec.User
		}
		eu, err := initproc.ResolveUser(userSpec)
		if err != nil {
			p.err = err
			return
		}
		p.uid, p.gid = eu.Uid, eu.Gid
		var uts unix.Utsname
		_ = unix.Uname(&uts)
		env := containerEnv(s.rec, unix.ByteSliceToString(uts.Nodename[:]))
		p.env = initproc.Environ(append(env, e.Env...), eu.Home)
		if _, err := initproc.LookPath(e.Args[0], p.env); err != nil {
			p.err = &ExitError{Code: initproc.ExitNotFound, Err: err}
			return
		}
		p.dir = e.Workdir
		if p.dir == "" {
			p.dir = s.rec.Workdir
		}
		if p.dir == "" {
			p.dir = "/"
		}
		if e.TTY {
			if p.master, p.slave, err = tty.OpenPty("/dev/ptmx"); err != nil {
				p.err = fmt.Errorf("exec: opening a pty in the container: %w", err)
			}
		}
	}()
	p := <-ch
	if p.err != nil {
		return nil, nil, p.err
	}
	pid := fmt.Sprint(s.proc.Pid)
	ids := []string{"--setuid", fmt.Sprint(p.uid), "--setgid", fmt.Sprint(p.gid)}
	if u := keepID(s.rt.Plan); !u.setgroups {
		// A single-ID namespace denies setgroups, which nsenter's --setgid
		// calls; the one id mapped in the container's is the user's, which
		// nsenter's own credentials become there.
		if p.uid != u.uid || p.gid != u.gid {
			if p.slave != nil {
				p.master.Close()
				p.slave.Close()
			}
			return nil, nil, fmt.Errorf("exec as uid %d gid %d: only your own ids (%d:%d) are mapped in this --userns keep-id container (no /etc/subuid range for you): add ranges to /etc/subuid and /etc/subgid, or exec as yourself", p.uid, p.gid, u.uid, u.gid)
		}
		ids = []string{"--preserve-credentials"}
	}
	args := append([]string{"nsenter", "--target", pid, "--user", "--mount", "--pid", "--net", "--ipc", "--uts", "--cgroup"},
		append(ids, "--wd="+p.dir, "--")...)
	// nsenter leaves fds 3 on open for the command it execs.
	cmd := &exec.Cmd{Path: nsenter, Args: append(args, e.Args...), Env: p.env, ExtraFiles: preserved}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if p.slave != nil {
		defer p.slave.Close()
		if e.Cols > 0 && e.Rows > 0 {
			_ = unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: e.Cols, Row: e.Rows})
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
		cmd.SysProcAttr.Setctty = true
	} else {
		if len(files) != 3 {
			return nil, nil, fmt.Errorf("exec: %d stdio files, want 3", len(files))
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = files[0], files[1], files[2]
	}
	// Fork from a thread whose bounding set is the container's: entering
	// the user namespace gives nsenter every capability, bounded by it.
	// The thread's seccomp filter and no_new_privs are the container's
	// too, which nsenter passes on, but for setns(2), which nsenter needs
	// and moby's profile allows only with CAP_SYS_ADMIN (the command still
	// needs that capability in the container's namespace to enter any).
	// With bypass=true the thread installs the connect filter first,
	// served from the fork on.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := caps.Bound(recordCaps(s.rec)); err != nil {
			errc <- err
			return
		}
		listener := s.execConnectFilter()
		err := initproc.InstallSeccomp(initproc.AllowingFirst(s.seccomp, unix.SYS_SETNS))
		if err == nil && s.rec.NoNewPrivs {
			err = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
		}
		if err == nil {
			err = cmd.Start()
		}
		if listener >= 0 {
			if err == nil {
				s.net.serveExec(os.NewFile(uintptr(listener), "connect listener"), s.proc.Pid)
			} else {
				unix.Close(listener)
			}
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		if p.master != nil {
			p.master.Close()
		}
		return nil, nil, fmt.Errorf("exec: starting nsenter: %w", err)
	}
	return cmd, p.master, nil
}

// ownBinary is this process's executable (rl-core), as found before any
// namespace was joined: between fork and exec it is the child's
// /proc/self/exe, so a command naming it is refused (initproc.RefuseSelf).
var ownBinary, _ = os.Stat("/proc/self/exe")
