package mounts

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func targets(ops []Op) []string {
	var out []string
	for _, op := range ops {
		out = append(out, string(op.Kind)+" "+op.Target)
	}
	return out
}

func find(t *testing.T, ops []Op, kind OpKind, target string) Op {
	t.Helper()
	for _, op := range ops {
		if op.Kind == kind && op.Target == target {
			return op
		}
	}
	t.Fatalf("no %s %s in plan:\n%s", kind, target, strings.Join(targets(ops), "\n"))
	return Op{}
}

func index(ops []Op, kind OpKind, target string) int {
	for i, op := range ops {
		if op.Kind == kind && op.Target == target {
			return i
		}
	}
	return -1
}

func TestPlanBase(t *testing.T) {
	ops, err := Plan(PlanInput{TTYGroup: 5, EtcFiles: map[string]string{"/etc/hosts": "/run/h", "/etc/resolv.conf": "/run/r"}})
	if err != nil {
		t.Fatal(err)
	}
	proc := find(t, ops, OpMount, "/proc")
	if proc.FSType != "proc" || proc.Flags&unix.MS_NOSUID == 0 {
		t.Errorf("proc: %+v", proc)
	}
	if dev := find(t, ops, OpMount, "/dev"); dev.FSType != "tmpfs" {
		t.Errorf("/dev: %+v", dev)
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		if op := find(t, ops, OpBind, "/dev/"+d); op.Source != "/dev/"+d || !op.File {
			t.Errorf("/dev/%s: %+v", d, op)
		}
	}
	// Device binds and devpts go on the tmpfs, so after it.
	if index(ops, OpMount, "/dev") > index(ops, OpBind, "/dev/null") || index(ops, OpMount, "/dev") > index(ops, OpMount, "/dev/pts") {
		t.Errorf("/dev must be mounted before what goes in it:\n%s", strings.Join(targets(ops), "\n"))
	}
	if pts := find(t, ops, OpMount, "/dev/pts"); !strings.Contains(pts.Data, "newinstance") || !strings.Contains(pts.Data, "gid=5") {
		t.Errorf("devpts: %+v", pts)
	}
	if l := find(t, ops, OpSymlink, "/dev/ptmx"); l.Source != "pts/ptmx" {
		t.Errorf("ptmx: %+v", l)
	}
	sys := find(t, ops, OpMount, "/sys")
	if sys.Flags&unix.MS_RDONLY == 0 || len(sys.Fallback) == 0 || sys.Fallback[0].Kind != OpBind {
		t.Errorf("/sys must be read-only with a bind fallback: %+v", sys)
	}
	if h := find(t, ops, OpBind, "/etc/hosts"); h.Source != "/run/h" || !h.File {
		t.Errorf("/etc/hosts: %+v", h)
	}
	if index(ops, OpBind, "/etc/hostname") >= 0 {
		t.Errorf("/etc/hostname was not given, but is in the plan")
	}
	if index(ops, OpRemount, "/") >= 0 {
		t.Errorf("root remounted read-only without --read-only")
	}
}

func TestPlanSingleIDHasNoTTYGroup(t *testing.T) {
	ops, err := Plan(PlanInput{TTYGroup: -1})
	if err != nil {
		t.Fatal(err)
	}
	// devpts refuses gid=5 when gid 5 is not mapped.
	if pts := find(t, ops, OpMount, "/dev/pts"); strings.Contains(pts.Data, "gid=") {
		t.Errorf("devpts with an unmapped gid: %+v", pts)
	}
}

func TestPlanHostNetBindsSys(t *testing.T) {
	ops, err := Plan(PlanInput{HostNet: true})
	if err != nil {
		t.Fatal(err)
	}
	find(t, ops, OpBind, "/sys")
	find(t, ops, OpRemount, "/sys")
	if index(ops, OpMount, "/sys") >= 0 {
		t.Errorf("sysfs is refused in a network namespace rl does not own")
	}
}

func TestPlanReadOnly(t *testing.T) {
	ops, err := Plan(PlanInput{ReadOnly: true, Tmpfs: []Tmpfs{{Target: "/tmp", Options: "size=1m"}}, Volumes: []Volume{{Source: "/h", Target: "/data", ReadOnly: true}}})
	if err != nil {
		t.Fatal(err)
	}
	last := ops[len(ops)-1]
	if last.Kind != OpRemount || last.Target != "/" {
		t.Errorf("the read-only remount of / must come last, got %+v", last)
	}
	for _, d := range []string{"/var/tmp", "/run"} {
		if op := find(t, ops, OpMount, d); op.FSType != "tmpfs" {
			t.Errorf("%s: %+v", d, op)
		}
	}
	// The user's --tmpfs /tmp replaces the implicit one.
	n := 0
	for _, op := range ops {
		if op.Target == "/tmp" {
			n++
			if !strings.Contains(op.Data, "size=1m") {
				t.Errorf("/tmp: %+v", op)
			}
		}
	}
	if n != 1 {
		t.Errorf("/tmp mounted %d times", n)
	}
	if index(ops, OpBind, "/data") > index(ops, OpRemount, "/data") || index(ops, OpRemount, "/data") < 0 {
		t.Errorf("a :ro volume is bound, then remounted read-only:\n%s", strings.Join(targets(ops), "\n"))
	}
}

func TestTmpfsOptions(t *testing.T) {
	for _, tc := range []struct {
		opts      string
		set, clr  uintptr
		data, err string
	}{
		{opts: "", set: unix.MS_NOSUID | unix.MS_NODEV, data: "mode=1777"},
		{opts: "ro,noexec,size=64m", set: unix.MS_RDONLY | unix.MS_NOEXEC, data: "size=64m,mode=1777"},
		{opts: "exec,dev,suid,mode=700", clr: unix.MS_NOEXEC | unix.MS_NODEV | unix.MS_NOSUID, data: "mode=700"},
		{opts: "bogus", err: "unknown tmpfs option"},
		{opts: "color=blue", err: "unknown tmpfs option"},
	} {
		flags, data, err := tmpfsOptions(tc.opts)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil || flags&tc.set != tc.set || flags&tc.clr != 0 || data != tc.data {
			t.Errorf("%q: flags %#x data %q err %v; want set %#x clear %#x data %q", tc.opts, flags, data, err, tc.set, tc.clr, tc.data)
		}
	}
}

func TestPlanHostPIDAndIPC(t *testing.T) {
	ops, err := Plan(PlanInput{HostPID: true, HostIPC: true})
	if err != nil {
		t.Fatal(err)
	}
	// proc and mqueue of namespaces owned by the initial user namespace
	// cannot be mounted from rl's: bind the host's.
	if p := find(t, ops, OpBind, "/proc"); p.Source != "/proc" {
		t.Errorf("/proc: %+v", p)
	}
	if index(ops, OpMount, "/proc") >= 0 || index(ops, OpMount, "/dev/mqueue") >= 0 {
		t.Errorf("fresh proc or mqueue with the host's namespaces:\n%s", strings.Join(targets(ops), "\n"))
	}
	find(t, ops, OpBind, "/dev/mqueue")
}

func TestProcMasked(t *testing.T) {
	clean := "22 1 0:21 / /proc rw,nosuid - proc proc rw\n23 1 0:5 / /dev rw - devtmpfs udev rw\n"
	masked := clean + "40 22 0:5 /null /proc/kcore ro,nosuid - devtmpfs udev rw\n"
	if ProcMasked(clean) {
		t.Error("a plain /proc reads as masked")
	}
	if !ProcMasked(masked) {
		t.Error("a /dev/null over /proc/kcore does not read as masked")
	}
	// systemd's binfmt_misc automount (autofs, then binfmt_misc on it) and
	// nfsd's mount sit on directories procfs keeps empty: nothing hidden.
	desktop := clean + "24 22 0:40 / /proc/sys/fs/binfmt_misc rw,relatime - autofs systemd-1 rw,fd=30\n" +
		"60 24 0:52 / /proc/sys/fs/binfmt_misc rw,nosuid - binfmt_misc binfmt_misc rw\n" +
		"61 22 0:53 / /proc/fs/nfsd rw,relatime - nfsd nfsd rw\n"
	if ProcMasked(desktop) {
		t.Error("binfmt_misc's and nfsd's mounts read as masks")
	}
	if !ProcMasked(desktop + "41 22 0:60 / /proc/acpi ro - tmpfs tmpfs ro\n") {
		t.Error("a tmpfs over /proc/acpi beside binfmt_misc does not read as masked")
	}
}
