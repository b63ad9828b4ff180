package rootfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/rlcontainers/rl/rootfs/paths"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"
)

// StoreConfig says how to open the store. It runs inside rl's user and
// mount namespaces: the store needs both (DESIGN.md).
type StoreConfig struct {
	Paths paths.Paths
	// Driver forces a storage driver ("overlay", "vfs"); empty picks one.
	Driver string
	// SingleID is true when the user namespace maps only the user's own id:
	// layers owning files by other ids cannot be chowned, so ownership is
	// squashed to 0 (ignore_chown_errors).
	SingleID bool
}

// Driver is the storage driver chosen and why, for rl info.
type Driver struct {
	Name    string   // overlay or vfs
	Options []string // graph driver options
	Reason  string
}

// ChooseDriver picks the storage driver: the one the store already uses,
// else native overlay when the kernel allows it in a user namespace (>= 5.11),
// else fuse-overlayfs when installed and /dev/fuse is usable, else vfs.
// Called inside rl's user and mount namespaces.
func ChooseDriver(c StoreConfig) (Driver, error) {
	var d Driver
	switch {
	case c.Driver != "":
		if c.Driver != "overlay" && c.Driver != "vfs" {
			return d, fmt.Errorf("unknown storage driver %q: use overlay or vfs", c.Driver)
		}
		d.Name, d.Reason = c.Driver, "set by --storage-driver"
		if prev := existingDriver(c.Paths.Root); prev != "" && prev != c.Driver {
			return d, fmt.Errorf("the store %s already holds %s layers: drop --storage-driver %s or pass another --root", c.Paths.Root, prev, c.Driver)
		}
	case existingDriver(c.Paths.Root) != "":
		d.Name, d.Reason = existingDriver(c.Paths.Root), "already used by the store "+c.Paths.Root
	default:
		if err := probeOverlay(c.Paths.Root); err == nil {
			d.Name, d.Reason = "overlay", "native overlay mounts in a user namespace on this kernel"
		} else if p, ferr := fuseOverlayfs(); ferr == nil {
			d.Name, d.Reason = "overlay", "native overlay refused ("+err.Error()+"): using fuse-overlayfs"
			d.Options = append(d.Options, "overlay.mount_program="+p)
		} else {
			d.Name, d.Reason = "vfs", "native overlay refused ("+err.Error()+") and "+ferr.Error()+": vfs copies each container's rootfs"
		}
	}
	if d.Name == "overlay" && c.SingleID {
		d.Options = append(d.Options, "overlay.ignore_chown_errors=true")
	}
	if d.Name == "vfs" && c.SingleID {
		d.Options = append(d.Options, "vfs.ignore_chown_errors=true")
	}
	return d, nil
}

// existingDriver names the driver whose layer store exists under root.
func existingDriver(root string) string {
	for _, name := range []string{"overlay", "vfs"} {
		if _, err := os.Stat(filepath.Join(root, name+"-layers")); err == nil {
			return name
		}
	}
	return ""
}

// probeOverlay mounts a throwaway overlay under root. Overlay in a user
// namespace needs kernel >= 5.11 and a filesystem under root that can be
// an upper dir (not overlay itself, not NFS).
func probeOverlay(root string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(root, "overlay-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, sub := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", dir, dir, dir)
	if err := unix.Mount("overlay", filepath.Join(dir, "merged"), "overlay", 0, opts); err != nil {
		return fmt.Errorf("overlay mount: %w", err)
	}
	return unix.Unmount(filepath.Join(dir, "merged"), unix.MNT_DETACH)
}

func fuseOverlayfs() (string, error) {
	p, err := exec.LookPath("fuse-overlayfs")
	if err != nil {
		return "", errors.New("fuse-overlayfs is not installed")
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("/dev/fuse is not usable (%v)", err)
	}
	f.Close()
	return p, nil
}

// OpenStore opens containers/storage with explicit options (never the
// system's storage.conf, which describes root's store).
func OpenStore(c StoreConfig) (storage.Store, Driver, error) {
	d, err := ChooseDriver(c)
	if err != nil {
		return nil, d, err
	}
	if err := c.Paths.EnsureRunRoot(); err != nil {
		return nil, d, err
	}
	if err := paths.ClaimRunRoot(c.Paths); err != nil {
		return nil, d, err
	}
	if err := os.MkdirAll(c.Paths.Root, 0o700); err != nil {
		return nil, d, fmt.Errorf("creating the store %s: %w", c.Paths.Root, err)
	}
	opts := d.Options
	if d.Name == "overlay" {
		// The library bind-mounts its overlay directory on itself and makes
		// it private, so that its mounts do not spread to other mount
		// namespaces. rl's are rl-core's own (a new one each time, in rl's
		// user namespace: its mounts are slaves of the host's at most, and
		// propagate nowhere), and a container's init makes its copy private
		// first: the mounts (and a read of mountinfo) are for nothing, on
		// every rl command's way to the store.
		opts = append(opts[:len(opts):len(opts)], "overlay.skip_mount_home=true")
	}
	s, err := storage.GetStore(storage.StoreOptions{
		RunRoot:            c.Paths.RunRoot,
		GraphRoot:          c.Paths.Root,
		GraphDriverName:    d.Name,
		GraphDriverOptions: opts,
	})
	if err != nil {
		return nil, d, fmt.Errorf("opening the store %s (driver %s): %w", c.Paths.Root, d.Name, err)
	}
	return newStore(s, d), d, nil
}
