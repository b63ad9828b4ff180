// Package hostcheck looks at what rl needs from the machine it runs on: the
// kernel, the id-mapping helpers, the devices, /proc, seccomp, cgroups and
// the storage filesystems, and tries the risky ingredients for real in
// throwaway namespaces. It returns data for rl info and rl doctor to print;
// it prints nothing.
//
// It runs in rl-core, inside rl's user namespace (docs/process-model.md).
// The user's devices and files look the same there, with one difference it
// accounts for: ids outside the namespace (host root) show as the overflow
// id (65534), and reading a file capability owned by host root fails with
// EOVERFLOW.
package hostcheck

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Kernel is the kernel release (uname -r).
func Kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// KernelAtLeast compares a release such as "6.1.0-13-amd64" with
// major.minor; an unparsable release counts as new enough.
func KernelAtLeast(release string, major, minor int) bool {
	f := strings.FieldsFunc(release, func(r rune) bool { return r < '0' || r > '9' })
	if len(f) < 2 {
		return true
	}
	ma, err1 := strconv.Atoi(f[0])
	mi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return true
	}
	return ma > major || ma == major && mi >= minor
}

// Distro is PRETTY_NAME from /etc/os-release (else /usr/lib/os-release).
func Distro() string {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if b, err := os.ReadFile(p); err == nil {
			if d := ParseOSRelease(string(b)); d != "" {
				return d
			}
		}
	}
	return "unknown"
}

// SelfSeccomp is rl's own seccomp state (inherited from whatever started it).
func SelfSeccomp() Seccomp {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return Seccomp{Mode: -1, Filters: -1, ModeName: "unknown"}
	}
	return ParseStatusSeccomp(string(b))
}

// SelfProcMask looks at rl's own mount table for mounts over /proc.
func SelfProcMask() ProcMask {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ProcMask{}
	}
	defer f.Close()
	return MaskedProc(ParseMountinfo(f))
}

// Sysctl is a kernel setting that decides whether unprivileged users may
// create user namespaces.
type Sysctl struct {
	Name    string `json:"name"` // e.g. "user.max_user_namespaces"
	Path    string `json:"path"`
	Present bool   `json:"present"`
	Value   string `json:"value,omitempty"`
	// Blocks says the value forbids unprivileged user namespaces.
	Blocks bool `json:"blocks"`
	// Fix is the command that lifts the block.
	Fix string `json:"fix,omitempty"`
}

// UsernsSysctls reads the three settings, each when the kernel has it.
func UsernsSysctls() []Sysctl { return usernsSysctls("/proc/sys") }

func usernsSysctls(root string) []Sysctl {
	defs := []struct {
		name  string
		block func(string) bool
		fix   string
	}{
		{"user.max_user_namespaces", func(v string) bool { return v == "0" }, "sudo sysctl -w user.max_user_namespaces=28633"},
		{"kernel.unprivileged_userns_clone", func(v string) bool { return v == "0" }, "sudo sysctl -w kernel.unprivileged_userns_clone=1"},
		{"kernel.apparmor_restrict_unprivileged_userns", func(v string) bool { return v == "1" },
			"sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give rl an AppArmor profile with \"userns,\""},
	}
	var out []Sysctl
	for _, d := range defs {
		s := Sysctl{Name: d.name, Path: filepath.Join(root, strings.ReplaceAll(d.name, ".", "/"))}
		if b, err := os.ReadFile(s.Path); err == nil {
			s.Present, s.Value = true, strings.TrimSpace(string(b))
			s.Blocks = d.block(s.Value)
			if s.Blocks {
				s.Fix = d.fix
			}
		}
		out = append(out, s)
	}
	return out
}

// Device is a device node rl opens: /dev/net/tun (the container network)
// or /dev/fuse (fuse-overlayfs).
type Device struct {
	Path     string `json:"path"`
	Exists   bool   `json:"exists"`
	Mode     string `json:"mode,omitempty"` // e.g. "crw-rw-rw-"
	Major    uint32 `json:"major,omitempty"`
	Minor    uint32 `json:"minor,omitempty"`
	Openable bool   `json:"openable"`
	// Error is why it could not be opened read-write.
	Error string `json:"error,omitempty"`
	errno error
}

// Err is the open's error (nil when it opened).
func (d Device) Err() error { return d.errno }

// CheckDevice stats path and opens it read-write, as rl would.
func CheckDevice(path string) Device {
	d := Device{Path: path}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		d.errno, d.Error = err, err.Error()
		return d
	}
	d.Exists = true
	d.Mode = os.FileMode(st.Mode & 0o777).String()
	if st.Mode&unix.S_IFMT == unix.S_IFCHR {
		d.Mode = "c" + d.Mode[1:]
	}
	d.Major, d.Minor = unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		d.errno, d.Error = err, err.Error()
		return d
	}
	unix.Close(fd)
	d.Openable = true
	return d
}

// Helper is newuidmap or newgidmap: they must be setuid root or carry the
// file capability (cap_setuid, cap_setgid) to write a full map.
type Helper struct {
	Name  string `json:"name"`
	Path  string `json:"path,omitempty"`
	Found bool   `json:"found"`
	// Setuid: the set-user-id bit is set and the owner is root (host root
	// shows as the overflow id inside rl's namespace).
	Setuid bool   `json:"setuid"`
	Owner  string `json:"owner,omitempty"`
	// FileCaps describes the security.capability xattr: "" for none.
	FileCaps string `json:"fileCaps,omitempty"`
	// Usable: setuid root, or the needed file capability.
	Usable bool   `json:"usable"`
	Error  string `json:"error,omitempty"`
}

// CheckHelper inspects newuidmap or newgidmap at path ("" looks it up in
// PATH).
func CheckHelper(name, path string) Helper {
	h := Helper{Name: name, Path: path}
	if h.Path == "" {
		p, err := exec.LookPath(name)
		if err != nil {
			h.Error = name + " not found in PATH"
			return h
		}
		h.Path = p
	}
	var st unix.Stat_t
	if err := unix.Stat(h.Path, &st); err != nil {
		h.Error = err.Error()
		return h
	}
	h.Found = true
	root := ownerIsRoot(st.Uid)
	switch {
	case st.Uid == 0:
		h.Owner = "root"
	case root:
		h.Owner = "root (host root: unmapped in rl's namespace, shown as " + strconv.Itoa(int(st.Uid)) + ")"
	default:
		h.Owner = "uid " + strconv.Itoa(int(st.Uid))
	}
	h.Setuid = st.Mode&unix.S_ISUID != 0 && root
	var need int
	if name == "newgidmap" {
		need = capSetgid
	} else {
		need = capSetuid
	}
	var has bool
	h.FileCaps, has = fileCaps(h.Path, need)
	h.Usable = h.Setuid || has
	if !h.Usable {
		h.Error = fmt.Sprintf("%s is neither setuid root nor has cap_%s", h.Path, strings.TrimPrefix(capName(need), "cap_"))
	}
	return h
}

const (
	capSetgid = 6
	capSetuid = 7
)

var capNames = map[int]string{0: "cap_chown", 1: "cap_dac_override", 2: "cap_dac_read_search", 3: "cap_fowner",
	4: "cap_fsetid", 5: "cap_kill", 6: "cap_setgid", 7: "cap_setuid", 8: "cap_setpcap", 12: "cap_net_admin",
	13: "cap_net_raw", 21: "cap_sys_admin"}

func capName(n int) string {
	if s, ok := capNames[n]; ok {
		return s
	}
	return "cap_" + strconv.Itoa(n)
}

// fileCaps reads security.capability: a description, and whether the
// permitted set holds capability need. Inside a user namespace a capability
// whose root id is not mapped (host root's) reads as EOVERFLOW: it exists
// and works for the host, which is what runs newuidmap.
func fileCaps(path string, need int) (string, bool) {
	buf := make([]byte, 64)
	n, err := unix.Getxattr(path, "security.capability", buf)
	switch {
	case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
		return "", false
	case errors.Is(err, unix.EOVERFLOW):
		return "present (owned by host root; not readable inside rl's namespace)", true
	case err != nil:
		return "unreadable: " + err.Error(), false
	}
	return ParseFileCaps(buf[:n], need)
}

// ParseFileCaps decodes a vfs_cap_data xattr (revision 2 or 3): the
// permitted capabilities as text ("cap_setuid+ep"), and whether need is
// among them.
func ParseFileCaps(b []byte, need int) (string, bool) {
	if len(b) < 12 {
		return "malformed", false
	}
	le := func(i int) uint32 { return uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24 }
	magic := le(0)
	perm := uint64(le(4))
	if len(b) >= 20 {
		perm |= uint64(le(12)) << 32
	}
	var names []string
	for i := 0; i < 64; i++ {
		if perm&(1<<i) != 0 {
			names = append(names, capName(i))
		}
	}
	flags := "+p"
	if magic&1 != 0 { // VFS_CAP_FLAGS_EFFECTIVE
		flags = "+ep"
	}
	if len(names) == 0 {
		return "none", false
	}
	return strings.Join(names, ",") + flags, perm&(1<<need) != 0
}

// ownerIsRoot: uid 0, or the overflow id in a user namespace whose map
// leaves host root out (always so for rl's namespace, made by a non-root
// user).
func ownerIsRoot(uid uint32) bool {
	if uid == 0 {
		return true
	}
	if strconv.Itoa(int(uid)) != readTrim("/proc/sys/kernel/overflowuid", "65534") {
		return false
	}
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	return !mapsOutside(string(b), 0)
}

// mapsOutside says whether uid_map text maps outside id.
func mapsOutside(text string, id uint64) bool {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		out, err1 := strconv.ParseUint(f[1], 10, 64)
		n, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 == nil && err2 == nil && id >= out && id < out+n {
			return true
		}
	}
	return false
}

// InUserNamespace says whether this process runs in a user namespace other
// than the initial one (whose uid_map is "0 0 4294967295").
func InUserNamespace() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	return !isInitialMap(string(b))
}

func isInitialMap(text string) bool {
	f := strings.Fields(text)
	return len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
}

func readTrim(path, def string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	return string(bytes.TrimSpace(b))
}

// Filesystem magic numbers (statfs f_type) rl cares about.
const (
	magicOverlay = 0x794c7630
	magicNFS     = 0x6969
	magicCgroup2 = 0x63677270
	magicFuse    = 0x65735546
)

var fsNames = map[int64]string{
	magicOverlay: "overlay", magicNFS: "nfs", magicCgroup2: "cgroup2", magicFuse: "fuse",
	0x01021994: "tmpfs", 0xef53: "ext4", 0x58465342: "xfs", 0x9123683e: "btrfs",
	0x2fc12fc1: "zfs", 0xff534d42: "cifs", 0xfe534d42: "smb2", 0x27e0eb: "cgroup", 0x6a656a63: "fakeowner",
}

// FSType names the filesystem holding path ("" when statfs fails), and its
// magic number.
func FSType(path string) (string, int64) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "", 0
	}
	t := int64(st.Type)
	if n, ok := fsNames[t]; ok {
		return n, t
	}
	return fmt.Sprintf("0x%x", t), t
}

// Cgroup is the cgroup hierarchy and what the user may control in it.
type Cgroup struct {
	// Version is "v2", "v1" or "hybrid" (v1 controllers with a v2 tree
	// beside them), "" when /sys/fs/cgroup is missing.
	Version string `json:"version"`
	// Path is rl's cgroup (v2: the 0:: line of /proc/self/cgroup).
	Path string `json:"path,omitempty"`
	// Controllers are those available in rl's cgroup (cgroup.controllers);
	// SubtreeControl those enabled for its children.
	Controllers    []string `json:"controllers,omitempty"`
	SubtreeControl []string `json:"subtreeControl,omitempty"`
	// Writable: the user may create child cgroups there.
	Writable bool `json:"writable"`
	// Delegated: v2, writable, with controllers: rootless limits can work.
	Delegated bool `json:"delegated"`
}

// CheckCgroup looks at /sys/fs/cgroup and rl's own cgroup.
func CheckCgroup() Cgroup { return checkCgroup("/sys/fs/cgroup", "/proc/self/cgroup") }

func checkCgroup(mount, self string) Cgroup {
	var c Cgroup
	name, magic := FSType(mount)
	switch {
	case name == "":
		return c
	case magic == magicCgroup2:
		c.Version = "v2"
	default:
		c.Version = "v1"
		if n, _ := FSType(filepath.Join(mount, "unified")); n == "cgroup2" {
			c.Version = "hybrid"
		}
		return c
	}
	b, _ := os.ReadFile(self)
	c.Path = ParseCgroupV2Path(string(b))
	if c.Path == "" {
		return c
	}
	dir := filepath.Join(mount, c.Path)
	c.Controllers = strings.Fields(readTrim(filepath.Join(dir, "cgroup.controllers"), ""))
	c.SubtreeControl = strings.Fields(readTrim(filepath.Join(dir, "cgroup.subtree_control"), ""))
	c.Writable = unix.Access(dir, unix.W_OK) == nil && unix.Access(filepath.Join(dir, "cgroup.procs"), unix.W_OK) == nil
	c.Delegated = c.Writable && len(c.Controllers) > 0
	return c
}

// ParseCgroupV2Path returns the path of the unified hierarchy's line
// ("0::/user.slice/...") of /proc/PID/cgroup text.
func ParseCgroupV2Path(text string) string {
	for _, line := range strings.Split(text, "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return strings.TrimSpace(p)
		}
	}
	return ""
}

// Host is what rl info shows about the machine, besides rl's own choices.
type Host struct {
	Kernel  string   `json:"kernel"`
	Distro  string   `json:"distro"`
	Seccomp Seccomp  `json:"seccomp"`
	Proc    ProcMask `json:"proc"`
	Cgroup  Cgroup   `json:"cgroup"`
	Sysctls []Sysctl `json:"userNamespaceSysctls"`
	Devices []Device `json:"devices"`
	// InUserNamespace: the facts were gathered inside rl's user namespace.
	InUserNamespace bool `json:"inUserNamespace"`
}

// Gather collects Host; it changes nothing and runs no probe.
func Gather() Host {
	return Host{
		Kernel:          Kernel(),
		Distro:          Distro(),
		Seccomp:         SelfSeccomp(),
		Proc:            SelfProcMask(),
		Cgroup:          CheckCgroup(),
		Sysctls:         UsernsSysctls(),
		Devices:         []Device{CheckDevice("/dev/net/tun"), CheckDevice("/dev/fuse")},
		InUserNamespace: InUserNamespace(),
	}
}
