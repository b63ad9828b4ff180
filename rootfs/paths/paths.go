// Package paths says where rl keeps its state: the store and the run dir.
// It links nothing but x/sys, so the host-side rl can find a running
// container's control socket without opening the store.
package paths

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Paths are the directories rl keeps its state in.
type Paths struct {
	// Root is the persistent store (images, layers, container records):
	// $XDG_DATA_HOME/rl/storage, by default ~/.local/share/rl/storage.
	Root string
	// RunRoot holds what must vanish on reboot (mount counts, locks):
	// $XDG_RUNTIME_DIR/rl when that directory is usable, else /tmp/rl-UID.
	RunRoot string
	// RunRootReason says why RunRoot was chosen, for rl info.
	RunRootReason string
}

// HostUID is the user's uid on the host. Inside rl's user namespace
// os.Getuid() is 0, so the parent passes the real one in the environment
// (the variable containers/storage also reads).
func HostUID() int {
	if v, err := strconv.Atoi(os.Getenv("_CONTAINERS_ROOTLESS_UID")); err == nil {
		return v
	}
	return os.Getuid()
}

// Default computes the default directories for the user. Overrides
// (--root, --runroot) replace the fields afterwards.
func Default() (Paths, error) {
	var p Paths
	data := os.Getenv("XDG_DATA_HOME")
	if data == "" || !filepath.IsAbs(data) {
		home := os.Getenv("HOME")
		if home == "" || !filepath.IsAbs(home) {
			return p, fmt.Errorf("cannot find the data directory: HOME is not set to an absolute path; set HOME or pass --root")
		}
		data = filepath.Join(home, ".local", "share")
	}
	p.Root = filepath.Join(data, "rl", "storage")

	uid := HostUID()
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" && RuntimeDirUsable(rt) {
		p.RunRoot = filepath.Join(rt, "rl")
		p.RunRootReason = "XDG_RUNTIME_DIR"
	} else {
		p.RunRoot = filepath.Join(os.TempDir(), "rl-"+strconv.Itoa(uid))
		if rt == "" {
			p.RunRootReason = "XDG_RUNTIME_DIR is not set: private directory in " + os.TempDir()
		} else {
			p.RunRootReason = "XDG_RUNTIME_DIR " + rt + " is not owned by uid " + strconv.Itoa(uid) + " or not writable: private directory in " + os.TempDir()
		}
	}
	return p, nil
}

// RuntimeDirUsable: after `su` or `sudo -u` XDG_RUNTIME_DIR often still names
// the previous user's directory. Ownership is compared with os.Getuid(): on
// the host that is the user, inside rl's user namespace the user maps to 0.
func RuntimeDirUsable(dir string) bool {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil || int(st.Uid) != os.Getuid() {
		return false
	}
	return unix.Access(dir, unix.W_OK|unix.X_OK) == nil
}

// EnsurePrivateDir creates dir 0700 if missing and refuses one that is a
// symlink or belongs to someone else: /tmp is shared, and a directory planted
// there by another user would let them swap our run state.
func EnsurePrivateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(dir), err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("checking %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory (a symlink?): remove it or pass --runroot", dir)
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%s belongs to uid %d, not to you: remove it or pass --runroot", dir, st.Uid)
	}
	return nil
}
