package hostcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/rlcontainers/rl/userns"
)

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseOSRelease(t *testing.T) {
	if got := ParseOSRelease(fixture(t, "os-release")); got != "Debian GNU/Linux 12 (bookworm)" {
		t.Errorf("got %q", got)
	}
	if got := ParseOSRelease(fixture(t, "os-release-nopretty")); got != "Alpine 3.20" {
		t.Errorf("without PRETTY_NAME: got %q", got)
	}
}

func TestParseStatusSeccomp(t *testing.T) {
	s := ParseStatusSeccomp(fixture(t, "status-docker"))
	if s.Mode != 2 || s.ModeName != "filter" || s.Filters != 1 || !strings.Contains(s.LikelySource, "Docker") {
		t.Errorf("docker: %+v", s)
	}
	s = ParseStatusSeccomp(fixture(t, "status-host"))
	if s.Mode != 0 || s.ModeName != "disabled" || s.Filters != 0 || s.LikelySource != "" {
		t.Errorf("host: %+v", s)
	}
	s = ParseStatusSeccomp("Seccomp:\t2\n") // kernel < 5.9: no count
	if s.Filters != 1 {
		t.Errorf("old kernel: %+v", s)
	}
}

func TestMaskedProcDocker(t *testing.T) {
	ms := ParseMountinfo(strings.NewReader(fixture(t, "mountinfo-docker")))
	if len(ms) != 13 {
		t.Fatalf("parsed %d mounts, want 13", len(ms))
	}
	if ms[12].Point != "/home/my dir" {
		t.Errorf("escape: %q", ms[12].Point)
	}
	if ms[0].FSType != "overlay" || ms[1].Point != "/proc" {
		t.Errorf("fields: %+v %+v", ms[0], ms[1])
	}
	p := MaskedProc(ms)
	want := []string{"/proc/acpi", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/kcore", "/proc/keys", "/proc/sys", "/proc/sysrq-trigger", "/proc/timer_list"}
	if !p.Masked || !reflect.DeepEqual(p.Paths, want) {
		t.Errorf("got %+v, want %v", p, want)
	}
}

func TestMaskedProcHost(t *testing.T) {
	p := MaskedProc(ParseMountinfo(strings.NewReader(fixture(t, "mountinfo-host"))))
	if p.Masked {
		t.Errorf("binfmt_misc counted as a mask: %+v", p)
	}
}

func TestCheckSubIDs(t *testing.T) {
	uid, gid := filepath.Join("testdata", "subuid"), filepath.Join("testdata", "subgid-alice-only")
	c := CheckSubIDs("alice", 1000, uid, gid)
	if c.Status != OK || !strings.Contains(c.Detail, "100000-165535") {
		t.Errorf("alice: %+v", c)
	}
	c = CheckSubIDs("carol", 1004, uid, uid)
	if c.Status != Degraded || c.Fix != "sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 carol" ||
		!strings.Contains(c.Cause, "no entry for carol (uid 1004)") {
		t.Errorf("carol: %+v", c)
	}
	// Matched by uid in subuid, missing in subgid: the fix reuses the range.
	c = CheckSubIDs("dave", 1003, uid, gid)
	if c.Status != Degraded || c.Fix != "sudo usermod --add-subgids 300000-300999 dave" {
		t.Errorf("dave: %+v", c)
	}
	c = CheckSubIDs("alice", 1000, filepath.Join("testdata", "nope"), gid)
	if c.Status != Degraded || !strings.Contains(c.Cause, "does not exist") {
		t.Errorf("missing file: %+v", c)
	}
}

func TestHelpersCheck(t *testing.T) {
	ok := Helper{Name: "newuidmap", Path: "/usr/bin/newuidmap", Found: true, Setuid: true, Usable: true}
	capped := Helper{Name: "newgidmap", Path: "/usr/bin/newgidmap", Found: true, FileCaps: "cap_setgid+ep", Usable: true}
	if c := helpersCheck(ok, capped); c.Status != OK || !strings.Contains(c.Detail, "cap_setgid+ep") {
		t.Errorf("ok: %+v", c)
	}
	missing := Helper{Name: "newgidmap", Error: "newgidmap not found in PATH"}
	c := helpersCheck(ok, missing)
	if c.Status != Degraded || !strings.Contains(c.Fix, "apt-get install uidmap") {
		t.Errorf("missing: %+v", c)
	}
	plain := Helper{Name: "newuidmap", Path: "/usr/bin/newuidmap", Found: true, Error: "not setuid"}
	c = helpersCheck(plain, capped)
	if c.Status != Degraded || !strings.Contains(c.Fix, "chmod u+s /usr/bin/newuidmap") || !strings.Contains(c.Fix, "cap_setuid+ep") {
		t.Errorf("not setuid: %+v", c)
	}
}

func TestParseFileCaps(t *testing.T) {
	// VFS_CAP_REVISION_2 | effective, permitted = cap_setuid.
	b := []byte{0x01, 0x00, 0x00, 0x02, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	s, has := ParseFileCaps(b, capSetuid)
	if s != "cap_setuid+ep" || !has {
		t.Errorf("got %q %v", s, has)
	}
	if _, has := ParseFileCaps(b, capSetgid); has {
		t.Error("cap_setgid reported")
	}
}

func TestMapsOutside(t *testing.T) {
	if mapsOutside("         0       1002          1\n         1     200000      65536\n", 0) {
		t.Error("rootless map maps host root")
	}
	if !mapsOutside("0 0 4294967295\n", 0) || !isInitialMap("         0          0 4294967295\n") {
		t.Error("initial map")
	}
}

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		r    string
		want bool
	}{{"5.10.0-28-amd64", false}, {"5.11.0", true}, {"6.1.0-13-amd64", true}, {"4.19.0", false}, {"weird", true}} {
		if got := KernelAtLeast(tc.r, 5, 11); got != tc.want {
			t.Errorf("%s: %v", tc.r, got)
		}
	}
}

func TestParseCgroupV2Path(t *testing.T) {
	if p := ParseCgroupV2Path("12:cpu:/x\n0::/user.slice/user-1000.slice/session-2.scope\n"); p != "/user.slice/user-1000.slice/session-2.scope" {
		t.Errorf("got %q", p)
	}
}

func TestUsernsSysctls(t *testing.T) {
	root := t.TempDir()
	for name, v := range map[string]string{"user/max_user_namespaces": "0", "kernel/apparmor_restrict_unprivileged_userns": "1"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(root, name), []byte(v+"\n"), 0o644)
	}
	ss := usernsSysctls(root)
	if len(ss) != 3 || !ss[0].Blocks || !strings.Contains(ss[0].Fix, "user.max_user_namespaces=28633") ||
		ss[1].Present || !ss[2].Blocks {
		t.Errorf("%+v", ss)
	}
	c := CheckUserns(false, ss)
	if c.Status != Broken || !strings.Contains(c.Fix, "max_user_namespaces") {
		t.Errorf("%+v", c)
	}
}

func TestCheckProcMasked(t *testing.T) {
	mask := MaskedProc(ParseMountinfo(strings.NewReader(fixture(t, "mountinfo-docker"))))
	c := CheckProc(mask, &ProbeError{Op: "mount proc", Err: syscall.EPERM}, "/h/.config/rl/rl.conf")
	if c.Status != Degraded || !strings.Contains(c.Cause, "/proc/kcore") ||
		!strings.Contains(c.Fix, "--security-opt unmask=/proc/*") || !strings.Contains(c.Fix, "procMount: Unmasked") {
		t.Errorf("%+v", c)
	}
	if c := CheckProc(ProcMask{}, nil, ""); c.Status != OK {
		t.Errorf("%+v", c)
	}
}

func TestCheckTun(t *testing.T) {
	c := CheckTun(Device{Path: "/dev/net/tun"}, &ProbeError{Op: "open /dev/net/tun", Err: syscall.ENOENT}, "rl.conf")
	if c.Status != Degraded || !strings.Contains(c.Fix, "--device /dev/net/tun") || !strings.Contains(c.Detail, "--network none") {
		t.Errorf("missing: %+v", c)
	}
	c = CheckTun(Device{Path: "/dev/net/tun", Exists: true, Mode: "crw-------"}, &ProbeError{Op: "open /dev/net/tun", Err: syscall.EACCES}, "rl.conf")
	if !strings.Contains(c.Fix, "chmod 0666") {
		t.Errorf("eacces: %+v", c)
	}
}

func TestCheckSeccomp(t *testing.T) {
	docker := ParseStatusSeccomp(fixture(t, "status-docker"))
	refused := &ProbeError{Op: "clone(CLONE_NEWUSER)", Err: syscall.EPERM}
	c := CheckSeccomp(docker, refused)
	if c.Status != Degraded || !strings.Contains(c.Fix, "--security-opt seccomp=unconfined") || !strings.Contains(c.Cause, "Docker's default profile") {
		t.Errorf("%+v", c)
	}
	if c := CheckSeccomp(docker, nil); c.Status != OK {
		t.Errorf("%+v", c)
	}
	if c := CheckNestedUserns(refused, docker, nil); c.Status != Degraded || !strings.Contains(c.Fix, "seccomp=unconfined") {
		t.Errorf("%+v", c)
	}
	if !errors.Is(refused, syscall.EPERM) {
		t.Error("ProbeError does not unwrap")
	}
}

func TestCheckPing(t *testing.T) {
	if c := CheckPing(nil); c.Status != OK || c.Name != "ping" {
		t.Errorf("%+v", c)
	}
	denied := fmt.Errorf("socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP): %w", syscall.EACCES)
	if c := CheckPing(denied); c.Status != Degraded || !strings.Contains(c.Cause, "ping_group_range excludes") || !strings.Contains(c.Fix, "sysctl -w net.ipv4.ping_group_range") {
		t.Errorf("%+v", c)
	}
}

func TestCheckBypass(t *testing.T) {
	if c := CheckBypass(nil); c.Status != OK || c.Name != "bypass" {
		t.Errorf("%+v", c)
	}
	denied := fmt.Errorf("pidfd_getfd: %w", syscall.EPERM)
	if c := CheckBypass(denied); c.Status != Degraded || !strings.Contains(c.Cause, "pidfd_getfd") || !strings.Contains(c.Fix, "SYS_PTRACE") {
		t.Errorf("%+v", c)
	}
	old := fmt.Errorf("SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9): %w", syscall.ENOTTY)
	if c := CheckBypass(old); c.Status != Degraded || !strings.Contains(c.Fix, "Linux 5.9") {
		t.Errorf("%+v", c)
	}
}

func TestCheckIDMapping(t *testing.T) {
	p := userns.Plan{Mode: userns.ModeSingle, Source: "single-ID fallback", Reason: "no entry", Fix: "sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 x",
		UIDs: []userns.Mapping{{ContainerID: 0, HostID: 1000, Size: 1}}}
	if c := CheckIDMapping(&p); c.Status != Degraded || !strings.Contains(c.Fix, "usermod") {
		t.Errorf("%+v", c)
	}
}

func TestOverlayCause(t *testing.T) {
	err := &ProbeError{Op: "mount overlay", Err: syscall.EINVAL}
	if s := OverlayCause(err, "6.1.0", "overlay", magicOverlay); !strings.Contains(s, "on overlayfs") {
		t.Error(s)
	}
	if s := OverlayCause(err, "5.10.0", "ext4", 0xef53); !strings.Contains(s, "needs 5.11") {
		t.Error(s)
	}
	if s := OverlayFix("nfs", magicNFS, "6.1", false); !strings.Contains(s, "local disk") || !strings.Contains(s, "apt-get install fuse-overlayfs") {
		t.Error(s)
	}
}

func TestFuseCheck(t *testing.T) {
	c := fuseCheck("", errors.New("not found"), Device{Path: "/dev/fuse"})
	if c.Status != Degraded || !strings.Contains(c.Fix, "apt-get install fuse-overlayfs") || !strings.Contains(c.Fix, "--device /dev/fuse") {
		t.Errorf("%+v", c)
	}
}
