package initproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/moby/sys/user"
	"github.com/rlcontainers/rl/container/caps"
	"github.com/rlcontainers/rl/container/tty"
	"github.com/rlcontainers/rl/internal/fds"
	"github.com/rlcontainers/rl/internal/trace"
	"github.com/rlcontainers/rl/netstack/link"
	"github.com/rlcontainers/rl/rootfs/mounts"
	"golang.org/x/sys/unix"
)

// IsInit reports whether this rl process was started as a container's init.
func IsInit() bool { return len(os.Args) > 1 && os.Args[1] == Arg }

// Init runs in the container's new namespaces, as root of rl's user
// namespace. It receives the Spec, builds the container's view (mounts,
// hostname, lo, pivot_root, user, workdir) and execs the workload. It
// returns only when that failed, after sending the one error report to the
// supervisor; the caller exits with the returned code.
func Init() int {
	// The container is built on this thread; the workload is exec'd from
	// another (startExecThread).
	runtime.LockOSThread()
	// Die with the supervisor (the workload keeps this across execve).
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return ExitRlError
	}
	unix.CloseOnExec(socketFd)
	buf := make([]byte, 1<<20)
	// The network first: the supervisor sends what it needs at the clone,
	// and the spec only once the container is created and mounted, so
	// the network is set up in that wait.
	n, err := unix.Read(socketFd, buf)
	if err != nil || n == 0 {
		return ExitRlError
	}
	var ns NetworkSpec
	if err := ns.UnmarshalBinary(buf[:n]); err != nil {
		return report(ExitRlError, fmt.Errorf("container init: decoding the network spec: %w", err))
	}
	if err := setupNetwork(ns); err != nil {
		return report(ExitRlError, err)
	}
	trace.Mark("init: network set up")
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(socketFd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n == 0 {
		return ExitRlError
	}
	tree, err := rootfsTree(oob[:oobn])
	if err != nil {
		return report(ExitRlError, err)
	}
	var spec Spec
	if err := spec.UnmarshalBinary(buf[:n]); err != nil {
		return report(ExitRlError, fmt.Errorf("container init: decoding the spec: %w", err))
	}
	trace.Mark("init: spec received")
	code, err := initContainer(&spec, tree)
	return report(code, err)
}

// rootfsTree is the fd that may come with the spec: the container's rootfs
// as a detached mount tree (open_tree(2) OPEN_TREE_CLONE in the supervisor,
// which mounted it after this init was cloned), or -1: none came (the
// kernel has no open_tree; the rootfs was mounted before this clone).
func rootfsTree(oob []byte) (int, error) {
	if len(oob) == 0 {
		return -1, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err == nil && len(msgs) == 1 {
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err == nil && len(fds) == 1 {
			return fds[0], nil
		}
	}
	return -1, errors.New("container init: a malformed control message came with the spec")
}

func report(code int, err error) int {
	msg, _ := json.Marshal(InitError{Message: err.Error(), Code: code})
	_ = unix.Sendmsg(socketFd, msg, nil, nil, 0)
	return code
}

func initContainer(spec *Spec, tree int) (int, error) {
	execT := startExecThread(spec)
	// The mount namespace was cloned from the supervisor's; its mounts are
	// peers of ours until made private, and ours would show up there.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return ExitRlError, fmt.Errorf("making mounts private: %w", err)
	}
	// The rootfs tree is attached at its path (a mount point, as
	// pivot_root needs, also for vfs's plain directory). Without a tree the
	// rootfs is in our copy of the supervisor's namespace: bound on itself.
	if tree >= 0 {
		err := unix.MoveMount(tree, "", unix.AT_FDCWD, spec.Rootfs, unix.MOVE_MOUNT_F_EMPTY_PATH)
		unix.Close(tree)
		if err != nil {
			return ExitRlError, fmt.Errorf("attaching the rootfs at %s: move_mount: %w", spec.Rootfs, err)
		}
	} else if err := unix.Mount(spec.Rootfs, spec.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return ExitRlError, fmt.Errorf("bind-mounting the rootfs: %w", err)
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return ExitRlError, fmt.Errorf("setting the hostname: %w", err)
		}
	}
	if err := mounts.Apply(spec.Rootfs, spec.Mounts); err != nil {
		return ExitRlError, err
	}
	trace.Mark("init: mounts applied")
	var term *os.File
	if spec.Terminal {
		var err error
		if term, err = openPty(spec.Rootfs); err != nil {
			return ExitRlError, err
		}
	}
	if _, err := unix.Setsid(); err != nil {
		return ExitRlError, fmt.Errorf("setsid: %w", err)
	}
	if term != nil {
		if err := unix.IoctlSetInt(int(term.Fd()), unix.TIOCSCTTY, 0); err != nil {
			return ExitRlError, fmt.Errorf("setting the controlling terminal: %w", err)
		}
		for fd := 0; fd < 3; fd++ {
			if err := unix.Dup2(int(term.Fd()), fd); err != nil {
				return ExitRlError, fmt.Errorf("dup2 tty: %w", err)
			}
		}
		term.Close()
	}
	if err := mounts.PivotRoot(spec.Rootfs); err != nil {
		return ExitRlError, err
	}
	trace.Mark("init: pivoted")
	return execT.exec(func() (int, error) { return execWorkload(spec) })
}

// execThread is the thread the workload is exec'd from. It starts with the
// init and, while the main thread builds the container, sets up what is
// per thread and the workload inherits from the thread that execs: the
// parent-death signal, the bounding set and the seccomp filter (the
// kernel's checking and compiling of moby's profile is ~0.5 ms, which no
// longer waits for the mounts). The filter allows what the thread does
// after it (execWorkload: setresuid, capset, prctl, close_range, execve).
type execThread struct {
	run  chan func() (int, error)
	done chan execResult
}

type execResult struct {
	code int
	err  error
}

func startExecThread(spec *Spec) *execThread {
	t := &execThread{run: make(chan func() (int, error)), done: make(chan execResult, 1)}
	go func() {
		// Never unlocked: the workload is exec'd from this thread, or
		// the thread ends with its goroutine (Go does not reuse it).
		runtime.LockOSThread()
		err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
		// Bound first: dropping from the bounding set needs CAP_SETPCAP,
		// which a non-root user loses at setresuid.
		if err == nil {
			err = caps.Bound(spec.Caps)
		}
		// Installed while the thread still has CAP_SYS_ADMIN, which a
		// non-root user is about to lose; the connect filter first (the
		// container's may not allow seccomp(2)).
		if err == nil && spec.ConnectNotify {
			err = sendConnectNotify(spec.AcceptNotify)
		}
		if err == nil {
			err = InstallSeccomp(spec.Seccomp)
		}
		f := <-t.run
		if err != nil {
			t.done <- execResult{ExitRlError, err}
			return
		}
		code, err := f()
		t.done <- execResult{code, err}
	}()
	return t
}

// exec runs f, which execs the workload, on the thread: it returns only
// when that (or the thread's set-up) failed.
func (t *execThread) exec(f func() (int, error)) (int, error) {
	t.run <- f
	r := <-t.done
	return r.code, r.err
}

// sendConnectNotify installs the connect filter and sends its listener to
// the supervisor. A filter that cannot be installed is a warning (the
// workload's connections take the container's network); one whose
// listener cannot be sent is an error, since every connect(2) would then
// fail (ENOSYS).
func sendConnectNotify(accept bool) error {
	fd, err := InstallConnectNotify(accept)
	if err != nil {
		msg := MsgWarn + "network option bypass=true: " + err.Error() + ": the container's connections take the user-mode network; rl doctor names the fix"
		_ = unix.Sendmsg(socketFd, []byte(msg), nil, nil, 0)
		return nil
	}
	err = unix.Sendmsg(socketFd, []byte(MsgConnect), unix.UnixRights(fd), nil, 0)
	// Not the workload's to keep: it would answer its own calls.
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("sending the connect filter's listener to the supervisor: %w", err)
	}
	return nil
}

// setupNetwork gives a new network namespace lo, and for user-mode
// networking a TAP whose fd goes to the supervisor, which runs the stack on
// it. A shared network namespace (host, another container's) is left alone.
func setupNetwork(ns NetworkSpec) error {
	if ns.Shared {
		return nil
	}
	link.AllowPing()
	if ns.Link == nil {
		return link.LoopbackUp()
	}
	fd, err := link.SetupGuest(*ns.Link)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Sendmsg(socketFd, []byte(MsgTap), unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("sending the TAP to the supervisor: %w", err)
	}
	return nil
}

// openPty opens a pty pair in the container's own devpts and hands the
// master to the supervisor, so /dev/pts/0 inside is the container's.
func openPty(root string) (*os.File, error) {
	master, slave, err := tty.OpenPty(filepath.Join(root, "dev/pts/ptmx"))
	if err != nil {
		return nil, fmt.Errorf("opening a pty in the container's /dev/pts: %w", err)
	}
	defer master.Close()
	if err := unix.Sendmsg(socketFd, []byte(MsgPty), unix.UnixRights(int(master.Fd())), nil, 0); err != nil {
		slave.Close()
		return nil, fmt.Errorf("sending the pty to the supervisor: %w", err)
	}
	return slave, nil
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// execWorkload runs after pivot_root: it resolves the user against the
// image's files, enters the workdir, drops to the user and execs (the
// --init reaper first, when asked).
func execWorkload(spec *Spec) (int, error) {
	eu, err := ResolveUser(spec.User)
	if err != nil {
		return ExitRlError, err
	}
	env := Environ(spec.Env, eu.Home)
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return ExitRlError, fmt.Errorf("workdir %s cannot be created: %v: choose another -w/--workdir", cwd, unwrapPathError(err))
	}
	if err := unix.Chdir(cwd); err != nil {
		return ExitRlError, fmt.Errorf("workdir %s: %w: choose another -w/--workdir", cwd, err)
	}
	// The bounding set and the seccomp filter are the thread's already
	// (startExecThread).
	if err := setCredentials(eu); err != nil {
		return ExitRlError, err
	}
	if len(spec.Args) == 0 {
		return ExitRlError, errors.New("no command: the image sets no Entrypoint or Cmd; give one after the image name")
	}
	path, err := LookPath(spec.Args[0], env)
	if err != nil {
		return ExitNotFound, err
	}
	self, _ := os.Stat("/proc/self/exe")
	if err := RefuseSelf(path, self); err != nil {
		return ExitCannotExecute, err
	}
	// With --userns keep-id the init ran on ambient capabilities; the
	// workload must not inherit them.
	if err := dropInheritable(); err != nil {
		return ExitRlError, err
	}
	if eu.Uid == 0 {
		if err := caps.Limit(spec.Caps); err != nil {
			return ExitRlError, err
		}
	}
	// Only 0-2 (and --preserve-fds') reach the workload: every other
	// descriptor closes at exec (the reaper's memfd too, once exec'd
	// through /proc/self/fd).
	if err := placePreserved(spec); err != nil {
		return ExitRlError, err
	}
	if err := fds.CloseOnExecFrom(3 + int(spec.Preserve)); err != nil {
		return ExitRlError, err
	}
	// A change of user cleared the parent-death signal (the kernel does at
	// every change of euid, egid or a gain of capabilities): set again, so
	// that the workload still dies with its supervisor. Best effort: a
	// --security-opt seccomp profile may deny prctl(2), and rl's commands
	// end a workload that outlives its supervisor (rootfs.ReadState).
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	if spec.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return ExitRlError, fmt.Errorf("setting no_new_privs: %w", err)
		}
	}
	if spec.Reaper > 0 {
		// rl itself from the sealed memfd the supervisor passed, as PID 1.
		err = unix.Exec(fmt.Sprintf("/proc/self/fd/%d", spec.Reaper), append([]string{"rl-init", ReaperArg, path}, spec.Args...), env)
		return ExitRlError, fmt.Errorf("starting the --init reaper: %w", err)
	}
	err = unix.Exec(path, spec.Args, env)
	return ExecError(spec.Args[0], err)
}

// ExecError is the exit code and message of a failed execve, as docker
// reports them: 127 when the file (or its interpreter) is missing, 126
// when it cannot be executed.
func ExecError(name string, err error) (int, error) {
	if errors.Is(err, unix.ENOENT) {
		return ExitNotFound, fmt.Errorf("%s: no such file or directory (a missing interpreter or dynamic loader?)", name)
	}
	return ExitCannotExecute, fmt.Errorf("%s: %w", name, err)
}

// ResolveUser resolves a docker --user spec against the container's
// /etc/passwd and /etc/group (the caller is in the container's root).
func ResolveUser(spec string) (*user.ExecUser, error) {
	eu, err := user.GetExecUserPath(spec, &user.ExecUser{Uid: 0, Gid: 0, Home: "/"}, "/etc/passwd", "/etc/group")
	if err != nil {
		return nil, fmt.Errorf("user %q: %v: use a numeric uid[:gid] or a user the image defines in /etc/passwd", spec, err)
	}
	return eu, nil
}

// Environ is a workload's environment: env with each variable once, at
// its first place with its last value (-e over the image's, exec's -e over
// the container's, as docker merges them: a C program's getenv takes the
// first of two), completed with PATH and HOME when unset.
func Environ(env []string, home string) []string {
	env = MergeEnv(env)
	if lookupEnv(env, "PATH") == "" {
		env = append(env, defaultPath)
	}
	if lookupEnv(env, "HOME") == "" {
		env = append(env, "HOME="+home)
	}
	return env
}

func setCredentials(eu *user.ExecUser) error {
	if eu.Uid == 0 && eu.Gid == 0 && len(eu.Sgids) == 0 {
		return nil
	}
	// With a single-ID map setgroups is denied (user_namespaces(7)); the
	// only group there is 0 anyway.
	if b, err := os.ReadFile("/proc/self/setgroups"); err != nil || strings.TrimSpace(string(b)) != "deny" {
		if err := syscall.Setgroups(eu.Sgids); err != nil {
			return fmt.Errorf("setting supplementary groups %v: %w", eu.Sgids, err)
		}
	}
	if err := syscall.Setresgid(eu.Gid, eu.Gid, eu.Gid); err != nil {
		return fmt.Errorf("switching to gid %d: %w%s", eu.Gid, err, unmappedHint(err))
	}
	if err := syscall.Setresuid(eu.Uid, eu.Uid, eu.Uid); err != nil {
		return fmt.Errorf("switching to uid %d: %w%s", eu.Uid, err, unmappedHint(err))
	}
	return nil
}

func unmappedHint(err error) string {
	if errors.Is(err, unix.EINVAL) {
		return ": the id is not mapped in rl's user namespace (single-ID map); add a range for your user to /etc/subuid and /etc/subgid"
	}
	return ""
}

// MergeEnv is env (KEY=VALUE entries) with each KEY once: at its first
// place, with its last value.
func MergeEnv(env []string) []string {
	out := make([]string, 0, len(env)+2)
	at := make(map[string]int, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := at[k]; ok {
			out[i] = kv
			continue
		}
		at[k] = len(out)
		out = append(out, kv)
	}
	return out
}

func lookupEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// LookPath searches the container's PATH (from env, not rl's) for the
// command; the caller is in the container's root.
func LookPath(file string, env []string) (string, error) {
	path := lookupEnv(env, "PATH")
	if strings.Contains(file, "/") {
		if _, err := os.Stat(file); err != nil {
			return "", fmt.Errorf("%s: %v", file, unwrapPathError(err))
		}
		return file, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: executable file not found in $PATH", file)
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// dropInheritable clears the ambient and inheritable capability sets, which
// the init may have needed (ambient ones carry a non-root init through
// exec, --userns keep-id) but the workload must not get.
func dropInheritable() error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clearing inheritable capabilities: %w", err)
	}
	return nil
}

// RefuseSelf refuses to exec path when it is self, rl's own binary (the
// caller's /proc/self/exe): an image whose entrypoint is /proc/self/exe, or
// a symlink to it, would run rl's file on the host, which the user owns and
// so container root could rewrite (CVE-2019-5736).
//
// Only a path that leads through /proc is refused: there the magic link
// reaches the file on the host's own (writable) mount. rl bound into a
// container read-only (rl in rl) runs from that read-only mount, which a
// reopen for writing cannot get around.
func RefuseSelf(path string, self os.FileInfo) error {
	if self == nil || !throughProc(path) {
		return nil
	}
	if got, err := os.Stat(path); err == nil && os.SameFile(got, self) {
		return fmt.Errorf("%s is rl's own binary on the host: refusing to run it in the container (CVE-2019-5736)", path)
	}
	return nil
}

// throughProc reports whether path, or a symlink it leads through, is
// under /proc.
func throughProc(path string) bool {
	for i := 0; i < 40; i++ {
		if path == "/proc" || strings.HasPrefix(path, "/proc/") {
			return true
		}
		target, err := os.Readlink(path)
		if err != nil {
			return false
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = filepath.Clean(target)
	}
	return true // a symlink loop: refuse rather than guess
}

// socketFd is the init's end of the supervisor's socket: SocketFd, until
// placePreserved moves it out of the way.
var socketFd = SocketFd

// placePreserved puts the --preserve-fds descriptors at 3, 4, ... for the
// workload. What sits there first (the supervisor's socket, the reaper's
// memfd) moves above them, close-on-exec; the sources are above their
// targets, so copying upwards from 3 never overwrites one still to copy.
func placePreserved(spec *Spec) error {
	n := spec.Preserve
	if n == 0 {
		return nil
	}
	if spec.PreserveFrom <= 3 {
		return fmt.Errorf("container init: preserved fds from %d: not above 3", spec.PreserveFrom)
	}
	above := spec.PreserveFrom + n
	moved, err := unix.FcntlInt(uintptr(socketFd), unix.F_DUPFD_CLOEXEC, above)
	if err != nil {
		return fmt.Errorf("moving the supervisor's socket: %w", err)
	}
	socketFd = moved
	if spec.Reaper > 0 {
		if spec.Reaper, err = unix.FcntlInt(uintptr(spec.Reaper), unix.F_DUPFD_CLOEXEC, above); err != nil {
			return fmt.Errorf("moving the reaper: %w", err)
		}
	}
	for i := 0; i < n; i++ {
		if err := unix.Dup2(spec.PreserveFrom+i, 3+i); err != nil {
			return fmt.Errorf("--preserve-fds: placing fd %d: %w", 3+i, err)
		}
	}
	return nil
}
