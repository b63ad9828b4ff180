package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rlcontainers/rl/tests/testenv"
)

// The environment tests build, for real, each row of the table
// "Environments rl must meet" in ../shared/DESIGN.md (and the adaptations
// issue 5 lists), run rl in it as a non-root user, and check that
// `rl doctor` names the problem and its fix and that
// `rl run --rm busybox true` works with the announced adaptation or fails
// with that same message. docs/ci.md says which real CI setups each one
// stands for.
//
// Environments that need a mount namespace of their own (masked /proc, no
// /dev/net/tun, no /dev/fuse, a store on overlayfs) are prepared as root by
// `unshare -m --propagation private`; rl then runs in it as the user, by
// setpriv (rlInNS).

// TestEnvLaptop: the first row, a user in /etc/subuid with uidmap
// installed: full map, native overlay, and rl run says nothing extra.
func TestEnvLaptop(t *testing.T) {
	u := full
	info := rlOK(t, u, "info").Stdout
	if !strings.Contains(info, "mode: full") || !strings.Contains(info, "driver: overlay") {
		t.Errorf("rl info: want mode full and driver overlay\n%s", info)
	}
	lines := doctorLines(t, u, rlOK(t, u, "doctor"))
	for _, name := range []string{"userns", "subid-ranges", "newuidmap", "id-mapping", "storage", "proc", "tun", "seccomp"} {
		if l := lineNamed(lines, name); !strings.HasPrefix(l, "ok ") {
			t.Errorf("doctor %s: %q, want ok", name, l)
		}
	}
	r := rlOK(t, u, "run", "--rm", "busybox", "true")
	if strings.TrimSpace(r.Stderr) != "" {
		t.Errorf("rl run printed on a laptop-like host:\n%v", r)
	}
}

// TestEnvBinfmtMisc: a desktop's /proc has binfmt_misc mounted (systemd's
// automount) on a directory procfs keeps empty for it: nothing is masked,
// the kernel allows a fresh proc, and rl runs with its own PID namespace,
// saying nothing (it once took that mount for an outer container's mask).
func TestEnvBinfmtMisc(t *testing.T) {
	const binfmt = "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||\n" +
		"  mount -t tmpfs tmpfs /proc/sys/fs/binfmt_misc\n"
	forEachUser(t, func(t *testing.T, u User) {
		r := rlInNS(t, u, binfmt, nil, "info")
		if r.Code != 0 || !strings.Contains(r.Stdout, "procMasked: false") {
			t.Errorf("rl info: want procMasked: false\n%v", r)
		}
		r = rlInNS(t, u, binfmt+"grep -q ' /proc/sys/fs/binfmt_misc ' /proc/self/mountinfo\n", nil,
			"run", "--rm", "busybox", "sh", "-c", "echo $$; ls -d /proc/[0-9]* | wc -l")
		out := strings.Fields(r.Stdout + " - -")
		if r.Code != 0 || out[0] != "1" || strings.Contains(r.Stderr, "masked") {
			t.Errorf("rl run with binfmt_misc mounted: want PID 1 in a PID namespace of its own and no warning\n%v", r)
		}
		if u.Name == full.Name && strings.TrimSpace(r.Stderr) != "" {
			t.Errorf("rl run printed with binfmt_misc mounted:\n%v", r)
		}
		n := 99
		fmt.Sscan(out[1], &n)
		if n > 3 {
			t.Errorf("want only the container's processes in its /proc, got %d\n%v", n, r)
		}
	})
}

// TestEnvNoSubuid: the second row, a user without an /etc/subuid entry
// (rlsingle): single-id map, one notice naming the usermod line.
func TestEnvNoSubuid(t *testing.T) {
	u := single
	if u.Name == "" {
		t.Skip("no user without subordinate ids (not run as root)")
	}
	info := rlOK(t, u, "info").Stdout
	if !strings.Contains(info, "mode: single") {
		t.Errorf("rl info: want mode single\n%s", info)
	}
	lines := doctorLines(t, u, rlOK(t, u, "doctor"))
	sub := lineNamed(lines, "subid-ranges")
	if !strings.HasPrefix(sub, "degraded ") || !strings.Contains(sub, "usermod --add-subuids") {
		t.Errorf("doctor subid-ranges: %q, want degraded naming usermod --add-subuids", sub)
	}
	r := rlOK(t, u, "run", "--rm", "busybox", "true")
	checkOneNotice(t, r, "usermod --add-subuids")
}

// TestEnvNoNewuidmap: the second row's other half, newuidmap/newgidmap not
// on PATH (a minimal image): both users get the single map, with one
// notice naming the uidmap package.
func TestEnvNoNewuidmap(t *testing.T) {
	path := pathWithout(t, "newuidmap", "newgidmap")
	forEachUser(t, func(t *testing.T, u User) {
		env := []string{"PATH=" + path}
		r := runAs(t, u, runOpts{Env: env}, rlBin, "info")
		if r.Code != 0 || !strings.Contains(r.Stdout, "mode: single") || !regexp.MustCompile(`newuidmap: missing`).MatchString(r.Stdout) {
			t.Errorf("rl info without newuidmap: want mode single and newuidmap missing\n%v", r)
		}
		r = runAs(t, u, runOpts{Env: env}, rlBin, "doctor")
		if r.Code != 0 {
			t.Errorf("doctor: want exit 0 (degraded, rl run works)\n%v", r)
		}
		l := lineNamed(doctorLines(t, u, r), "newuidmap")
		if !strings.HasPrefix(l, "degraded ") || !strings.Contains(l, "apt-get install uidmap") {
			t.Errorf("doctor newuidmap: %q, want degraded naming apt-get install uidmap", l)
		}
		r = runAs(t, u, runOpts{Env: env}, rlBin, "run", "--rm", "busybox", "true")
		if r.Code != 0 {
			t.Fatalf("rl run without newuidmap:\n%v", r)
		}
		if u.Name == full.Name {
			checkOneNotice(t, r, "uidmap")
		} else {
			checkOneNotice(t, r, "")
		}
	})
}

// TestEnvCIContainer: the third row, rl in a Docker or Kubernetes
// container, one missing ingredient at a time, then all of Docker's
// defaults but the seccomp profile at once.
func TestEnvCIContainer(t *testing.T) {
	t.Run("masked-proc", testEnvMaskedProc)
	t.Run("no-tun", testEnvNoTun)
	t.Run("seccomp-denies-userns", testEnvSeccomp)
	t.Run("no-fuse-store-on-overlay", testEnvNoFuse)
	t.Run("docker-defaults-seccomp-unconfined", testEnvDockerDefaults)
}

// maskProc is what Docker and containerd mask (a subset: the files that
// exist on every kernel) and what Kubernetes' default procMount does.
const maskProc = `for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do
  [ -e "$p" ] && mount --bind /dev/null "$p"
done
if [ -d /proc/acpi ]; then mount -t tmpfs -o ro tmpfs /proc/acpi; fi
for p in /proc/sys /proc/sysrq-trigger /proc/irq /proc/bus; do
  [ -e "$p" ] && mount --bind -o ro "$p" "$p" 2>/dev/null || true
done
`

// hideTun makes /dev/net an empty directory, as in a container started
// without --device /dev/net/tun.
const hideTun = "mount -t tmpfs -o mode=0755 tmpfs /dev/net\n"

const fixProcRE = `unmask=/proc/\*`

func testEnvMaskedProc(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlInNS(t, u, maskProc, nil, "info")
		if r.Code != 0 || !strings.Contains(r.Stdout, "procMasked: true") {
			t.Errorf("rl info: want procMasked: true\n%v", r)
		}
		r = rlInNS(t, u, maskProc, nil, "doctor")
		if r.Code != 0 {
			t.Errorf("doctor: want exit 0 (rl run adapts)\n%v", r)
		}
		l := lineNamed(doctorLines(t, u, r), "proc")
		if !strings.HasPrefix(l, "degraded ") || !regexp.MustCompile(fixProcRE).MatchString(l) || !strings.Contains(l, "procMount: Unmasked") {
			t.Errorf("doctor proc: %q, want degraded naming unmask=/proc/* and procMount: Unmasked", l)
		}

		r = rlInNS(t, u, maskProc, nil, "run", "--rm", "busybox", "true")
		if r.Code != 0 {
			t.Fatalf("rl run with a masked /proc: want the fallback\n%v", r)
		}
		warn := nonEmptyLines(r.Stderr)
		if !containsLine(warn, "ps shows the outer processes") || !containsRE(warn, fixProcRE) || !containsLine(warn, "procMount: Unmasked") {
			t.Errorf("rl run: want one warning saying ps shows the outer processes and naming unmask=/proc/* and procMount: Unmasked\n%v", r)
		}

		// The fallback shares the outer PIDs: ps sees this test's processes.
		r = rlInNS(t, u, maskProc, nil, "run", "--rm", "busybox", "sh", "-c", "ls -d /proc/[0-9]* | wc -l")
		var n int
		fmt.Sscan(strings.TrimSpace(r.Stdout), &n)
		if r.Code != 0 || n <= 3 {
			t.Errorf("want the outer processes in the container's /proc (more than 3), got %d\n%v", n, r)
		}
		r = rlInNS(t, u, maskProc, nil, "run", "--rm", "busybox", "ps")
		if r.Code != 0 || !strings.Contains(r.Stdout, "rl") {
			t.Errorf("ps in the container: want the outer rl processes\n%v", r)
		}

		r = rlInNS(t, u, maskProc, nil, "run", "--rm", "--pid", "private", "busybox", "true")
		checkFails125(t, r, fixProcRE, "--pid private with a masked /proc")

		conf := filepath.Join(u.Home, ".config", "rl", "rl.conf")
		writeConf(t, u, conf, `pid_fallback = "fail"`+"\n")
		r = rlInNS(t, u, maskProc, nil, "run", "--rm", "busybox", "true")
		checkFails125(t, r, fixProcRE, `pid_fallback = "fail" with a masked /proc`)
		// An explicit --pid host still works under pid_fallback = "fail".
		r = rlInNS(t, u, maskProc, nil, "run", "--rm", "--pid", "host", "busybox", "true")
		if r.Code != 0 {
			t.Errorf("--pid host with pid_fallback = fail:\n%v", r)
		}
	})
}

func testEnvNoTun(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlInNS(t, u, hideTun, nil, "info")
		if r.Code != 0 || !strings.Contains(r.Stdout, "/dev/net/tun: missing") {
			t.Errorf("rl info: want /dev/net/tun: missing\n%v", r)
		}
		r = rlInNS(t, u, hideTun, nil, "doctor")
		if r.Code != 0 {
			t.Errorf("doctor: want exit 0 (--network none/host work)\n%v", r)
		}
		l := lineNamed(doctorLines(t, u, r), "tun")
		if !strings.HasPrefix(l, "degraded ") || !strings.Contains(l, "--device /dev/net/tun") {
			t.Errorf("doctor tun: %q, want degraded naming --device /dev/net/tun", l)
		}

		r = rlInNS(t, u, hideTun, nil, "run", "--rm", "busybox", "true")
		checkFails125(t, r, `/dev/net/tun`, "the default network without /dev/net/tun")
		msg := strings.Join(nonEmptyLines(r.Stderr), "\n")
		for _, want := range []string{"--network none", "--network host", "--device /dev/net/tun"} {
			if !strings.Contains(strings.ReplaceAll(msg, "--network none/host", "--network none, --network host"), want) {
				t.Errorf("the error does not name %q\n%v", want, r)
			}
		}

		for _, mode := range []string{"none", "host"} {
			r = rlInNS(t, u, hideTun, nil, "run", "--rm", "--network", mode, "busybox", "true")
			if r.Code != 0 {
				t.Errorf("--network %s without /dev/net/tun:\n%v", mode, r)
			}
		}
		writeConf(t, u, filepath.Join(u.Home, ".config", "rl", "rl.conf"), `network = "none"`+"\n")
		r = rlInNS(t, u, hideTun, nil, "run", "--rm", "busybox", "true")
		if r.Code != 0 {
			t.Errorf(`rl run with network = "none" in rl.conf:`+"\n%v", r)
		}
		r = rlInNS(t, u, hideTun, nil, "info")
		if !regexp.MustCompile(`network: none \(\S*rl\.conf\)`).MatchString(r.Stdout) {
			t.Errorf("rl info: want network: none from rl.conf\n%v", r)
		}
	})
}

// seccompRE is what the message must name.
var seccompRE = regexp.MustCompile(`(?s)seccomp.*--security-opt seccomp=unconfined`)

// seccompWrap is tests/cmd/seccompwrap, built once per run.
func seccompWrap(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(baseDir, "bin")
	helper := filepath.Join(dir, "seccompwrap")
	if _, err := os.Stat(helper); err != nil {
		if helper, err = testenv.BuildSeccompWrap(root, dir); err != nil {
			t.Fatal(err)
		}
	}
	return helper
}

func testEnvSeccomp(t *testing.T) {
	helper := seccompWrap(t)
	forEachUser(t, func(t *testing.T, u User) {
		// The filter is in place: unshare -U is refused.
		if r := runAs(t, u, runOpts{}, helper, "docker-userns", "unshare", "-U", "true"); r.Code == 0 {
			t.Fatalf("the filter does not refuse unshare(CLONE_NEWUSER)\n%v", r)
		}
		for _, args := range [][]string{
			{"run", "--rm", "busybox", "true"},
			{"doctor"},
			{"info"},
		} {
			r := runAs(t, u, runOpts{}, helper, append([]string{"docker-userns", rlBin}, args...)...)
			lines := nonEmptyLines(r.Stderr)
			if r.Code != 125 || len(lines) != 1 || !seccompRE.MatchString(lines[0]) {
				t.Errorf("rl %s under a seccomp filter: want exit 125 and one line naming seccomp and --security-opt seccomp=unconfined\n%v",
					strings.Join(args, " "), r)
			}
			t.Logf("rl %s: exit %d: %s", strings.Join(args, " "), r.Code, strings.TrimSpace(r.Stderr))
		}
	})
}

// overlayStore mounts an overlayfs at $D/merged (as root, in rlInNS's
// namespace) and gives it to u: a store on it cannot use native overlay
// (overlayfs is no upper layer for overlayfs), as in a container whose
// rootfs is overlay or on a kernel before 5.11.
func overlayStore(t *testing.T, u User) (setup, store string) {
	d := userDir(t, u, "ovl")
	for _, s := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(d, s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	setup = fmt.Sprintf("mount -t overlay overlay -o lowerdir=%[1]s/lower,upperdir=%[1]s/upper,workdir=%[1]s/work %[1]s/merged\nchown %[2]d:%[3]d %[1]s/merged\n",
		d, u.UID, u.GID)
	return setup, filepath.Join(d, "merged", "store")
}

// TestEnvLinux418: rl where no system call newer than Linux 4.18 (RHEL 8)
// exists: open_tree and move_mount (the rootfs handed to an init cloned
// before the mount), openat2 (mount targets resolved in the rootfs),
// close_range (what the workload inherits), pidfd_open and clone3 (Go's
// os/exec) all fail with ENOSYS, as on such a kernel or under a container
// runtime's seccomp profile older than them; then again with EPERM, as
// under Docker's profiles before 20.10. Root installs the filter
// (tests/cmd/seccompwrap) and setpriv runs rl as the user, so newuidmap
// keeps its setuid; each fallback then has to work.
func TestEnvLinux418(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installing the filter without no_new_privs (which would stop newuidmap) needs root")
	}
	helper := seccompWrap(t)
	for _, profile := range []string{"linux-4.18", "old-profile"} {
		t.Run(profile, func(t *testing.T) { testNewerCallsRefused(t, helper, profile) })
	}
}

// testNewerCallsRefused is TestEnvLinux418 under one profile: linux-4.18
// (ENOSYS) or old-profile (EPERM, as Docker's profiles before 20.10).
func testNewerCallsRefused(t *testing.T, helper, profile string) {
	forEachUser(t, func(t *testing.T, u User) {
		under := func(o runOpts, args ...string) Result {
			t.Helper()
			argv := append(append([]string{profile, "setpriv"}, setprivAs(u)...), "--", rlBin)
			r := runAs(t, u.root(), o, helper, append(argv, args...)...)
			r.Args = append([]string{"rl"}, args...)
			return r
		}
		// Descriptors rl's caller left open (3-6, not close-on-exec) must
		// not reach the workload: only its 0-2 and ls's own directory.
		var extra []*os.File
		for range 4 {
			f, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			extra = append(extra, f)
		}
		r := under(runOpts{ExtraFiles: extra}, "run", "--rm", "-v", u.Home+":/h:ro", "busybox", "sh", "-c",
			`echo $$; ls /proc/self/fd | tr '\n' ' '; echo; test -d /h && echo volume`)
		if want := "1\n0 1 2 3 \nvolume\n"; r.Code != 0 || r.Stdout != want {
			t.Errorf("rl run with Linux 4.18's system calls: want %q\n%v", want, r)
		}
		// A detached container, rl exec into it, a container joining its
		// namespaces, then stop and rm.
		name := "old-" + u.Name
		if r = under(runOpts{}, "run", "-d", "--name", name, "busybox", "sleep", "60"); r.Code != 0 {
			t.Fatalf("rl run -d:\n%v", r)
		}
		defer rl(t, u, "rm", "-f", name)
		if r = under(runOpts{}, "exec", name, "cat", "/proc/1/cmdline"); r.Code != 0 || r.Stdout != "sleep\x0060\x00" {
			t.Errorf("rl exec: want the workload's command line\n%v", r)
		}
		if r = under(runOpts{}, "run", "--rm", "--pid", "container:"+name, "busybox", "cat", "/proc/1/cmdline"); r.Code != 0 || r.Stdout != "sleep\x0060\x00" {
			t.Errorf("rl run --pid container:NAME: want the workload's command line\n%v", r)
		}
		if r = under(runOpts{}, "stop", "-t", "1", name); r.Code != 0 {
			t.Errorf("rl stop:\n%v", r)
		}
		if r = under(runOpts{}, "rm", name); r.Code != 0 {
			t.Errorf("rl rm:\n%v", r)
		}
		if r = under(runOpts{}, "ps", "-a", "--format", "{{.Names}}"); r.Code != 0 || strings.Contains(r.Stdout, name) {
			t.Errorf("rl ps -a after rm: want no %s\n%v", name, r)
		}
		// bypass=true without pidfd_open: one warning, and the connection
		// takes the user-mode network.
		const body = "through the stack\n"
		h := netServeHostHTTP(t, "tcp4", "127.0.0.1:0", body)
		r = under(runOpts{}, "run", "--rm", "--network", "slirp:bypass=true,allow_host_loopback=true", "busybox",
			"wget", "-qO-", fmt.Sprintf("http://10.0.2.2:%d/", h.Port))
		if r.Code != 0 || r.Stdout != body || strings.Count(r.Stderr, "bypass=true: pidfd_open") != 1 {
			t.Errorf("rl run --network slirp:bypass=true without pidfd_open: want the page and one warning naming pidfd_open\n%v", r)
		}
	})
}

// TestEnvKernelWithoutRootlessOverlay: the last row, native overlay
// refused (here: the store on an overlayfs): fuse-overlayfs, and rl info
// and doctor say why.
func TestEnvKernelWithoutRootlessOverlay(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		setup, store := overlayStore(t, u)
		r := rlInNS(t, u, setup, nil, "--root", store, "info")
		if r.Code != 0 || !strings.Contains(r.Stdout, "driver: overlay") || !regexp.MustCompile(`driverReason: .*fuse-overlayfs`).MatchString(r.Stdout) {
			t.Errorf("rl info: want overlay through fuse-overlayfs, with the reason\n%v", r)
		}
		t.Logf("rl info, store on overlayfs: %s", grepLines(r.Stdout, "driver"))
		r = rlInNS(t, u, setup, nil, "--root", store, "doctor")
		if r.Code != 0 {
			t.Errorf("doctor: want exit 0\n%v", r)
		}
		l := lineNamed(doctorLines(t, u, r), "storage")
		if !strings.HasPrefix(l, "degraded ") || !strings.Contains(l, "native overlay refused") || !strings.Contains(l, "fuse-overlayfs") {
			t.Errorf("doctor storage: %q, want degraded, native overlay refused, fuse-overlayfs", l)
		}
		r = rlInNS(t, u, setup, nil, "--root", store, "run", "--rm", "busybox", "sh", "-c", "echo hi > /x && cat /x && grep ' / ' /proc/mounts")
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "hi\n") {
			t.Errorf("rl run with the store on overlayfs:\n%v", r)
		}
		if !strings.Contains(r.Stdout, "fuse") {
			t.Errorf("the container's / is not fuse-overlayfs\n%v", r)
		}
	})
}

// testEnvNoFuse: the store on overlayfs and /dev/fuse not openable (a
// container without --device /dev/fuse): vfs, and why.
func testEnvNoFuse(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		setup, store := overlayStore(t, u)
		setup += "touch /tmp/.rl-nofuse-$$ && chmod 000 /tmp/.rl-nofuse-$$ && mount --bind /tmp/.rl-nofuse-$$ /dev/fuse && rm -f /tmp/.rl-nofuse-$$\n"
		r := rlInNS(t, u, setup, nil, "--root", store, "info")
		if r.Code != 0 || !strings.Contains(r.Stdout, "driver: vfs") || !regexp.MustCompile(`driverReason: .*overlay`).MatchString(r.Stdout) {
			t.Errorf("rl info: want vfs, with the reason\n%v", r)
		}
		t.Logf("rl info, store on overlayfs, no /dev/fuse: %s", grepLines(r.Stdout, "driver", "/dev/fuse"))
		r = rlInNS(t, u, setup, nil, "--root", store, "doctor")
		if r.Code != 0 {
			t.Errorf("doctor: want exit 0\n%v", r)
		}
		lines := doctorLines(t, u, r)
		if l := lineNamed(lines, "storage"); !strings.HasPrefix(l, "degraded ") || !strings.Contains(l, "vfs") {
			t.Errorf("doctor storage: %q, want degraded naming vfs", l)
		}
		if l := lineNamed(lines, "fuse"); !strings.HasPrefix(l, "degraded ") || !strings.Contains(l, "/dev/fuse") {
			t.Errorf("doctor fuse: %q, want degraded naming /dev/fuse", l)
		}
		r = rlInNS(t, u, setup, nil, "--root", store, "run", "--rm", "busybox", "true")
		if r.Code != 0 {
			t.Errorf("rl run on vfs:\n%v", r)
		}
	})
}

// testEnvDockerDefaults: what `docker run --security-opt
// seccomp=unconfined` without --device or systempaths gives: masked /proc,
// no /dev/net/tun, no /dev/fuse, all at once.
func testEnvDockerDefaults(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		setup := maskProc + hideTun
		r := rlInNS(t, u, setup, nil, "doctor")
		if r.Code != 0 {
			t.Errorf("doctor: want exit 0\n%v", r)
		}
		lines := doctorLines(t, u, r)
		for _, name := range []string{"proc", "tun"} {
			if l := lineNamed(lines, name); !strings.HasPrefix(l, "degraded ") {
				t.Errorf("doctor %s: %q, want degraded", name, l)
			}
		}
		r = rlInNS(t, u, setup, nil, "run", "--rm", "--network", "none", "busybox", "echo", "ok")
		if r.Code != 0 || r.Stdout != "ok\n" {
			t.Errorf("rl run --network none:\n%v", r)
		}
		r = rlInNS(t, u, setup, nil, "run", "--rm", "busybox", "true")
		checkFails125(t, r, `/dev/net/tun`, "the default network in Docker's defaults")
	})
}

// TestEnvNoXDGRuntimeDir: started from su, sudo -u, cron or a CI shell: no
// XDG_RUNTIME_DIR (the harness's default), or one that belongs to another
// user (su keeps the caller's). rl works with the private /tmp/rl-UID.
func TestEnvNoXDGRuntimeDir(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		other := full
		if u.Name == full.Name {
			other = single
		}
		// As /run/user/OTHER after su: a searchable parent, the directory
		// itself the other user's (root's if there is none), mode 0700.
		parent, err := os.MkdirTemp(baseDir, "run-user-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(parent) })
		os.Chmod(parent, 0o755)
		foreign := filepath.Join(parent, "other")
		if err := os.Mkdir(foreign, 0o700); err != nil {
			t.Fatal(err)
		}
		if other.Name != "" {
			os.Chown(foreign, other.UID, other.GID)
		}
		want := fmt.Sprintf("/tmp/rl-%d", u.UID)
		// And one the user cannot even stat (under another user's 0700
		// directory).
		unreachable := filepath.Join(foreign, "run")
		cases := []struct {
			name string
			env  []string
		}{
			{"unset", nil},
			{"another user's", []string{"XDG_RUNTIME_DIR=" + foreign}},
			{"unreachable", []string{"XDG_RUNTIME_DIR=" + unreachable}},
		}
		for _, c := range cases {
			name, env := c.name, c.env
			r := runAs(t, u, runOpts{Env: env}, rlBin, "info")
			if r.Code != 0 || !regexp.MustCompile(`(?m)^  runDir: `+regexp.QuoteMeta(want)+`\b`).MatchString(r.Stdout) {
				t.Errorf("XDG_RUNTIME_DIR %s: rl info: want runDir %s\n%v", name, want, r)
			}
			t.Logf("XDG_RUNTIME_DIR %s: %s", name, grepLines(r.Stdout, "runDir", "runRoot"))
			r = runAs(t, u, runOpts{Env: env}, rlBin, "doctor")
			if l := lineNamed(doctorLines(t, u, r), "run-dir"); !strings.HasPrefix(l, "ok ") || !strings.Contains(l, want) {
				t.Errorf("XDG_RUNTIME_DIR %s: doctor run-dir: %q, want ok %s", name, l, want)
			}
			r = runAs(t, u, runOpts{Env: env}, rlBin, "run", "--rm", "busybox", "echo", "ok")
			if r.Code != 0 || r.Stdout != "ok\n" {
				t.Errorf("XDG_RUNTIME_DIR %s: rl run:\n%v", name, r)
			}
			r = runAs(t, u, runOpts{Env: env}, rlBin, "run", "-d", "--name", "xdg", "busybox", "sleep", "30")
			if r.Code != 0 {
				t.Errorf("XDG_RUNTIME_DIR %s: rl run -d:\n%v", name, r)
				continue
			}
			rlOK(t, u, "exec", "xdg", "true") // found from the default environment too
			rlOK(t, u, "rm", "-f", "xdg")
		}
	})
}

// TestEnvInsideRL: the fourth row, rl run inside an rl container that has
// the rl binaries and the user's registries.conf bound in, with
// --privileged (the user namespace's capabilities, no masks, no seccomp,
// /dev/net/tun and /dev/fuse) and --network host (the test registry is on
// the host's loopback).
func TestEnvInsideRL(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		outer := []string{"run", "--rm", "--privileged", "--network", "host",
			"-v", filepath.Dir(rlBin) + ":/opt/rl:ro",
			"-v", filepath.Join(u.Home, ".config", "containers") + ":/root/.config/containers:ro",
			"busybox"}
		r := rl(t, u, append(outer, "/opt/rl/rl", "run", "--rm", "busybox", "echo", "nested")...)
		if r.Code != 0 || r.Stdout != "nested\n" {
			t.Errorf("rl inside rl: want nested\n%v", r)
		}
		// The same with a copy of the binaries (other inodes than the host
		// rl's), so the rest is checked even if rl refuses its own binary.
		cp := userDir(t, u, "rlcopy")
		for _, name := range rlBinaries {
			if err := copyExecutable(filepath.Join(filepath.Dir(rlBin), name), filepath.Join(cp, name)); err != nil {
				t.Fatal(err)
			}
		}
		outer[6] = cp + ":/opt/rl:ro"
		r = rl(t, u, append(outer, "/opt/rl/rl", "run", "--rm", "busybox", "echo", "nested")...)
		if r.Code != 0 || r.Stdout != "nested\n" {
			t.Errorf("rl inside rl (copied binaries): want nested\n%v", r)
		}
		r = rl(t, u, append(outer, "/opt/rl/rl", "info")...)
		if r.Code != 0 {
			t.Errorf("rl info inside rl:\n%v", r)
		}
		t.Logf("inner rl info (%s):\n%s", u.Name, grepLines(r.Stdout, "mode:", "source:", "reason:", "uid:", "gid:", "driver", "procMasked", "/dev/"))
		r = rl(t, u, append(outer, "/opt/rl/rl", "doctor")...)
		t.Logf("inner rl doctor (%s): exit %d\n%s%s", u.Name, r.Code, r.Stdout, r.Stderr)
		if r.Code != 0 {
			t.Errorf("rl doctor inside rl:\n%v", r)
		}
		// The inner rl's own network, with the devices --privileged gives.
		r = rl(t, u, append(outer, "/opt/rl/rl", "run", "--rm", "busybox", "cat", "/proc/net/dev")...)
		if r.Code != 0 || strings.Count(r.Stdout, ":") < 2 {
			t.Errorf("rl inside rl, default network: want lo and the TAP device\n%v", r)
		}
	})
}

// setprivAs are setpriv's flags that make a process u.
func setprivAs(u User) []string {
	groups := "--clear-groups"
	if len(u.Groups) > 0 {
		var g []string
		for _, id := range u.Groups {
			g = append(g, fmt.Sprint(id))
		}
		groups = "--groups=" + strings.Join(g, ",")
	}
	return []string{fmt.Sprintf("--reuid=%d", u.UID), fmt.Sprintf("--regid=%d", u.GID), groups}
}

// root is u with root's ids (HOME and the rest stay u's): what runs as
// root to prepare something, then becomes u.
func (u User) root() User {
	u.UID, u.GID, u.Groups = os.Geteuid(), os.Getegid(), nil
	return u
}

// rlInNS runs rl ARGS as u in a new private mount namespace that root first
// prepares with the shell script setup.
func rlInNS(t *testing.T, u User, setup string, env []string, args ...string) Result {
	t.Helper()
	script := "set -e\n" + setup + "exec setpriv " + strings.Join(setprivAs(u), " ") + " -- \"$@\"\n"
	r := runAs(t, u.root(), runOpts{Env: env}, "unshare", append([]string{"-m", "--propagation", "private", "/bin/sh", "-c", script, "sh", rlBin}, args...)...)
	r.Args = append([]string{"rl"}, args...)
	return r
}

// doctorLines are rl doctor's lines (failing the test on a bad exit).
func doctorLines(t *testing.T, u User, r Result) []string {
	t.Helper()
	if r.Code != 0 && r.Code != 1 {
		t.Errorf("rl doctor as %s:\n%v", u.Name, r)
	}
	return strings.Split(strings.TrimSpace(r.Stdout), "\n")
}

// checkOneNotice: rl run printed exactly one line on stderr, containing
// want.
func checkOneNotice(t *testing.T, r Result, want string) {
	t.Helper()
	lines := nonEmptyLines(r.Stderr)
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("want one notice line naming %q\n%v", want, r)
	}
}

// checkFails125: rl exited 125 and its stderr matches the regexp re.
func checkFails125(t *testing.T, r Result, re, what string) {
	t.Helper()
	if r.Code != 125 || !regexp.MustCompile(re).MatchString(r.Stderr) {
		t.Errorf("%s: want exit 125 and an error matching %s\n%v", what, re, r)
	}
}

// pathWithout is a directory of symlinks to every program of /usr/local/bin,
// /usr/bin, /bin, /usr/sbin and /sbin but the ones named, for PATH.
func pathWithout(t *testing.T, names ...string) string {
	t.Helper()
	dir := filepath.Join(baseDir, "path-without-"+strings.Join(names, "-"))
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	skip := map[string]bool{}
	for _, n := range names {
		skip[n] = true
	}
	for _, d := range []string{"/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if skip[e.Name()] {
				continue
			}
			os.Symlink(filepath.Join(d, e.Name()), filepath.Join(dir, e.Name())) // the first one wins
		}
	}
	return dir
}

// writeConf writes u's rl.conf for the test, removing it afterwards.
func writeConf(t *testing.T, u User, path, body string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(filepath.Dir(path)), filepath.Dir(path)} {
		if _, err := os.Stat(d); err != nil {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if u.credential() != nil {
				os.Chown(d, u.UID, u.GID)
			}
		}
	}
	writeUserFile(t, u, path, body)
	t.Cleanup(func() { os.Remove(path) })
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func containsLine(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func containsRE(lines []string, re string) bool {
	rx := regexp.MustCompile(re)
	for _, l := range lines {
		if rx.MatchString(l) {
			return true
		}
	}
	return false
}

// grepLines are the lines of s containing any of subs.
func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, strings.TrimSpace(l))
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
