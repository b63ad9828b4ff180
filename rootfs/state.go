package rootfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rlcontainers/rl/userns"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/ioutils"
	"golang.org/x/sys/unix"
)

// State is a container's run state, kept in its directory in the store so
// it survives the run dir (`rl ps -a` after a reboot).
type State struct {
	Status     string    `json:"status"` // created, running, exited
	Pid        int       `json:"pid,omitempty"`
	ExitCode   int       `json:"exitCode"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Supervisor is the rl process that is the workload's parent; its
	// start time (clock ticks since boot, /proc/PID/stat) tells a reused
	// pid apart. With the supervisor gone the container is gone (the
	// workload gets SIGKILL as its parent-death signal).
	Supervisor      int    `json:"supervisor,omitempty"`
	SupervisorStart uint64 `json:"supervisorStart,omitempty"`
	Detached        bool   `json:"detached,omitempty"`
	// Namespaces are the workload's /proc/PID/ns/* links while it runs.
	Namespaces map[string]string `json:"namespaces,omitempty"`
	// Ports are the published ports while it runs ("0.0.0.0:8080->80/tcp").
	Ports []string `json:"ports,omitempty"`
	// RunRoot is the run dir of the supervisor's control socket while it
	// runs: another rl (another XDG_RUNTIME_DIR, after su, in cron) finds
	// the container there.
	RunRoot string `json:"runRoot,omitempty"`
	// SupervisorGone: recorded as running, but the supervisor is gone
	// (ReadState; the status then reads exited).
	SupervisorGone bool `json:"-"`
}

func statePath(store storage.Store, id string) (string, error) {
	dir, err := store.ContainerDirectory(id)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "state.json"), nil
}

// WriteState replaces the container's state atomically.
func WriteState(store storage.Store, id string, st State) error {
	p, err := statePath(store, id)
	if err != nil {
		return err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return ioutils.AtomicWriteFileWithOpts(p, b, 0o600, &ioutils.AtomicFileWriterOptions{NoSync: true})
}

// ReadState reads the container's state; a container that was never
// started is "created". A "running" container whose supervisor is gone
// (killed, or the machine rebooted) reads as exited, code -1 (unknown).
func ReadState(store storage.Store, id string) State {
	st := State{Status: "created"}
	p, err := statePath(store, id)
	if err != nil {
		return st
	}
	if b, err := os.ReadFile(p); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	if st.Status == "running" && !userns.ProcessAlive(st.Supervisor, st.SupervisorStart) {
		// Its lock is free, and its workload ended, by the time this says
		// exited.
		userns.WaitExited(st.Supervisor, st.SupervisorStart, 2*time.Second)
		endOrphan(st.Pid, st.Namespaces)
		st.Status = "exited"
		st.ExitCode = -1
		st.Pid = 0
		st.Namespaces = nil
		st.SupervisorGone = true
	}
	return st
}

// endOrphan ends the workload of a container whose supervisor is gone, so
// that "exited" means nothing of it runs. The supervisor's death sent it
// SIGKILL (its parent-death signal), but the kernel may still be ending it
// (the unmounts of its mount namespace take a while on a busy machine),
// and a workload that changed its user itself (su-exec, setpriv) has lost
// that signal. It is told from a process that took its pid since by the
// namespaces recorded while it ran: killed while it is still in the
// container's mount namespace, and waited for (up to 2 s) while it is the
// container's and has not exited.
func endOrphan(pid int, ns map[string]string) {
	if pid <= 0 || ns["pid"] == "" || ns["mnt"] == "" {
		return
	}
	link := func(kind string) string {
		l, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + kind)
		return l
	}
	if link("mnt") == ns["mnt"] {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	// An exiting process has left its mount namespace (no link) but is
	// still in its pid namespace until it is reaped.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m := link("mnt"); link("pid") != ns["pid"] || (m != "" && m != ns["mnt"]) || !userns.Running(pid) {
			return
		}
	}
}

// ErrLocked means another rl process holds the container (it is running,
// or being started or removed).
var ErrLocked = errors.New("the container is in use by another rl process")

// Lock takes the container's lock (flock on its directory in the store,
// not on a file of its own: one inode less to create and remove per
// container): one rl process at a time starts, supervises or removes a
// container. The supervisor holds it for the container's life, so a held
// lock also means "running"; the kernel drops it when the holder dies, so
// it is never left stale. wait=false fails at once with ErrLocked.
func Lock(store storage.Store, id string, wait bool) (*os.File, error) {
	dir, err := store.ContainerDirectory(id)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	f, err := flockDir(dir, how)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, fmt.Errorf("locking container %s: %w", id[:12], err)
	}
	return f, nil
}

// flockDir opens the directory dir and flocks it (how: LOCK_EX, with
// LOCK_NB or not); closing the file lets go.
func flockDir(dir string, how int) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
