package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rlcontainers/rl/container/ctl"
	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/internal/trace"
	"github.com/rlcontainers/rl/rootfs"
	"github.com/rlcontainers/rl/userns"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Mode says how the supervisor meets the user.
type Mode struct {
	// Attach gives the workload the user's stdio (rl run, rl start -a);
	// otherwise its output goes to the container's log.
	Attach bool
	// Detached is called, when not attached, once the workload runs: it
	// prints the id and lets the host-side rl return (rl run -d, rl start).
	Detached func(id string) error
	// Preserved become the workload's fds 3, 4, ... (rl run --preserve-fds).
	Preserved []*os.File
}

// supervisor is the state of one supervised container, shared with the
// control connections.
type supervisor struct {
	rt   *Runtime
	id   string
	rec  rootfs.Record
	proc *Process
	// exited is closed once the workload exited and rl let go of the
	// container; code is its exit code then.
	exited   chan struct{}
	code     int
	handlers sync.WaitGroup // control connections still answering
	// seccomp is the workload's filter, which rl exec's processes get too.
	seccomp []initproc.BPF
	// net is the container's network (rl exec's processes get bypass=true's
	// connect filter too).
	net      *network
	stopping sync.Once
	// Of a detached container: its log (and attach's output), and the
	// write end of its stdin (-i), which rl attach feeds.
	logs  *logPipes
	input *os.File
}

// Supervise runs a created container until its workload exits: this
// process is its supervisor (see docs/process-model.md). It returns the
// workload's exit code.
func Supervise(ctx context.Context, rt *Runtime, c *storage.Container, rec rootfs.Record, m Mode) (int, error) {
	_, code, _, err := supervise(ctx, rt, rec, func() (*storage.Container, rootfs.Record, error) { return c, rec, nil }, m)
	return code, err
}

// supervise clones the container's init first, with what proto says of
// its namespaces, stdio and --init (the parts of a record that come from
// the command line alone), and then asks prepare for the container: rl run
// creates it while the init starts. c is prepare's container (nil when it
// failed); started says whether the workload ran.
func supervise(ctx context.Context, rt *Runtime, proto rootfs.Record, prepare func() (*storage.Container, rootfs.Record, error), m Mode) (c *storage.Container, code int, started bool, err error) {
	ns, err := planNamespaces(rt, proto)
	if err != nil {
		return nil, 0, false, err
	}
	defer ns.close()
	s := &supervisor{rt: rt, rec: proto, exited: make(chan struct{})}
	stdio, logs, err := s.stdio(m)
	if err != nil {
		return nil, 0, false, err
	}
	if s.input != nil {
		defer s.input.Close()
	}
	var extra []*os.File
	if proto.Init {
		reaper, err := sealedCopy(rt.InitPath)
		if err != nil {
			logs.close()
			return nil, 0, false, err
		}
		defer reaper.Close()
		extra = append(extra, reaper)
	}
	preserveFrom := initproc.SocketFd + 1 + len(extra) // the init's fd of m.Preserved[0]
	extra = append(extra, m.Preserved...)
	var user *userNS
	if proto.UserNS == "keep-id" {
		user = keepID(rt.Plan)
	}

	// The init sets up its network namespace as it starts, and sends its
	// TAP (user-mode networking); the network takes it once the init is
	// ready (net.start only arms it: rl-net starts on the container's
	// first traffic).
	netSpec, err := guestNetwork(proto)
	if err != nil {
		logs.close()
		return nil, 0, false, err
	}
	var net *network
	var tap, connectListener *os.File
	var tapPid int
	onMsg := func(kind string, f *os.File, pid int) {
		switch {
		case kind == initproc.MsgTap:
			tap, tapPid = f, pid
		case kind == initproc.MsgConnect:
			if connectListener != nil {
				connectListener.Close()
			}
			connectListener = f
		case strings.HasPrefix(kind, initproc.MsgWarn):
			rt.warn("%s", strings.TrimPrefix(kind, initproc.MsgWarn))
		case f != nil:
			f.Close()
		}
	}
	type specMsg struct {
		spec *initproc.Spec
		tree *os.File
		err  error
		// record, called with the init's pid just before the spec goes to
		// it, records the container as running.
		record func(pid int)
	}
	specs := make(chan specMsg, 1)
	type startMsg struct {
		p   *Process
		err error
	}
	starts := make(chan startMsg, 1)
	startInit := func() {
		go func() {
			p, err := Start(rt.InitPath, proto.TTY, netSpec, func(pid int) (*initproc.Spec, *os.File, error) {
				m := <-specs
				if m.err == nil {
					m.record(pid)
				}
				return m.spec, m.tree, m.err
			}, ns, user, stdio, onMsg, extra...)
			starts <- startMsg{p, err}
		}()
	}
	trace.Mark("core: start init")
	startInit()
	// Until the spec is sent, a failure must stop the init (Start kills it
	// when specFn fails).
	stopInit := func(err error) {
		specs <- specMsg{err: err}
		<-starts
	}
	abort := func(err error) error {
		stopInit(err)
		logs.close()
		return err
	}

	c, rec, err := prepare()
	if err != nil {
		return nil, 0, false, abort(err)
	}
	s.id, s.rec = c.ID, rec
	lock, err := rootfs.Lock(rt.Store, c.ID, false)
	if errors.Is(err, rootfs.ErrLocked) {
		err = fmt.Errorf("container %s is running already (or being removed): see rl ps", rec.Name)
	}
	if err != nil {
		return c, 0, false, abort(err)
	}
	defer func() {
		s.release(lock, started)
		s.code = code
		close(s.exited)
		s.waitHandlers()
	}()
	if net, err = prepareNetwork(rec); err != nil {
		return c, 0, false, abort(err)
	}
	net.warn = rt.warn
	s.net = net
	if net.discarded {
		rt.warn("%s", net.discardedWarning())
	}
	defer net.close()
	if m.Attach && rec.TTY && stdio.Stdin != nil && term.IsTerminal(int(stdio.Stdin.Fd())) {
		old, err := term.MakeRaw(int(stdio.Stdin.Fd()))
		if err != nil {
			return c, 0, false, abort(fmt.Errorf("setting the terminal raw: %w", err))
		}
		defer term.Restore(int(stdio.Stdin.Fd()), old)
	}
	if _, err := ctl.Register(rt.RunRoot, c.ID, rec.Name); err != nil {
		return c, 0, false, abort(err)
	}
	defer ctl.Unregister(rt.RunRoot, c.ID, rec.Name)
	lfd, err := ctl.Listen(rt.RunRoot, c.ID)
	if err != nil {
		return c, 0, false, abort(err)
	}
	defer unix.Close(lfd)
	spec, tree, err := s.ready(c, rec, net, ns, logs, m, preserveFrom)
	if errors.Is(err, errNoOpenTree) {
		// No open_tree here (Linux < 5.2, or a seccomp filter without it):
		// the early init cannot get the rootfs. One cloned now has it in
		// its copy of our mount namespace (tree nil: it binds the path).
		stopInit(err)
		startInit()
		err = nil
	}
	if err != nil {
		return c, 0, false, abort(err)
	}

	// The container is recorded as running before the workload can run: a
	// supervisor killed from then on leaves a record that says so (rl ps
	// then removes an --rm container, ReadState). On a failure to start,
	// the state it had is put back.
	var st rootfs.State
	recorded := false
	var prior rootfs.State
	if !rec.AutoRm {
		prior = rootfs.ReadState(rt.Store, c.ID)
	}
	record := func(pid int) {
		self, _ := userns.SelfStartTime()
		st = rootfs.State{
			Status: "running", Pid: pid, StartedAt: time.Now().UTC(),
			Supervisor: os.Getpid(), SupervisorStart: self, Detached: !m.Attach,
			Namespaces: namespaceLinks(pid), Ports: net.ports(), RunRoot: rt.RunRoot,
		}
		if err := rootfs.WriteState(rt.Store, c.ID, st); err != nil {
			rt.warn("recording the start of %s: %v", c.ID[:12], err)
		}
		recorded = true
	}
	specs <- specMsg{spec: spec, tree: tree, record: record}
	r := <-starts
	p, err := r.p, r.err
	trace.Mark("core: init ready")
	if logs != nil && !rec.TTY {
		// The workload holds its ends now. (With a terminal our own pty
		// relay uses them until the workload exits.)
		logs.closeWriters()
	}
	// onMsg ran on Start's goroutine, before Start returned. The network
	// takes the TAP even after a failure (its close closes it); with
	// user-mode networking and no TAP, start fails.
	if netErr := net.start(tap, tapPid); err == nil {
		err = netErr
	}
	if err == nil {
		net.startBypass(connectListener, p.Pid)
	} else if connectListener != nil {
		connectListener.Close()
	}
	if err != nil && p != nil {
		_ = p.Signal(syscall.SIGKILL)
		p.Wait()
	}
	if err != nil {
		if recorded && !rec.AutoRm {
			_ = rootfs.WriteState(rt.Store, c.ID, prior)
		}
		logs.close()
		return c, 0, false, err
	}
	trace.Mark("core: network armed")
	started = true
	s.proc = p
	go s.serve(lfd)
	if !m.Attach && m.Detached != nil {
		if err := m.Detached(c.ID); err != nil {
			rt.warn("detaching: %v", err)
		}
	}
	done := make(chan struct{})
	go s.forwardSignals(done)
	trace.Mark("core: workload running")
	code = p.Wait()
	trace.Mark("core: workload exited")
	close(done)
	logs.close()
	st.Status, st.ExitCode, st.FinishedAt, st.Pid, st.Namespaces, st.Ports, st.RunRoot = "exited", code, time.Now().UTC(), 0, nil, nil, ""
	if !rec.AutoRm {
		if err := rootfs.WriteState(rt.Store, c.ID, st); err != nil {
			rt.warn("recording the exit of %s: %v", c.ID[:12], err)
		}
	}
	return c, code, true, nil
}

// ready prepares the rest of what the init needs once the container
// exists: its log (detached), its rootfs mounted here and cloned as a
// detached tree for the init (errNoOpenTree where the kernel cannot), and
// the spec.
func (s *supervisor) ready(c *storage.Container, rec rootfs.Record, net *network, ns *nsPlan, logs *logPipes, m Mode, preserveFrom int) (*initproc.Spec, *os.File, error) {
	if logs != nil {
		path, err := LogPath(s.rt.Store, c.ID)
		if err == nil {
			err = logs.open(path)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	root, tree, err := mountRootfs(s.rt, c)
	if err != nil {
		return nil, nil, err
	}
	spec, err := buildSpec(s.rt, c, rec, net, ns, root)
	if err != nil {
		if tree != nil {
			tree.Close()
		}
		return nil, nil, err
	}
	if rec.Init {
		spec.Reaper = 4
	}
	if len(m.Preserved) > 0 {
		spec.Preserve, spec.PreserveFrom = len(m.Preserved), preserveFrom
	}
	s.seccomp = spec.Seccomp
	if tree != nil {
		return spec, tree, nil
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, root, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		return spec, nil, errNoOpenTree
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cloning the rootfs mount for the container: open_tree %s: %w", root, err)
	}
	return spec, os.NewFile(uintptr(fd), "rootfs-tree"), nil
}

var errNoOpenTree = errors.New("open_tree(2) is not available")

// release unmounts the container, removes it when it is --rm, and lets go
// of its lock: after this, rl rm and rl start may have it.
func (s *supervisor) release(lock *os.File, started bool) {
	defer lock.Close()
	if s.rec.AutoRm {
		// Deleting unmounts first (one pass over the store, not two).
		err := rootfs.DeleteContainer(s.rt.Store, s.id)
		trace.Mark("core: container deleted")
		if err == nil || errors.Is(err, storage.ErrContainerUnknown) {
			return
		}
		s.rt.warn("removing container %s: %v", s.id[:12], err)
	}
	if err := rootfs.UnmountContainer(s.rt.Store, s.id); err != nil && !errors.Is(err, storage.ErrLayerUnknown) && !errors.Is(err, storage.ErrContainerUnknown) {
		s.rt.warn("unmounting container %s: %v", s.id[:12], err)
	}
	trace.Mark("core: unmounted")
}

// logPipes carry a detached workload's output to its log. The pipes are
// made before the container exists (the init is cloned with them), the log
// is opened once it does (open).
type logPipes struct {
	log     *logWriter
	writers []*os.File          // the workload's ends
	readers map[string]*os.File // stream -> our end, until open
}

func (l *logPipes) open(path string) error {
	lw, err := openLog(path)
	if err != nil {
		return err
	}
	l.log = lw
	for _, stream := range []string{"stdout", "stderr"} {
		lw.copy(stream, l.readers[stream])
	}
	l.readers = nil
	return nil
}

func (l *logPipes) closeWriters() {
	if l == nil {
		return
	}
	for _, w := range l.writers {
		w.Close()
	}
	l.writers = nil
}

func (l *logPipes) close() {
	if l == nil {
		return
	}
	l.closeWriters()
	for _, r := range l.readers {
		r.Close()
	}
	l.readers = nil
	if l.log != nil {
		l.log.close()
	}
}

// stdio is the user's (attached) or pipes into the log (detached).
func (s *supervisor) stdio(m Mode) (Stdio, *logPipes, error) {
	if m.Attach {
		io := s.rt.Stdio
		if !s.rec.Interactive {
			io.Stdin = nil
		}
		return io, nil, nil
	}
	lp := &logPipes{readers: map[string]*os.File{}}
	var io Stdio
	if s.rec.Interactive {
		// The workload's stdin stays open (no EOF) for rl attach to feed.
		r, w, err := os.Pipe()
		if err != nil {
			return Stdio{}, nil, err
		}
		io.Stdin, s.input = r, w
		lp.writers = append(lp.writers, r)
	}
	for _, stream := range []string{"stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			lp.close()
			return Stdio{}, nil, err
		}
		lp.readers[stream] = r
		lp.writers = append(lp.writers, w)
		if stream == "stdout" {
			io.Stdout = w
		} else {
			io.Stderr = w
		}
	}
	s.logs = lp
	return io, lp, nil
}

// LogPath is where a container's log lives (beside its state, in the store).
func LogPath(store storage.Store, id string) (string, error) {
	dir, err := store.ContainerDirectory(id)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "ctr.log"), nil
}

// forwardSignals passes the signals the user sent rl to the workload.
func (s *supervisor) forwardSignals(done <-chan struct{}) {
	for {
		select {
		case sig, ok := <-s.rt.Signals:
			if !ok {
				return
			}
			_ = s.proc.Signal(sig)
		case <-done:
			return
		}
	}
}

// stop sends the stop signal, then SIGKILL after timeout; it returns at once.
func (s *supervisor) stop(timeout time.Duration) {
	s.stopping.Do(func() {
		sig := syscall.SIGTERM
		if s.rec.StopSignal > 0 {
			sig = syscall.Signal(s.rec.StopSignal)
		}
		_ = s.proc.Signal(sig)
		go func() {
			select {
			case <-s.exited:
			case <-time.After(timeout):
				_ = s.proc.Signal(syscall.SIGKILL)
			}
		}()
	})
}

// waitHandlers gives the control connections waiting for the exit a moment
// to answer before the process ends.
func (s *supervisor) waitHandlers() {
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

// namespaceLinks reads /proc/PID/ns/* (what rl inspect shows and rl exec joins).
func namespaceLinks(pid int) map[string]string {
	out := map[string]string{}
	for _, ns := range []string{"cgroup", "ipc", "mnt", "net", "pid", "user", "uts"} {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns)); err == nil {
			out[ns] = l
		}
	}
	return out
}

// sealedCopy copies a binary into a sealed memfd: what a container may
// exec from rl (the --init reaper) must not be the file on disk, which
// belongs to the user and so to container root (CVE-2019-5736).
func sealedCopy(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("rl-reaper", unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "rl-reaper")
	st, err := src.Stat()
	if err == nil {
		_, err = f.ReadFrom(src) // copy_file_range / sendfile in the kernel
	}
	if err == nil && st.Size() == 0 {
		err = errors.New("empty binary")
	}
	if err == nil {
		_, err = unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("copying %s for --init: %w", path, err)
	}
	return f, nil
}
