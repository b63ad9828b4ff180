// Package paths says where rl keeps its state: the store and the run dir.
// It links nothing but x/sys, so the host-side rl can find a running
// container's control socket without opening the store.
package paths

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Paths are the directories rl keeps its state in.
type Paths struct {
	// Root is the persistent store (images, layers, container records):
	// $XDG_DATA_HOME/rl/storage, by default ~/.local/share/rl/storage.
	Root string
	// RunRoot holds what must vanish on reboot (mount counts, locks):
	// $XDG_RUNTIME_DIR/rl when that directory is usable, else /tmp/rl-UID;
	// ForRoot then gives each store its own directory inside it.
	RunRoot string
	// RunRootReason says why RunRoot was chosen, for rl info.
	RunRootReason string
	// runBase is the run dir RunRoot was made in, when ForRoot gave a store
	// of its own one (EnsureRunRoot checks it too).
	runBase string
	// canon is Canonical(Root), as ForRoot found it.
	canon string
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

// ForRoot is p (Default's) with the store at root: the default one, or
// --root's. Each store gets a run dir of its own inside the user's,
// root-<12 hex of the SHA-256 of its canonical path>: two stores must
// never share one, as containers/storage keeps their layers' mount counts
// there and rl its running containers' control sockets, found by name (a
// name in one store would reach the other's container). An explicit
// --runroot replaces RunRoot afterwards (WithRunRoot).
func (p Paths) ForRoot(root string) Paths {
	p.Root, p.canon = root, Canonical(root)
	p.runBase = p.RunRoot
	sum := sha256.Sum256([]byte(p.canon))
	p.RunRoot = filepath.Join(p.RunRoot, "root-"+hex.EncodeToString(sum[:6]))
	p.RunRootReason += "; one per store"
	return p
}

// WithRunRoot is p with the run dir set by --runroot.
func (p Paths) WithRunRoot(dir string) Paths {
	p.RunRoot, p.RunRootReason, p.runBase = dir, "set by --runroot", ""
	return p
}

// Canonical is path absolute, with its symlinks resolved as far as it
// exists (a store not made yet is named by its existing parent).
func Canonical(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	rest := ""
	for dir := abs; ; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(real, rest)
		}
		if dir == filepath.Dir(dir) {
			return abs
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}

// EnsureRunRoot creates the run dir (and the one it was made in) private
// to the user (EnsurePrivateDir).
func (p Paths) EnsureRunRoot() error {
	if p.runBase != "" {
		if err := EnsurePrivateDir(p.runBase); err != nil {
			return err
		}
	}
	return EnsurePrivateDir(p.RunRoot)
}

// ownerFile records, in a run dir, the store that uses it.
func ownerFile(runRoot string) string { return filepath.Join(runRoot, "rl", "store") }

// canonicalRoot is Canonical(p.Root), from ForRoot when it ran.
func (p Paths) canonicalRoot() string {
	if p.canon != "" {
		return p.canon
	}
	return Canonical(p.Root)
}

// ClaimRunRoot records p's store as the run dir's, or checks that it is
// the one recorded (CheckRunRoot): a run dir given to two stores with
// --runroot is refused, as podman refuses it.
func ClaimRunRoot(p Paths) error {
	if claimed, err := checkRunRoot(p); claimed || err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(ownerFile(p.RunRoot)), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(ownerFile(p.RunRoot)), ".store-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(p.canonicalRoot() + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// link(2) does not replace: of two first commands, one records its
	// store and the other checks against it.
	if err := os.Link(tmp.Name(), ownerFile(p.RunRoot)); err != nil && !os.IsExist(err) {
		return err
	}
	return CheckRunRoot(p)
}

// CheckRunRoot fails when the run dir is recorded as another store's.
func CheckRunRoot(p Paths) error {
	_, err := checkRunRoot(p)
	return err
}

// checkRunRoot is CheckRunRoot, and says whether the run dir is claimed.
func checkRunRoot(p Paths) (claimed bool, err error) {
	b, err := os.ReadFile(ownerFile(p.RunRoot))
	if err != nil {
		return false, nil // not claimed yet (or made before rl recorded it)
	}
	owner, own := strings.TrimSpace(string(b)), p.canonicalRoot()
	if owner == own {
		return true, nil
	}
	return true, fmt.Errorf("run dir %s belongs to the store %s, not to %s: give each store its own --runroot (or leave --runroot out: each --root then gets one)", p.RunRoot, owner, own)
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
