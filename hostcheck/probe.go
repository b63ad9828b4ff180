package hostcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"
)

// probeArg0 is argv[0] of a probe child: the binary that linked this
// package (rl-core) re-executes itself, and its reexec.Init (the storage
// library's, which rl-core's main calls first) runs probeMain instead of
// main. The child writes its result on fd 3, a pipe to the parent.
const probeArg0 = "rl-hostcheck-probe"

// Probes run in a child in new namespaces: "proc" (PID + mount: a fresh
// proc mount), "tun" (network: /dev/net/tun and TUNSETIFF), "userns" (a
// nested user namespace).
const (
	ProbeProcName   = "proc"
	ProbeTunName    = "tun"
	ProbeUsernsName = "userns"
)

func init() {
	reexec.Register(probeArg0, probeMain)
}

// probeMain is the child: it writes "" on fd 3 when the probe worked, else
// "op\nerrno\n" (or "op\n0\nmessage\n").
func probeMain() {
	result := os.NewFile(3, "probe-result")
	if result == nil {
		return
	}
	defer result.Close()
	kind := ""
	if len(os.Args) > 1 {
		kind = os.Args[1]
	}
	_, _ = io.WriteString(result, runProbe(kind))
}

// ProbeError is a probe's failure: the operation the kernel refused.
type ProbeError struct {
	Op  string // e.g. "mount proc", "TUNSETIFF", "clone(CLONE_NEWPID|CLONE_NEWNS)"
	Err error  // usually a syscall.Errno
}

func (e *ProbeError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *ProbeError) Unwrap() error { return e.Err }

// runProbe runs one probe in the child and encodes its result.
func runProbe(kind string) string {
	var op string
	var err error
	switch kind {
	case ProbeProcName:
		op, err = probeProcChild()
	case ProbeTunName:
		op, err = probeTunChild()
	case ProbeUsernsName:
		// Being here is the proof.
	default:
		op, err = "probe", fmt.Errorf("unknown probe %q", kind)
	}
	if err == nil {
		return ""
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return fmt.Sprintf("%s\n0\n%s\n", op, err)
	}
	return fmt.Sprintf("%s\n%d\n", op, int(errno))
}

func probeProcChild() (string, error) {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return "make / private", err
	}
	dir, err := os.MkdirTemp("", "rl-proc-probe-")
	if err != nil {
		return "mkdir", err
	}
	defer os.Remove(dir)
	if err := unix.Mount("proc", dir, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return "mount proc", err
	}
	return "", unix.Unmount(dir, unix.MNT_DETACH)
}

func probeTunChild() (string, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "open /dev/net/tun", err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("rlprobe0")
	if err != nil {
		return "ifreq", err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return "TUNSETIFF", err
	}
	return "", nil
}

// ProbeProc tries a fresh proc mount in a new PID and mount namespace, as
// rl run does for each container.
func ProbeProc() error {
	return probe(ProbeProcName, unix.CLONE_NEWPID|unix.CLONE_NEWNS, "clone(CLONE_NEWPID|CLONE_NEWNS)")
}

// ProbeTun opens /dev/net/tun and creates a TAP device in a new network
// namespace, as rl run's default network (slirp) does.
func ProbeTun() error {
	return probe(ProbeTunName, unix.CLONE_NEWNET, "clone(CLONE_NEWNET)")
}

// ProbePing opens and closes an ICMP echo socket (SOCK_DGRAM) in the
// host's network namespace, as rl's network does for a container's ping.
func ProbePing() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return fmt.Errorf("socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP): %w", err)
	}
	unix.Close(fd)
	return nil
}

// ProbeUserns creates a user namespace nested in the current one (what
// --userns keep-id and rl inside rl need; from the host, what every rl
// command needs).
func ProbeUserns() error {
	return probe(ProbeUsernsName, unix.CLONE_NEWUSER, "clone(CLONE_NEWUSER)")
}

func probe(kind string, flags uintptr, cloneOp string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.CommandContext(ctx, "/proc/self/exe", kind)
	cmd.Args[0] = probeArg0
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=" + os.TempDir()}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL}
	if flags&unix.CLONE_NEWUSER != 0 {
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		// The clone (or the exec) failed: the namespace was refused.
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return &ProbeError{Op: cloneOp, Err: errno}
		}
		return &ProbeError{Op: cloneOp, Err: err}
	}
	w.Close()
	out, _ := io.ReadAll(r)
	werr := cmd.Wait()
	lines := strings.SplitN(strings.TrimSpace(string(out)), "\n", 3)
	switch {
	case len(out) == 0 && werr == nil:
		return nil
	case len(lines) >= 2:
		if n, perr := strconv.Atoi(lines[1]); perr == nil && n != 0 {
			return &ProbeError{Op: lines[0], Err: syscall.Errno(n)}
		}
		if len(lines) == 3 {
			return &ProbeError{Op: lines[0], Err: errors.New(lines[2])}
		}
	}
	msg := strings.TrimSpace(errOut.String())
	if msg == "" && werr != nil {
		msg = werr.Error()
	}
	if msg == "" {
		msg = "no result from the probe"
	}
	return &ProbeError{Op: kind + " probe", Err: errors.New(msg)}
}

// ProbeOverlay mounts a throwaway native overlay in a directory under root
// (the store: the upper dir's filesystem is what matters) and unmounts it.
// It needs a mount namespace of its own (rl-core has one).
func ProbeOverlay(root string) error {
	dir, err := probeDirs(root, "overlay-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	opts := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", dir, dir, dir)
	if err := unix.Mount("overlay", filepath.Join(dir, "merged"), "overlay", 0, opts); err != nil {
		return &ProbeError{Op: "mount overlay", Err: err}
	}
	return unix.Unmount(filepath.Join(dir, "merged"), unix.MNT_DETACH)
}

// ProbeFuseOverlay mounts a throwaway fuse-overlayfs (program) under root
// and unmounts it.
func ProbeFuseOverlay(root, program string) error {
	dir, err := probeDirs(root, "fuse-overlay-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	merged := filepath.Join(dir, "merged")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", dir, dir, dir)
	cmd := exec.CommandContext(ctx, program, "-o", opts, merged)
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return &ProbeError{Op: "fuse-overlayfs", Err: errors.New(msg)}
	}
	defer unix.Unmount(merged, unix.MNT_DETACH)
	if name, _ := FSType(merged); name != "fuse" {
		return &ProbeError{Op: "fuse-overlayfs", Err: fmt.Errorf("%s is %s after the mount, not fuse", merged, name)}
	}
	return nil
}

func probeDirs(root, prefix string) (string, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", &ProbeError{Op: "mkdir " + root, Err: err}
	}
	dir, err := os.MkdirTemp(root, prefix)
	if err != nil {
		return "", &ProbeError{Op: "mkdir under " + root, Err: err}
	}
	for _, sub := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			os.RemoveAll(dir)
			return "", &ProbeError{Op: "mkdir", Err: err}
		}
	}
	return dir, nil
}
