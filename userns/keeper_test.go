package userns

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rlcontainers/rl/internal/fds"
	"golang.org/x/sys/unix"
)

// field is the value of "name=..." in a child's output.
func field(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, name+"="); ok {
			return v
		}
	}
	return ""
}

// recordIn is the keeper record in dir; the test fails without one.
func recordIn(t *testing.T, dir string) keeperRec {
	t.Helper()
	rec, err := readRecord(filepath.Join(dir, keeperRecord))
	if err != nil {
		t.Fatalf("keeper record: %v", err)
	}
	return rec
}

func alive(pid int) bool {
	f, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(f), ") Z")
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestRunKeeper: with a keeper dir the child runs in the keeper's user
// namespace (the same for every run), with a mount namespace of its own;
// a keeper that is gone, one recorded for another plan and one that got
// the single-ID fallback are replaced; StopKeeper ends it.
func TestRunKeeper(t *testing.T) {
	dir := t.TempDir()
	plan := singlePlan(t)
	o := Options{Plan: plan, KeeperDir: dir, Keeper: os.Args[0]}
	t.Cleanup(func() { StopKeeper(dir) })
	ownMnt, _ := os.Readlink("/proc/self/ns/mnt")

	run := func() (string, keeperRec) {
		t.Helper()
		code, out, stderr, err := runChildIn(t, o, "ns", nil)
		if err != nil || code != 0 {
			t.Fatalf("Run: code %d, err %v, stderr %q", code, err, stderr)
		}
		if !strings.HasPrefix(out, "mode=single\neuid=0\n") {
			t.Fatalf("child output\n%s\nwant mode single, euid 0", out)
		}
		rec := recordIn(t, dir)
		keeperNS, err := os.Readlink("/proc/" + itoa(rec.Pid) + "/ns/user")
		if err != nil {
			t.Fatalf("the recorded keeper %d: %v", rec.Pid, err)
		}
		if got := field(out, "userns"); got != keeperNS {
			t.Fatalf("child's user namespace %s, the keeper's %s", got, keeperNS)
		}
		if got := field(out, "mntns"); got == "" || got == ownMnt {
			t.Fatalf("child's mount namespace %q: want one of its own (ours is %s)", got, ownMnt)
		}
		return out, rec
	}
	_, first := run()
	_, again := run()
	if again.Pid != first.Pid {
		t.Fatalf("second run: keeper %d, first run's was %d: want it reused", again.Pid, first.Pid)
	}

	// Gone: a new one.
	syscall.Kill(first.Pid, syscall.SIGKILL)
	for i := 0; i < 100 && alive(first.Pid); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	_, next := run()
	if next.Pid == first.Pid {
		t.Fatal("a killed keeper was not replaced")
	}

	// Recorded for another plan (/etc/subuid changed): replaced, and the
	// old one stopped.
	rec := recordIn(t, dir)
	other := plan
	other.UIDs = append(other.UIDs, Mapping{1, 100000, 65536})
	if rec.Key != planKey(plan) || rec.Key == planKey(other) {
		t.Fatalf("record's key %q: want %q (and not another plan's)", rec.Key, planKey(plan))
	}
	rec.Key = planKey(other)
	if err := os.WriteFile(filepath.Join(dir, keeperRecord), rec.format(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, replaced := run()
	if replaced.Pid == next.Pid {
		t.Fatal("a keeper made for another plan was reused")
	}
	for i := 0; i < 100 && alive(next.Pid); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(next.Pid) {
		t.Fatal("the keeper made for another plan still runs")
	}

	// The helpers fail: the single-ID fallback, and the next run tries them
	// again (a new keeper).
	full := plan
	full.Mode = ModeFull
	full.NewUIDMap, full.NewGIDMap = "/bin/false", "/bin/false"
	o.Plan = full
	_, fb := run()
	var got Plan
	if err := json.Unmarshal(fb.Plan, &got); err != nil || got.Mode != ModeSingle || fb.Key != fallbackKey {
		t.Fatalf("record after the fallback: key %q, plan %s (%v)", fb.Key, fb.Plan, err)
	}
	_, fb2 := run()
	if fb2.Pid == fb.Pid {
		t.Fatal("a keeper that got the fallback was reused")
	}

	if err := StopKeeper(dir); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && alive(fb2.Pid); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(fb2.Pid) {
		t.Fatal("StopKeeper left the keeper running")
	}
	if _, err := os.Stat(filepath.Join(dir, keeperRecord)); !os.IsNotExist(err) {
		t.Fatalf("StopKeeper left the record: %v", err)
	}
}

// TestKeeperRecord: a record reads back as written; a damaged one does not
// read.
func TestKeeperRecord(t *testing.T) {
	rec := keeperRec{Pid: 42, Start: 12345, Key: planKey(singlePlan(t)), Plan: []byte(`{"Mode":"single"}`)}
	got, err := parseRecord(rec.format())
	if err != nil || got.Pid != rec.Pid || got.Start != rec.Start || got.Key != rec.Key || string(got.Plan) != string(rec.Plan) {
		t.Fatalf("read back %+v (%v), wrote %+v", got, err, rec)
	}
	for _, bad := range []string{"", "42 1\nk\n", "x 1\nk\n{}\n", "42\nk\n{}\n", "0 1\nk\n{}\n"} {
		if _, err := parseRecord([]byte(bad)); err == nil {
			t.Errorf("%q read as a record", bad)
		}
	}
}

// TestKeeperDone: a keeper leaves when its record is gone, names another
// process, or went unused for keeperIdle.
func TestKeeperDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), keeperRecord)
	now := time.Now()
	if !keeperDone(path, 42, now) {
		t.Error("no record: want done")
	}
	os.WriteFile(path, keeperRec{Pid: 42, Start: 7, Key: "k", Plan: []byte("{}")}.format(), 0o600)
	if keeperDone(path, 42, now) {
		t.Error("its own fresh record: want not done")
	}
	if !keeperDone(path, 43, now) {
		t.Error("a record naming another process: want done")
	}
	if !keeperDone(path, 42, now.Add(keeperIdle+time.Second)) {
		t.Error("unused for keeperIdle: want done")
	}
}

// nsHolder starts a process in a user namespace of its own (its one uid
// and gid mapped to 0) and opens that namespace; both go at the test's end.
func nsHolder(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("no user namespace here: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	fd, err := unix.Open("/proc/"+itoa(cmd.Process.Pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestStartJoined: the child runs in the namespace, as root there, with
// the files given as its fds (nil: /dev/null) and nothing else open.
func TestStartJoined(t *testing.T) {
	ns := nsHolder(t)
	want, _ := os.Readlink("/proc/self/fd/" + itoa(ns))
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r4, w4, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	script := `readlink /proc/self/ns/user; id -u; echo four >&4`
	p, err := startJoined("/bin/sh", []string{"sh", "-c", script}, []string{"PATH=/usr/bin:/bin"}, []*os.File{nil, outW, outW, nil, w4}, ns)
	outW.Close()
	w4.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(outR)
	four, _ := io.ReadAll(r4)
	st, err := p.Wait()
	if err != nil || !st.Success() {
		t.Fatalf("child: %v %v, output %q", st, err, out)
	}
	if string(out) != want+"\n0\n" {
		t.Fatalf("child output %q: want its user namespace %s and uid 0", out, want)
	}
	if string(four) != "four\n" {
		t.Errorf("fd 4 got %q", four)
	}

	// What the test binary inherited is not ours to pass on (rl's main
	// does the same).
	fds.CloseOnExecFrom(3)
	outR, outW, err = os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p, err = startJoined("/bin/ls", []string{"ls", "/proc/self/fd"}, nil, []*os.File{nil, outW, outW}, ns)
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ = io.ReadAll(outR)
	p.Wait()
	// 0-2, and the directory ls reads.
	if fds := strings.Fields(string(out)); len(fds) != 4 {
		t.Errorf("child's open fds %v: want 0-2 and ls's own", fds)
	}
}

// TestStartJoinedErrors: a failing step in the child comes back as an
// error naming it, and the child is gone.
func TestStartJoinedErrors(t *testing.T) {
	null, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(null)
	if _, err := startJoined("/bin/true", []string{"true"}, nil, nil, null); err == nil || !strings.Contains(err.Error(), "setns") {
		t.Errorf("joining /dev/null: err %v, want setns's", err)
	}
	ns := nsHolder(t)
	if _, err := startJoined("/nonexistent/rl", []string{"rl"}, nil, nil, ns); err == nil || !strings.Contains(err.Error(), "execve") || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("a missing binary: err %v, want execve's ENOENT", err)
	}
}

// TestRunKeeperUnusable: a keeper whose namespace cannot be entered (here
// our own, which setns refuses: EINVAL, as a seccomp filter refuses it with
// EPERM) leaves the way without a keeper, and the child runs.
func TestRunKeeperUnusable(t *testing.T) {
	dir := t.TempDir()
	plan := singlePlan(t)
	start, err := StartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	planJSON, _ := json.Marshal(plan)
	rec := keeperRec{Pid: os.Getpid(), Start: start, Key: planKey(plan), Plan: planJSON}
	if err := os.WriteFile(filepath.Join(dir, keeperRecord), rec.format(), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr, err := runChildIn(t, Options{Plan: plan, KeeperDir: dir, Keeper: os.Args[0]}, "", nil)
	if err != nil || code != 0 || !strings.HasPrefix(out, "mode=single\neuid=0\n") {
		t.Fatalf("Run with an unusable keeper: code %d, err %v, output %q, stderr %q", code, err, out, stderr)
	}
}

// TestExecEnv: a child exec'd in place (execjoin.go) gets _RL_USERNS=exec,
// the plan, no status pipe, the payload in its variable (replacing one the
// caller had), and none of the fallback's marker.
func TestExecEnv(t *testing.T) {
	plan := Plan{UIDs: []Mapping{{ContainerID: 0, HostID: 1000, Size: 1}}, GIDs: []Mapping{{ContainerID: 0, HostID: 1001, Size: 1}}}
	in := []string{"HOME=/h", envFD + "=3", envStatusFD + "=4", "_P=old", envNoExec + "=why", "Z=1"}
	got := execEnv(in, `{"x":1}`, plan, "_P", []byte("new"))
	want := map[string]string{
		"HOME": "/h", "Z": "1", envFD: execJoinValue, envPlan: `{"x":1}`, envConfigured: "1",
		envRootlessUID: "1000", envRootlessGID: "1001", "_P": "new",
	}
	seen := map[string]bool{}
	for _, kv := range got {
		name, value, _ := strings.Cut(kv, "=")
		if seen[name] {
			t.Errorf("%s twice in %q", name, got)
		}
		seen[name] = true
		if w, ok := want[name]; !ok || w != value {
			t.Errorf("%s=%s in the child's environment; want %q (%v)", name, value, w, ok)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no %s in %q", name, got)
		}
	}
}
