package hostcheck

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/rlcontainers/rl/netstack/bypass"
	"github.com/rlcontainers/rl/userns"
	"golang.org/x/sys/unix"
)

// Statuses of a Check.
const (
	// OK: the ingredient works.
	OK = "ok"
	// Degraded: rl adapts (single map, vfs, --network none, ...) or a
	// feature is missing; rl run works.
	Degraded = "degraded"
	// Broken: rl run cannot work at all.
	Broken = "broken"
)

// Check is one line of rl doctor.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Cause  string `json:"cause,omitempty"`
	Fix    string `json:"fix,omitempty"`
}

// Outer-container options, named in fixes.
const (
	fixSeccomp = "run the outer container with --security-opt seccomp=unconfined (Docker, podman), or a seccomp profile that allows unshare/clone with CLONE_NEWUSER; Kubernetes: securityContext.seccompProfile.type: Unconfined"
	fixProc    = "run the outer container with --security-opt unmask=/proc/* (podman) or --security-opt systempaths=unconfined (Docker); Kubernetes: securityContext.procMount: Unmasked (with hostUsers: false)"
	fixTunDev  = "give the outer container the device: --device /dev/net/tun (Docker, podman); Kubernetes: a hostPath volume for /dev/net/tun (type CharDevice) or a device plugin"
	fixFuseDev = "give the outer container the device: --device /dev/fuse (Docker, podman); Kubernetes: a hostPath volume for /dev/fuse (type CharDevice) or a FUSE device plugin"
)

// DoctorInput is what rl-core knows when rl doctor runs.
type DoctorInput struct {
	// Plan is the id mapping in use (nil when unknown).
	Plan *userns.Plan
	// User and UID are the user on the host.
	User string
	UID  int
	// SubUIDFile and SubGIDFile default to /etc/subuid and /etc/subgid.
	SubUIDFile, SubGIDFile string
	// StoreRoot is the store; Driver and DriverReason what it uses and why.
	StoreRoot, Driver, DriverReason string
	// RunRoot and RunRootReason are the run dir and why.
	RunRoot, RunRootReason string
	// ConfigPath is rl.conf's path, named in fixes.
	ConfigPath string
}

// Doctor tries each ingredient and returns one Check per ingredient, in a
// fixed order. It runs probes (child processes in new namespaces, overlay
// mounts under the store) and must run inside rl's user namespace.
func Doctor(in DoctorInput) []Check {
	if in.SubUIDFile == "" {
		in.SubUIDFile = "/etc/subuid"
	}
	if in.SubGIDFile == "" {
		in.SubGIDFile = "/etc/subgid"
	}
	if in.ConfigPath == "" {
		in.ConfigPath = "~/.config/rl/rl.conf"
	}
	sec := SelfSeccomp()
	sysctls := UsernsSysctls()
	nested := ProbeUserns()
	checks := []Check{
		CheckUserns(InUserNamespace(), sysctls),
		CheckSubIDs(in.User, in.UID, in.SubUIDFile, in.SubGIDFile),
		CheckHelpers(helperPath(in.Plan, "newuidmap"), helperPath(in.Plan, "newgidmap")),
		CheckIDMapping(in.Plan),
		CheckStorage(in.StoreRoot, in.Driver, in.DriverReason),
		CheckFuse(),
		CheckProc(SelfProcMask(), ProbeProc(), in.ConfigPath),
		CheckTun(CheckDevice("/dev/net/tun"), ProbeTun(), in.ConfigPath),
		CheckSeccomp(sec, nested),
		CheckNestedUserns(nested, sec, sysctls),
		CheckBypass(bypass.Probe()),
		CheckPing(ProbePing()),
		CheckRunDir(in.RunRoot, in.RunRootReason),
		CheckCgroups(CheckCgroup()),
	}
	return checks
}

// AnyBroken says whether any check says rl run cannot work.
func AnyBroken(checks []Check) bool {
	for _, c := range checks {
		if c.Status == Broken {
			return true
		}
	}
	return false
}

func helperPath(p *userns.Plan, name string) string {
	if p == nil {
		return ""
	}
	if name == "newuidmap" {
		return p.NewUIDMap
	}
	return p.NewGIDMap
}

// CheckUserns: rl-core runs in rl's user namespace, which proves creating
// one works. When it does not, the host-side rl fails before any doctor
// runs, with userns.Error naming the sysctl or the seccomp option.
func CheckUserns(inside bool, sysctls []Sysctl) Check {
	c := Check{Name: "userns"}
	var vals []string
	for _, s := range sysctls {
		if s.Present {
			vals = append(vals, s.Name+"="+s.Value)
		}
	}
	if inside {
		c.Status, c.Detail = OK, "rl runs in a user namespace of its own"
		if len(vals) > 0 {
			c.Detail += " (" + strings.Join(vals, ", ") + ")"
		}
		return c
	}
	c.Status, c.Detail = Broken, "not in a user namespace"
	c.Cause = "rl doctor runs outside rl's user namespace: rl could not make one"
	for _, s := range sysctls {
		if s.Blocks {
			c.Cause = s.Name + " = " + s.Value + " forbids unprivileged user namespaces"
			c.Fix = s.Fix
			return c
		}
	}
	c.Fix = "see the error rl run prints (it names the sysctl or the seccomp option)"
	return c
}

// CheckSubIDs reads the user's subordinate ranges: the full map needs one
// in each file.
func CheckSubIDs(user string, uid int, subuid, subgid string) Check {
	c := Check{Name: "subid-ranges"}
	who := user
	if who == "" {
		who = fmt.Sprint(uid)
	}
	read := func(path string) ([]userns.Range, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, _ := userns.ParseSubIDs(f, path, user, uid)
		return r, nil
	}
	us, uerr := read(subuid)
	gs, gerr := read(subgid)
	desc := func(rs []userns.Range) string {
		var s []string
		for _, r := range rs {
			s = append(s, fmt.Sprintf("%d-%d", r.Start, uint64(r.Start)+uint64(r.Count)-1))
		}
		return strings.Join(s, ",")
	}
	if len(us) > 0 && len(gs) > 0 {
		c.Status = OK
		c.Detail = fmt.Sprintf("%s has %s in %s and %s in %s: full id map", who, desc(us), subuid, desc(gs), subgid)
		return c
	}
	c.Status = Degraded
	var causes []string
	for _, x := range []struct {
		path string
		rs   []userns.Range
		err  error
	}{{subuid, us, uerr}, {subgid, gs, gerr}} {
		switch {
		case errors.Is(x.err, os.ErrNotExist):
			causes = append(causes, x.path+" does not exist")
		case x.err != nil:
			causes = append(causes, fmt.Sprintf("cannot read %s: %v", x.path, x.err))
		case len(x.rs) == 0:
			causes = append(causes, fmt.Sprintf("no entry for %s (uid %d) in %s", who, uid, x.path))
		}
	}
	c.Detail = "single-id map: only uid 0 exists in containers, file ownership in images is squashed"
	c.Cause = strings.Join(causes, "; ")
	switch {
	case len(us) == 0 && len(gs) == 0:
		c.Fix = fmt.Sprintf("sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", who)
	case len(us) == 0:
		c.Fix = fmt.Sprintf("sudo usermod --add-subuids %s %s", desc(gs[:1]), who)
	default:
		c.Fix = fmt.Sprintf("sudo usermod --add-subgids %s %s", desc(us[:1]), who)
	}
	return c
}

// CheckHelpers: newuidmap and newgidmap present and setuid root (or with
// the file capability).
func CheckHelpers(uidPath, gidPath string) Check {
	return helpersCheck(CheckHelper("newuidmap", uidPath), CheckHelper("newgidmap", gidPath))
}

func helpersCheck(hs ...Helper) Check {
	c := Check{Name: "newuidmap"}
	var details, causes, missing, fixes []string
	for _, h := range hs {
		switch {
		case !h.Found:
			missing = append(missing, h.Name)
			causes = append(causes, h.Error)
		case !h.Usable:
			causes = append(causes, h.Error)
			capn := "cap_setuid"
			if h.Name == "newgidmap" {
				capn = "cap_setgid"
			}
			fixes = append(fixes, fmt.Sprintf("sudo chmod u+s %s (or sudo setcap %s+ep %s)", h.Path, capn, h.Path))
		default:
			how := "setuid root"
			if !h.Setuid {
				how = "file capability " + h.FileCaps
			}
			details = append(details, h.Path+" ("+how+")")
		}
	}
	if len(missing) > 0 {
		fixes = append([]string{"install " + strings.Join(missing, " and ") + ": sudo apt-get install uidmap (Fedora: sudo dnf install shadow-utils)"}, fixes...)
	}
	if len(causes) == 0 {
		c.Status, c.Detail = OK, strings.Join(details, ", ")
		return c
	}
	c.Status = Degraded
	c.Detail = "single-id map without them"
	c.Cause = strings.Join(causes, "; ")
	c.Fix = strings.Join(fixes, "; ")
	return c
}

// CheckIDMapping reports the mapping rl uses now (the plan the host-side rl
// made, after the helpers ran).
func CheckIDMapping(p *userns.Plan) Check {
	c := Check{Name: "id-mapping"}
	if p == nil {
		c.Status, c.Detail = OK, "unknown (rl doctor was not started by the host-side rl)"
		return c
	}
	size := uint64(0)
	for _, m := range p.UIDs {
		size += uint64(m.Size)
	}
	if p.Mode == userns.ModeFull {
		c.Status = OK
		c.Detail = fmt.Sprintf("full map: %d uids from %s", size, p.Source)
		return c
	}
	c.Status = Degraded
	c.Detail = "single-id map (" + p.Source + "): only uid 0 exists in containers"
	c.Cause, c.Fix = p.Reason, p.Fix
	return c
}

// CheckStorage tries native overlay under the store, then fuse-overlayfs;
// vfs always works where the store is writable.
func CheckStorage(root, driver, reason string) Check {
	c := Check{Name: "storage"}
	fsName, magic := FSType(root)
	oerr := ProbeOverlay(root)
	var pe *ProbeError
	if oerr != nil && errors.As(oerr, &pe) && strings.HasPrefix(pe.Op, "mkdir") {
		c.Status = Broken
		c.Detail = "the store " + root + " is not writable"
		c.Cause = oerr.Error()
		c.Fix = "pass --root DIR on a writable local disk, or fix the permissions of " + root
		return c
	}
	using := fmt.Sprintf("store %s on %s uses %s (%s)", root, fsName, driver, reason)
	if oerr == nil {
		c.Status = OK
		c.Detail = "native overlay works in a user namespace; " + using
		if driver == "vfs" {
			c.Status = Degraded
			c.Cause = "the store holds vfs layers, which copy each container's rootfs"
			c.Fix = "for overlay, use a new store: --root DIR (or remove " + root + " after rl rmi of its images)"
		}
		return c
	}
	c.Cause = "native overlay refused: " + OverlayCause(oerr, Kernel(), fsName, magic)
	prog, lerr := exec.LookPath("fuse-overlayfs")
	var ferr error
	if lerr == nil {
		ferr = ProbeFuseOverlay(root, prog)
	}
	switch {
	case lerr == nil && ferr == nil:
		c.Status = Degraded
		c.Detail = "fuse-overlayfs works (slower than native overlay); " + using
	default:
		c.Status = Degraded
		c.Detail = "vfs only (copies each container's rootfs: slow, large); " + using
		if lerr != nil {
			c.Cause += "; fuse-overlayfs is not installed"
		} else {
			c.Cause += "; fuse-overlayfs failed: " + ferr.Error()
		}
	}
	c.Fix = OverlayFix(fsName, magic, Kernel(), lerr == nil)
	return c
}

// OverlayCause explains a refused native overlay mount.
func OverlayCause(err error, kernel, fsName string, magic int64) string {
	switch {
	case magic == magicOverlay:
		return fmt.Sprintf("the store is on overlayfs (an outer container's rootfs?), which cannot hold an overlay upper dir (%v)", err)
	case magic == magicNFS:
		return fmt.Sprintf("the store is on NFS, which cannot hold an overlay upper dir (%v)", err)
	case !KernelAtLeast(kernel, 5, 11):
		return fmt.Sprintf("kernel %s has no overlay in user namespaces (needs 5.11) (%v)", kernel, err)
	}
	return fmt.Sprintf("%v (store on %s)", err, fsName)
}

// OverlayFix names what makes overlay work.
func OverlayFix(fsName string, magic int64, kernel string, haveFuse bool) string {
	var fixes []string
	switch {
	case magic == magicOverlay:
		fixes = append(fixes, "put the store on a volume: --root DIR on a bind mount or a Docker volume (-v rl-store:/var/lib/rl-store, then rl --root /var/lib/rl-store)")
	case magic == magicNFS:
		fixes = append(fixes, "put the store on local disk: --root /var/tmp/$USER-rl or a local directory")
	case !KernelAtLeast(kernel, 5, 11):
		fixes = append(fixes, "a kernel >= 5.11 gives native overlay")
	}
	if !haveFuse {
		fixes = append(fixes, "install fuse-overlayfs: sudo apt-get install fuse-overlayfs (Fedora: dnf install fuse-overlayfs)")
	}
	if len(fixes) == 0 {
		fixes = append(fixes, "check /dev/fuse (see the fuse line)")
	}
	return strings.Join(fixes, "; ")
}

// CheckFuse: fuse-overlayfs installed and /dev/fuse usable.
func CheckFuse() Check {
	prog, lerr := exec.LookPath("fuse-overlayfs")
	return fuseCheck(prog, lerr, CheckDevice("/dev/fuse"))
}

func fuseCheck(prog string, lerr error, dev Device) Check {
	c := Check{Name: "fuse"}
	var causes, fixes []string
	if lerr != nil {
		causes = append(causes, "fuse-overlayfs is not installed")
		fixes = append(fixes, "sudo apt-get install fuse-overlayfs (Fedora: dnf install fuse-overlayfs)")
	}
	switch {
	case !dev.Exists:
		causes = append(causes, "no /dev/fuse")
		fixes = append(fixes, fixFuseDev)
	case !dev.Openable:
		causes = append(causes, "/dev/fuse ("+dev.Mode+") cannot be opened: "+dev.Error)
		if errors.Is(dev.Err(), unix.EACCES) {
			fixes = append(fixes, "sudo chmod 0666 /dev/fuse")
		} else {
			fixes = append(fixes, fixFuseDev)
		}
	}
	if len(causes) == 0 {
		c.Status, c.Detail = OK, prog+" and /dev/fuse ("+dev.Mode+") usable"
		return c
	}
	c.Status = Degraded
	c.Detail = "no fuse-overlayfs fallback when native overlay is refused"
	c.Cause, c.Fix = strings.Join(causes, "; "), strings.Join(fixes, "; ")
	return c
}

// CheckProc: a fresh proc mount in a new PID namespace, as each container
// gets.
func CheckProc(mask ProcMask, probeErr error, configPath string) Check {
	c := Check{Name: "proc"}
	if probeErr == nil {
		c.Status, c.Detail = OK, "a fresh /proc mounts in a new PID namespace"
		return c
	}
	c.Status = Degraded
	c.Detail = "containers cannot get a /proc of their own: rl run shares the outer PID namespace and binds the outer /proc (ps shows the outer processes); --pid private fails"
	c.Cause = "fresh proc mount refused (" + probeErr.Error() + ")"
	if mask.Masked {
		c.Cause += ": /proc is masked by the outer container (mounts over " + strings.Join(mask.Paths, ", ") + "), and the kernel refuses a proc mount that would reveal them"
		c.Fix = fixProc + " (pid_fallback = \"fail\" in " + configPath + " makes rl run fail here instead of falling back)"
	} else {
		c.Fix = "use rl run --pid host"
	}
	return c
}

// CheckTun: /dev/net/tun opens and makes a TAP device in a new network
// namespace, as slirp (rl run's default network) needs.
func CheckTun(dev Device, probeErr error, configPath string) Check {
	c := Check{Name: "tun"}
	if probeErr == nil {
		c.Status, c.Detail = OK, "/dev/net/tun ("+dev.Mode+") makes TAP devices: the default network (slirp) works"
		return c
	}
	c.Status = Degraded
	c.Detail = "the default network (slirp) cannot work: use --network none or --network host, or pin one with network = \"host\" in " + configPath
	c.Cause = probeErr.Error()
	var errno syscall.Errno
	errors.As(probeErr, &errno)
	switch {
	case !dev.Exists || errno == unix.ENOENT || errno == unix.ENODEV || errno == unix.ENXIO:
		c.Cause = "no /dev/net/tun (" + probeErr.Error() + ")"
		c.Fix = fixTunDev + "; on a host: sudo modprobe tun"
	case errno == unix.EACCES:
		c.Cause = "/dev/net/tun is mode " + dev.Mode + ": not usable by the user (" + probeErr.Error() + ")"
		c.Fix = "sudo chmod 0666 /dev/net/tun (distributions ship it 0666 through udev)"
	case errno == unix.EPERM:
		c.Cause = "operation not permitted (" + probeErr.Error() + "): a seccomp profile or a device cgroup of the outer container"
		c.Fix = fixTunDev + "; and " + fixSeccomp
	case errno == unix.EBADFD:
		c.Cause = "/dev/net/tun is not a working tun device (" + probeErr.Error() + ")"
		c.Fix = fixTunDev
	}
	return c
}

// CheckSeccomp reports rl's own seccomp filter, and whether it lets a user
// namespace be made (the nested probe's result).
func CheckSeccomp(s Seccomp, nested error) Check {
	c := Check{Name: "seccomp"}
	switch {
	case s.Mode <= 0:
		c.Status, c.Detail = OK, "no seccomp filter on rl"
		return c
	case nested == nil || !errors.Is(nested, unix.EPERM):
		c.Status = OK
		c.Detail = fmt.Sprintf("rl runs under %d seccomp filter(s), likely %s; they allow user namespaces", s.Filters, s.LikelySource)
		return c
	}
	c.Status = Degraded
	c.Detail = fmt.Sprintf("rl runs under %d seccomp filter(s), likely %s", s.Filters, s.LikelySource)
	c.Cause = "the filter refuses clone(CLONE_NEWUSER) (" + nested.Error() + "): Docker's default profile does so without CAP_SYS_ADMIN"
	c.Fix = fixSeccomp
	return c
}

// CheckBypass reports whether `--network slirp:bypass=true` works here
// (bypass.Probe's result): without it, connections take the user-mode
// network, so the option changes nothing.
func CheckBypass(probe error) Check {
	c := Check{Name: "bypass"}
	if probe == nil {
		c.Status, c.Detail = OK, "--network slirp:bypass=true works: a test connect(2) got a host socket"
		return c
	}
	c.Status = Degraded
	c.Detail = "--network slirp:bypass=true falls back to the user-mode network"
	c.Cause = probe.Error()
	switch {
	case errors.Is(probe, unix.EPERM):
		c.Fix = "give the outer container CAP_SYS_PTRACE (--cap-add SYS_PTRACE: Docker's default seccomp profile then allows pidfd_getfd) or --security-opt seccomp=unconfined"
	default:
		c.Fix = "a kernel with seccomp user notification and SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9 or later) and pidfd_getfd (5.6)"
	}
	return c
}

// CheckPing reports whether containers can ping past their gateway: the
// network sends their echo requests from an ICMP echo socket of the
// user's on the host, which net.ipv4.ping_group_range must admit. (Read
// inside rl's user namespace, the range shows unmapped groups as 65534.)
func CheckPing(probe error) Check {
	c := Check{Name: "ping"}
	if probe == nil {
		c.Status, c.Detail = OK, "containers ping past their gateway: ICMP echo sockets open for the user"
		return c
	}
	c.Status = Degraded
	c.Detail = "containers ping their gateway only: their echo requests to other hosts go unanswered"
	c.Cause = "no ICMP echo socket for the user (" + probe.Error() + "): net.ipv4.ping_group_range excludes the user's groups"
	c.Fix = "sudo sysctl -w net.ipv4.ping_group_range='0 2147483647' (systemd's default; keep it in /etc/sysctl.d)"
	return c
}

// CheckNestedUserns: a user namespace inside rl's (--userns keep-id, rl
// inside an rl container).
func CheckNestedUserns(err error, s Seccomp, sysctls []Sysctl) Check {
	c := Check{Name: "nested-userns"}
	if err == nil {
		c.Status, c.Detail = OK, "a user namespace nests in rl's: --userns keep-id and rl inside rl work"
		return c
	}
	c.Status = Degraded
	c.Detail = "--userns keep-id and rl inside rl cannot work"
	c.Cause = err.Error()
	var errno syscall.Errno
	errors.As(err, &errno)
	switch {
	case errno == unix.ENOSPC:
		c.Cause += ": user.max_user_namespaces is reached"
		c.Fix = "sudo sysctl -w user.max_user_namespaces=28633"
	case errno == unix.EUSERS:
		c.Cause += ": user namespaces are nested 32 deep already"
	case errno == unix.EPERM && s.Mode == 2:
		c.Cause += ": refused by the seccomp filter"
		c.Fix = fixSeccomp
	default:
		for _, sc := range sysctls {
			if sc.Blocks {
				c.Cause += ": " + sc.Name + " = " + sc.Value
				c.Fix = sc.Fix
			}
		}
	}
	return c
}

// CheckRunDir: XDG_RUNTIME_DIR, or the private fallback (which works the
// same; it is not cleaned at logout).
func CheckRunDir(dir, reason string) Check {
	c := Check{Name: "run-dir", Status: OK}
	if reason == "XDG_RUNTIME_DIR" {
		c.Detail = dir + " (in XDG_RUNTIME_DIR)"
		return c
	}
	c.Detail = dir + " (" + reason + ")"
	return c
}

// CheckCgroups is informational: resource limits for rootless containers
// need cgroup v2 with controllers delegated to the user.
func CheckCgroups(cg Cgroup) Check {
	c := Check{Name: "cgroups"}
	switch {
	case cg.Version == "v2" && cg.Delegated:
		c.Status = OK
		c.Detail = fmt.Sprintf("cgroup v2, %s delegated (controllers: %s)", cg.Path, strings.Join(cg.Controllers, " "))
	case cg.Version == "v2":
		c.Status = Degraded
		c.Detail = "cgroup v2 without delegation to the user: no resource limits for containers"
		if cg.Path != "" {
			c.Cause = cg.Path + " is not writable by the user or has no controllers"
		}
		c.Fix = "run rl in a systemd user session (or systemd-run --user --scope -p Delegate=yes rl ...); in a container: --cgroupns private with a writable cgroup"
	case cg.Version == "":
		c.Status, c.Detail = Degraded, "no /sys/fs/cgroup"
		c.Cause = "cgroup2 is not mounted"
		c.Fix = "mount cgroup2 on /sys/fs/cgroup"
	default:
		c.Status = Degraded
		c.Detail = "cgroup " + cg.Version + ": rootless containers get no resource limits"
		c.Cause = "cgroup v1 cannot be delegated to an unprivileged user"
		c.Fix = "boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2)"
	}
	return c
}
