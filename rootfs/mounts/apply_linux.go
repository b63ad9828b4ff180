package mounts

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// MountError is a refused mount with everything needed to see why.
type MountError struct {
	Op     string
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
	Err    error
}

func (e *MountError) Error() string {
	s := fmt.Sprintf("%s %s on %s", e.Op, e.Source, e.Target)
	if e.FSType != "" {
		s += " (" + e.FSType
		if e.Data != "" {
			s += ", " + e.Data
		}
		s += ")"
	}
	return s + ": " + e.Err.Error()
}

func (e *MountError) Unwrap() error { return e.Err }

// Apply carries out the mount plan below root. It runs in the container's
// mount namespace, before pivot_root. Targets are opened with
// RESOLVE_IN_ROOT semantics (filepath-securejoin), so a symlink in the image
// cannot point a mount at a host path, and the mount goes through the
// opened fd (/proc/self/fd/N), so it cannot be swapped between check and use.
func Apply(root string, ops []Op) error {
	rootf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the rootfs: %w", err)
	}
	defer rootf.Close()
	return apply(root, rootf, ops)
}

func apply(root string, rootf *os.File, ops []Op) error {
	for _, op := range ops {
		err := applyOne(root, rootf, op)
		if err != nil && len(op.Fallback) > 0 && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)) {
			err = apply(root, rootf, op.Fallback)
		}
		if err != nil && !op.Optional {
			return err
		}
	}
	return nil
}

func applyOne(root string, rootf *os.File, op Op) error {
	switch op.Kind {
	case OpSymlink:
		dir, err := mkdirAllInRoot(rootf, path.Dir(op.Target))
		if err != nil {
			return fmt.Errorf("creating %s: %w", path.Dir(op.Target), err)
		}
		defer dir.Close()
		if err := unix.Symlinkat(op.Source, int(dir.Fd()), path.Base(op.Target)); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink %s -> %s: %w", op.Target, op.Source, err)
		}
		return nil
	case OpMkdir:
		d, err := mkdirAllInRoot(rootf, op.Target)
		if err != nil {
			return fmt.Errorf("creating %s: %w", op.Target, err)
		}
		return d.Close()
	case OpMount, OpBind:
		target, err := openTarget(root, rootf, op.Target, op.File)
		if err != nil {
			return err
		}
		defer target.Close()
		fdPath := "/proc/self/fd/" + strconv.Itoa(int(target.Fd()))
		if op.Kind == OpBind {
			if err := unix.Mount(op.Source, fdPath, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				return &MountError{Op: "bind", Source: op.Source, Target: op.Target, Err: err}
			}
			return nil
		}
		if err := unix.Mount(op.Source, fdPath, op.FSType, op.Flags, op.Data); err != nil {
			return &MountError{Op: "mount", Source: op.Source, Target: op.Target, FSType: op.FSType, Flags: op.Flags, Data: op.Data, Err: err}
		}
		return nil
	case OpMask:
		target, err := openInRoot(rootf, op.Target)
		if err != nil {
			return fmt.Errorf("masking %s: %w", op.Target, err)
		}
		defer target.Close()
		fdPath := "/proc/self/fd/" + strconv.Itoa(int(target.Fd()))
		var st unix.Stat_t
		if err := unix.Fstat(int(target.Fd()), &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = unix.Mount("tmpfs", fdPath, "tmpfs", unix.MS_RDONLY|nosuidNodevNoexec, "size=0k,mode=000")
		} else {
			err = unix.Mount("/dev/null", fdPath, "", unix.MS_BIND, "")
		}
		if err != nil {
			return &MountError{Op: "mask", Target: op.Target, Err: err}
		}
		return nil
	case OpRdonly:
		// A path inside a mount (/proc/sys) becomes a mount of its own by
		// a bind on itself; the remount reopens it to reach that mount.
		target, err := openInRoot(rootf, op.Target)
		if err != nil {
			return fmt.Errorf("making %s read-only: %w", op.Target, err)
		}
		fdPath := "/proc/self/fd/" + strconv.Itoa(int(target.Fd()))
		err = unix.Mount(fdPath, fdPath, "", unix.MS_BIND|unix.MS_REC, "")
		target.Close()
		if err != nil {
			return &MountError{Op: "bind", Source: op.Target, Target: op.Target, Err: err}
		}
		return applyOne(root, rootf, Op{Kind: OpRemount, Target: op.Target})
	case OpRemount:
		target, err := openInRoot(rootf, op.Target)
		if err != nil {
			return fmt.Errorf("opening %s: %w", op.Target, err)
		}
		defer target.Close()
		fdPath := "/proc/self/fd/" + strconv.Itoa(int(target.Fd()))
		// A remount in a user namespace must keep the flags the kernel
		// locked on the original mount (nosuid, nodev, noexec, atime), or
		// it fails with EPERM (mount(2), "locked" mounts).
		var st unix.Statfs_t
		if err := unix.Statfs(fdPath, &st); err != nil {
			return fmt.Errorf("statfs %s: %w", op.Target, err)
		}
		flags := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY) | lockedFlags(st.Flags)
		if err := unix.Mount("", fdPath, "", flags, ""); err != nil {
			return &MountError{Op: "remount read-only", Target: op.Target, Err: err}
		}
		return nil
	}
	return fmt.Errorf("unknown mount op %q", op.Kind)
}

func lockedFlags(f int64) uintptr {
	var out uintptr
	for _, m := range []struct{ st, ms uintptr }{
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(f)&m.st != 0 {
			out |= m.ms
		}
	}
	return out
}

// openTarget opens (creating if needed) a mount target inside root: a
// directory, or for file binds an empty file. A target that is a symlink
// in the image is followed inside root (e.g. Debian's /etc/resolv.conf).
func openTarget(root string, rootf *os.File, target string, file bool) (*os.File, error) {
	if !file {
		d, err := mkdirAllInRoot(rootf, target)
		if err != nil {
			return nil, fmt.Errorf("creating mount point %s: %w", target, err)
		}
		return d, nil
	}
	if f, err := openInRoot(rootf, target); err == nil {
		return f, nil
	}
	// Missing (or a dangling symlink): resolve inside root, create the file.
	resolved, err := securejoin.SecureJoin(root, target)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", target, err)
	}
	rel, err := filepath.Rel(root, resolved)
	if err != nil {
		return nil, err
	}
	dir, err := mkdirAllInRoot(rootf, filepath.Dir("/"+rel))
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(target), err)
	}
	defer dir.Close()
	fd, err := unix.Openat(int(dir.Fd()), filepath.Base(rel), unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating mount point %s: %w", target, err)
	}
	return os.NewFile(uintptr(fd), target), nil
}

// openInRoot opens path (an O_PATH handle) resolved inside root as if root
// were /: openat2's RESOLVE_IN_ROOT, which the kernel enforces against
// symlinks and ".." (and renames racing the walk), with magic links
// refused. This is what pathrs-lite's OpenatInRoot does on a kernel with
// openat2, without the /proc readlink it adds to name the file (its
// private procfs mount and a readlink per call were ~1 ms of the init).
// Where openat2 is missing (kernel < 5.6) or filtered out, pathrs-lite
// resolves it its own way.
func openInRoot(rootf *os.File, path string) (*os.File, error) {
	fd, err := resolveInRoot(rootf, path, 0)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		return pathrs.OpenatInRoot(rootf, path)
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// mkdirAllInRoot opens the directory path inside root, creating what is
// missing: an existing one (most mount points) takes one openat2, one whose
// parent exists (/dev/pts, /dev/shm, /dev/mqueue in the fresh /dev) an
// mkdirat in the parent opened so and a second openat2; anything else
// (deeper, or not a directory: its error) is pathrs-lite's MkdirAllHandle,
// whose first use mounts a private procfs (~0.2 ms of the init's path).
func mkdirAllInRoot(rootf *os.File, path string) (*os.File, error) {
	fd, err := resolveInRoot(rootf, path, unix.O_DIRECTORY)
	if err == nil {
		return os.NewFile(uintptr(fd), path), nil
	}
	if errors.Is(err, unix.ENOENT) {
		if fd, err := mkdirInParent(rootf, path); err == nil {
			return os.NewFile(uintptr(fd), path), nil
		}
	}
	return pathrs.MkdirAllHandle(rootf, path, 0o755)
}

// mkdirInParent creates the last element of path in its parent, resolved
// inside root (mkdirat follows no symlink in its last element: one there
// is EEXIST), and opens it inside root again.
func mkdirInParent(rootf *os.File, p string) (int, error) {
	p = path.Clean("/" + p)
	parent, base := path.Split(p)
	if base == "" || base == "." || base == ".." {
		return -1, unix.EINVAL
	}
	dir, err := resolveInRoot(rootf, parent, unix.O_DIRECTORY)
	if err != nil {
		return -1, err
	}
	err = unix.Mkdirat(dir, base, 0o755)
	unix.Close(dir)
	if err != nil {
		return -1, err
	}
	return resolveInRoot(rootf, p, unix.O_DIRECTORY)
}

// resolveInRoot is openat2(O_PATH|flags) of path with root as its /.
func resolveInRoot(rootf *os.File, path string, flags uint64) (int, error) {
	return unix.Openat2(int(rootf.Fd()), path, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC | flags,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// PivotRoot makes root the container's /. It runs in the container's mount
// namespace. pivot_root(".", ".") stacks the old root under the new one;
// the detach then drops it (pivot_root(2), "new_root and put_old may be
// the same directory"), so no host path stays reachable.
func PivotRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir %s: %w", root, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	return unix.Chdir("/")
}
