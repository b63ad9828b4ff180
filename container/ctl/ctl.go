// Package ctl is how rl commands reach a running container's supervisor:
// a unix socket in the run dir, served by the supervisor and dialled by the
// host-side rl (rl exec, stop, kill, wait) without opening the store. It
// links only the standard library and x/sys.
//
// Layout under the run dir (private, 0700):
//
//	rl/<id12>/ctl.sock the supervisor's control socket (SOCK_SEQPACKET)
//	rl/<id12>/id       the full container id
//	rl/names/<name>    symlink to ../<id12>, for lookups by name
//
// (12 characters of the id, as docker shows it: a unix socket path must fit
// in 108 bytes.)
//
// Both exist exactly while the supervisor runs: a container with no socket
// is not running.
//
// Protocol: each message is one datagram of JSON; files (stdio, a pty
// master) travel beside it as SCM_RIGHTS. The client sends one Request; the
// supervisor answers with Responses on the same connection until a final
// one (Done). During an exec the client may send further Requests with Op
// "signal" to forward signals.
package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Request ops.
const (
	OpExec   = "exec"   // run a process in the container's namespaces
	OpKill   = "kill"   // send Signal to the workload
	OpStop   = "stop"   // stop signal, then SIGKILL after Timeout seconds; answers on exit
	OpWait   = "wait"   // answer when the workload exits
	OpSignal = "signal" // during an exec or spawn: forward Signal to the process
	OpSpawn  = "spawn"  // run rl-core in the supervisor's user namespace (container:NAME modes)
	OpAttach = "attach" // stream a detached container's output (and input) with the caller's stdio
)

// Request is what a client asks.
type Request struct {
	Op      string        `json:"op"`
	Signal  int           `json:"signal,omitempty"`
	Timeout int           `json:"timeout,omitempty"` // seconds, for stop; < 0: the container's --stop-timeout
	Exec    *Exec         `json:"exec,omitempty"`
	Spawn   *SpawnRequest `json:"spawn,omitempty"`
}

// SpawnRequest asks a supervisor to start rl-core with these arguments in its own
// user namespace, with the files sent beside (stdin, stdout, stderr) as its
// stdio: the supervisor of a container that joins this one's namespaces.
type SpawnRequest struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
}

// Exec is an rl exec: the process to run, and how. Files: with TTY none
// are sent for stdio (the supervisor answers with a pty master); otherwise
// stdin (or /dev/null), stdout and stderr, in that order; then the Preserve
// files (--preserve-fds), the process's fds 3 to 3+Preserve-1.
type Exec struct {
	Args        []string `json:"args"`
	Env         []string `json:"env,omitempty"`
	User        string   `json:"user,omitempty"`
	Workdir     string   `json:"workdir,omitempty"`
	TTY         bool     `json:"tty,omitempty"`
	Interactive bool     `json:"interactive,omitempty"`
	Detach      bool     `json:"detach,omitempty"`
	Cols        uint16   `json:"cols,omitempty"`
	Rows        uint16   `json:"rows,omitempty"`
	Preserve    int      `json:"preserve,omitempty"`
}

// Response is what the supervisor answers. Done marks the last one.
type Response struct {
	Done     bool   `json:"done,omitempty"`
	Error    string `json:"error,omitempty"`
	Code     int    `json:"code"`          // exit code (Done), or the error's exit code
	Pid      int    `json:"pid,omitempty"` // an exec'd process, as the host sees it
	Started  bool   `json:"started,omitempty"`
	HasFile  bool   `json:"hasFile,omitempty"` // a pty master rides along
	TTY      bool   `json:"tty,omitempty"`     // attach: the container has a terminal
	Detached bool   `json:"detached,omitempty"`
	ExitCode *int   `json:"exitCode,omitempty"`
}

// Dir is rl's part of the run dir.
func Dir(runRoot string) string { return filepath.Join(runRoot, "rl") }

func short(id string) string { return id[:min(12, len(id))] }

// SocketPath is a container's control socket.
func SocketPath(runRoot, id string) string {
	return filepath.Join(Dir(runRoot), short(id), "ctl.sock")
}

// fullID reads the full id of the container whose run dir is dir.
func fullID(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "id"))
	return strings.TrimSpace(string(b)), err
}

// ErrNotRunning means no supervisor serves the container (it is stopped,
// or unknown: the store knows which).
var ErrNotRunning = errors.New("not running")

// Resolve finds a running container by name, full id or unique id prefix.
func Resolve(runRoot, ref string) (string, error) {
	dir := Dir(runRoot)
	if ref == "" || strings.ContainsAny(ref, "/\x00") || ref == "." || ref == ".." {
		return "", fmt.Errorf("invalid container reference %q", ref)
	}
	if target, err := os.Readlink(filepath.Join(dir, "names", ref)); err == nil {
		if id, err := fullID(filepath.Join(dir, filepath.Base(target))); err == nil && alive(runRoot, id) {
			return id, nil
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", ErrNotRunning
	}
	var found []string
	for _, e := range entries {
		name := e.Name()
		if name == "names" || !(strings.HasPrefix(name, ref) || strings.HasPrefix(ref, name)) {
			continue
		}
		if id, err := fullID(filepath.Join(dir, name)); err == nil && strings.HasPrefix(id, ref) && alive(runRoot, id) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return "", ErrNotRunning
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("container id prefix %q is ambiguous (%d running containers match): give more characters", ref, len(found))
}

func alive(runRoot, id string) bool {
	_, err := os.Stat(SocketPath(runRoot, id))
	return err == nil
}

// Register publishes a running container: its directory (for the socket)
// and its name. Called by the supervisor before it listens.
func Register(runRoot, id, name string) (string, error) {
	dir := filepath.Join(Dir(runRoot), short(id))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the container's run dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "id"), []byte(id+"\n"), 0o600); err != nil {
		return "", err
	}
	names := filepath.Join(Dir(runRoot), "names")
	if err := os.MkdirAll(names, 0o700); err != nil {
		return "", err
	}
	link := filepath.Join(names, name)
	_ = os.Remove(link) // a stale link of a container that died
	if err := os.Symlink("../"+short(id), link); err != nil {
		return "", fmt.Errorf("naming the container's run dir: %w", err)
	}
	return dir, nil
}

// Unregister removes what Register made.
func Unregister(runRoot, id, name string) {
	link := filepath.Join(Dir(runRoot), "names", name)
	if target, err := os.Readlink(link); err == nil && filepath.Base(target) == short(id) {
		os.Remove(link)
	}
	// Its two files by name, then the directory: os.RemoveAll alone takes
	// three times the calls.
	dir := filepath.Join(Dir(runRoot), short(id))
	os.Remove(SocketPath(runRoot, id))
	os.Remove(filepath.Join(dir, "id"))
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		os.RemoveAll(dir)
	}
}

// Conn is one control connection.
type Conn struct{ fd int }

// Dial connects to a running container's supervisor.
func Dial(runRoot, id string) (*Conn, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: SocketPath(runRoot, id)}); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			return nil, ErrNotRunning
		}
		return nil, fmt.Errorf("connecting to the supervisor of %s: %w", short(id), err)
	}
	return &Conn{fd: fd}, nil
}

// NewConn wraps an accepted socket fd.
func NewConn(fd int) *Conn { return &Conn{fd: fd} }

// Send sends a message with optional files.
func (c *Conn) Send(msg any, files ...*os.File) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	return unix.Sendmsg(c.fd, b, oob, nil, 0)
}

// Recv receives one message into msg and returns the files that came
// with it. io.EOF-like: ErrClosed when the peer is gone.
func (c *Conn) Recv(msg any) ([]*os.File, error) {
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4*8))
	for {
		n, oobn, _, _, err := unix.Recvmsg(c.fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 && oobn == 0 {
			return nil, ErrClosed
		}
		var files []*os.File
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				fds, err := unix.ParseUnixRights(&m)
				if err != nil {
					return nil, err
				}
				for _, fd := range fds {
					files = append(files, os.NewFile(uintptr(fd), "ctl-file"))
				}
			}
		}
		if err := json.Unmarshal(buf[:n], msg); err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("bad control message: %w", err)
		}
		return files, nil
	}
}

// ErrClosed is returned by Recv when the peer closed the connection.
var ErrClosed = errors.New("control connection closed")

// Close closes the connection.
func (c *Conn) Close() error { return unix.Close(c.fd) }

// Listen creates the control socket of a container (after Register).
func Listen(runRoot, id string) (int, error) {
	path := SocketPath(runRoot, id)
	if len(path) >= 108 {
		return -1, fmt.Errorf("the control socket path %s is longer than a unix socket allows (108 bytes): use a shorter --runroot", path)
	}
	_ = os.Remove(path)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("binding %s: %w", path, err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
