package tests

// Faults (issue 6): kill -9 of rl at each phase of its work, and a store
// that runs out of space. After each: the next rl command works, rl ps -a
// is consistent, no rl process and no mount of the store is left, the store
// has nothing half-made (checkStore: what `rl system check` would have to
// find), and pulling and running again work.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rlcontainers/rl/tests/testenv"
)

// rlProcs lists the live processes running rl's binaries (this run's
// rl, rl-core, rl-image) with HOME home in their environment, as "pid exe".
func rlProcs(home string) []string {
	bins := map[string]bool{}
	for _, b := range rlBinaries {
		bins[filepath.Join(filepath.Dir(rlBin), b)] = true
	}
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		exe, err := os.Readlink(filepath.Join(p, "exe"))
		if err != nil || !bins[strings.TrimSuffix(exe, " (deleted)")] {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join(p, "stat")); err == nil {
			if _, rest, _ := strings.Cut(string(stat), ") "); strings.HasPrefix(rest, "Z") {
				continue
			}
		}
		env, err := os.ReadFile(filepath.Join(p, "environ"))
		if err != nil || !strings.Contains(string(env), "HOME="+home+"\x00") {
			continue
		}
		out = append(out, filepath.Base(p)+" "+filepath.Base(exe))
	}
	return out
}

// userPids is the set of live processes of u's uid and its subordinate
// range (the user's own processes and their containers').
func userPids(u User) map[int]bool {
	out := map[int]bool{}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		uid := int(st.Sys().(*syscall.Stat_t).Uid)
		if uid != u.UID && !(u.Name == full.Name && uid >= 200000 && uid < 200000+testenv.RangeSize) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join(p, "stat")); err == nil {
			if _, rest, _ := strings.Cut(string(stat), ") "); strings.HasPrefix(rest, "Z") {
				continue
			}
		}
		pid, _ := strconv.Atoi(filepath.Base(p))
		out[pid] = true
	}
	return out
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// bgCmd is rl started in the background with its output in a file (not a
// pipe: a helper that outlives rl must not keep the test waiting).
type bgCmd struct {
	cmd  *exec.Cmd
	out  string
	done chan struct{}
}

func startBG(t *testing.T, v User, env []string, args ...string) *bgCmd {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rlBin, args...)
	cmd.Env = append(v.env(), env...)
	cmd.Dir = v.Home
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: v.credential(), Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b := &bgCmd{cmd: cmd, out: f.Name(), done: make(chan struct{})}
	go func() { cmd.Wait(); close(b.done) }()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-b.done })
	return b
}

func (b *bgCmd) output() string { o, _ := os.ReadFile(b.out); return string(o) }

// await waits (30 s at most) until the output holds line, a whole line:
// with RL_TRACE=1, rl's own marks hold words too ("core: init ready").
func (b *bgCmd) await(t *testing.T, line string) {
	t.Helper()
	for start := time.Now(); !slices.Contains(strings.Split(b.output(), "\n"), line); time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("no %q from the container: %s", line, b.output())
		}
	}
}

// kill sends SIGKILL to rl (not its process group) and waits for it.
func (b *bgCmd) kill() int {
	killPid(b.cmd.Process.Pid)
	<-b.done
	return b.cmd.ProcessState.ExitCode()
}

// killRL kills the rl processes of home that are left (after reporting
// them), so that the next case starts clean.
func killRL(home string) {
	for _, p := range rlProcs(home) {
		pid, _ := strconv.Atoi(strings.Fields(p)[0])
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// waitNoRL waits up to timeout for the rl processes of home to end; it
// returns what is left and how long it waited.
func waitNoRL(home string, timeout time.Duration) ([]string, time.Duration) {
	start := time.Now()
	for {
		left := rlProcs(home)
		if len(left) == 0 || time.Since(start) > timeout {
			return left, time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// storePids is the subset of userPids that belongs to the store in home:
// rl with that HOME, or a container whose mounts name the store.
func storePids(u User, home string) map[int]bool {
	store := filepath.Join(home, ".local", "share", "rl")
	out := map[int]bool{}
	for pid := range userPids(u) {
		mi, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if strings.Contains(string(mi), store) || strings.Contains(string(env), "HOME="+home+"\x00") {
			out[pid] = true
		}
	}
	return out
}

// checkLeftovers fails t if processes of u that were not in before are
// alive (listing them and the store mounts in their mount namespaces), or
// if the host's mount table names the store; it kills the leftovers.
func checkLeftovers(t *testing.T, u User, home string, before map[int]bool, what string) {
	t.Helper()
	store := filepath.Join(home, ".local", "share", "rl")
	for pid := range userPids(u) {
		if before[pid] {
			continue
		}
		// Only this store's: rl with this HOME, or a container whose
		// mounts name the store (other runs may use the same users).
		mi, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		n := strings.Count(string(mi), store)
		if n == 0 && !strings.Contains(string(env), "HOME="+home+"\x00") {
			continue
		}
		t.Errorf("%s: process %d (%s) left, with %d mounts of the store in its mount namespace", what, pid, cmdline(pid), n)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), store) {
		t.Errorf("%s: the host's mount table names the store %s", what, store)
	}
}

// storeReport is a store check as `rl system check` would make it: every
// container's layer exists, every image's top layer exists, no layer is
// marked incomplete, every layer has its directory and every directory its
// layer.
func checkStore(t *testing.T, home, what string) []string {
	t.Helper()
	storage := filepath.Join(home, ".local", "share", "rl", "storage")
	files, _ := filepath.Glob(filepath.Join(storage, "*-layers", "layers.json"))
	var problems []string
	for _, f := range files {
		driver := strings.TrimSuffix(filepath.Base(filepath.Dir(f)), "-layers")
		var layers []struct {
			ID     string         `json:"id"`
			Parent string         `json:"parent"`
			Flags  map[string]any `json:"flags"`
		}
		if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
			if err := json.Unmarshal(b, &layers); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", f, err))
			}
		}
		ids := map[string]bool{}
		for _, l := range layers {
			ids[l.ID] = true
			if l.Flags["incomplete"] == true {
				problems = append(problems, "layer "+l.ID[:12]+" is marked incomplete")
			}
		}
		for _, l := range layers {
			if l.Parent != "" && !ids[l.Parent] {
				problems = append(problems, "layer "+l.ID[:12]+" has a missing parent")
			}
		}
		layerDir := filepath.Join(storage, driver)
		if driver == "vfs" {
			layerDir = filepath.Join(layerDir, "dir")
		}
		ents, _ := os.ReadDir(layerDir)
		dirs := map[string]bool{}
		for _, e := range ents {
			if e.Name() == "l" || e.Name() == "tempdirs" || !e.IsDir() {
				continue
			}
			dirs[e.Name()] = true
			if !ids[e.Name()] {
				problems = append(problems, fmt.Sprintf("orphan layer directory %s (%d kB)", filepath.Join(driver, e.Name()), dirSize(filepath.Join(layerDir, e.Name()))>>10))
			}
			// A layer's mount point, as the host sees it (rootfs mounts
			// live in rl's own mount namespaces), is empty: entries there
			// block its unmount (TestRmStrayMountpoint).
			if in, _ := os.ReadDir(filepath.Join(layerDir, e.Name(), "merged")); len(in) > 0 {
				problems = append(problems, fmt.Sprintf("layer %s: %d entries in its mount point", e.Name()[:12], len(in)))
			}
		}
		for id := range ids {
			if !dirs[id] {
				problems = append(problems, "layer "+id[:12]+" has no directory")
			}
		}
		var images []struct {
			ID       string `json:"id"`
			TopLayer string `json:"layer"`
		}
		if b, err := os.ReadFile(filepath.Join(storage, driver+"-images", "images.json")); err == nil && len(b) > 0 {
			json.Unmarshal(b, &images)
		}
		for _, im := range images {
			if im.TopLayer != "" && !ids[im.TopLayer] {
				problems = append(problems, "image "+im.ID[:12]+" has no top layer")
			}
		}
		var ctrs []struct {
			ID    string `json:"id"`
			Layer string `json:"layer"`
		}
		if b, err := os.ReadFile(filepath.Join(storage, driver+"-containers", "containers.json")); err == nil && len(b) > 0 {
			json.Unmarshal(b, &ctrs)
		}
		for _, c := range ctrs {
			if !ids[c.Layer] {
				problems = append(problems, "container "+c.ID[:12]+" has no layer")
			}
		}
	}
	for _, p := range problems {
		t.Errorf("store check after %s: %s", what, p)
	}
	return problems
}

// checkConsistent wants rl ps -a and rl images to work, and each listed
// container to be what its processes say: running with a live workload,
// or not running with none.
func checkConsistent(t *testing.T, v User, env []string, what string) {
	t.Helper()
	ps := rlEnv(t, v, env, "ps", "-a", "-q")
	if ps.Code != 0 {
		t.Errorf("%s: the next rl ps -a fails:\n%v", what, ps)
		return
	}
	if im := rlEnv(t, v, env, "images"); im.Code != 0 {
		t.Errorf("%s: rl images fails:\n%v", what, im)
	}
	for _, id := range strings.Fields(ps.Stdout) {
		r := rlEnv(t, v, env, "inspect", id)
		var st []lcInspect
		if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil || len(st) != 1 {
			t.Errorf("%s: rl inspect of a listed container fails:\n%v", what, r)
			continue
		}
		s := st[0].State
		if s.Running && (s.Pid <= 0 || !alive(s.Pid)) {
			t.Errorf("%s: %s is %q with no live workload (pid %d)", what, id, s.Status, s.Pid)
		}
		if !s.Running && s.Pid > 0 && alive(s.Pid) {
			t.Errorf("%s: %s is %q but its workload %d lives", what, id, s.Status, s.Pid)
		}
	}
}

// afterKill is what every fault case checks once rl was killed: the rl
// processes end, the next commands work, nothing is left, the store checks.
func afterKill(t *testing.T, v User, env []string, before map[int]bool, what string) {
	t.Helper()
	afterKillLinger(t, v, env, what, 2*time.Second)
}

// afterKillLinger is afterKill that lets rl's other processes finish their
// work for up to linger.
func afterKillLinger(t *testing.T, v User, env []string, what string, linger time.Duration) {
	t.Helper()
	left0 := rlProcs(v.Home)
	left, took := waitNoRL(v.Home, 30*time.Second)
	switch {
	case len(left) > 0:
		t.Errorf("%s: rl processes still alive %v after the kill: %v", what, took.Round(time.Millisecond), left)
		killRL(v.Home)
	case took > linger:
		t.Errorf("%s: rl's other processes %v lived on for %v after the kill", what, left0, took.Round(100*time.Millisecond))
	default:
		t.Logf("%s: rl's other processes %v ended %v after the kill", what, left0, took.Round(time.Millisecond))
	}
	checkConsistent(t, v, env, what)
}

// finalChecks removes every container, then wants no process or mount
// left and the store to check.
func finalChecks(t *testing.T, v User, env []string, before map[int]bool, what string) {
	t.Helper()
	ps := rlEnv(t, v, env, "ps", "-a", "-q")
	for _, id := range strings.Fields(ps.Stdout) {
		if r := rlEnv(t, v, env, "rm", "-f", id); r.Code != 0 {
			t.Errorf("%s: rl rm -f %s:\n%v", what, id, r)
		}
	}
	time.Sleep(200 * time.Millisecond)
	checkLeftovers(t, v, v.Home, before, what)
	checkStore(t, v.Home, what)
	// rl's own check: the run dir holds nothing of a container that is gone.
	if r := rlEnv(t, v, env, "system", "check", "--quick"); r.Code != 0 || !strings.Contains(r.Stdout, "no problems found") {
		t.Errorf("%s: rl system check after removing every container:\n%v", what, r)
	}
}

// TestFaultKillDuringPull: kill -9 of rl pull while it resolves the image
// (the first bytes from the registry) and while it downloads the layer (a
// throttled proxy slows the registry).
func TestFaultKillDuringPull(t *testing.T) {
	u := full
	for _, phase := range []struct {
		name string
		at   int64 // bytes from the registry before the kill
	}{{"resolving", 1}, {"downloading", 200 << 10}} {
		t.Run(phase.name, func(t *testing.T) {
			proxy := startThrottle(t, registryAddr, phase.at)
			v, env := otherHome(t, u, proxy.l.Addr().String())
			before := userPids(u)
			b := startBG(t, v, env, "pull", "busybox")
			select {
			case <-proxy.reached:
			case <-b.done:
				t.Fatalf("rl pull ended before the kill:\n%s", b.output())
			case <-time.After(60 * time.Second):
				t.Fatalf("the pull did not reach %d bytes in 60 s", phase.at)
			}
			b.kill()
			what := "kill -9 of rl pull while " + phase.name
			afterKill(t, v, env, before, what)
			if im := rlEnv(t, v, env, "images", "-q"); im.Stdout != "" {
				t.Logf("%s: then an image is listed (the helper finished the pull): %s", what, strings.TrimSpace(im.Stdout))
			}
			checkStore(t, v.Home, what+" (before the next pull)")
			if err := testenv.WriteUserConfig(v.Home, registryAddr); err != nil {
				t.Fatal(err)
			}
			if r := rlEnv(t, v, env, "pull", "-q", "busybox"); r.Code != 0 {
				t.Errorf("%s: the next pull:\n%v", what, r)
			}
			if r := rlEnv(t, v, env, "run", "--rm", "busybox", "echo", "ok"); r.Code != 0 || r.Stdout != "ok\n" {
				t.Errorf("%s: the next run:\n%v", what, r)
			}
			finalChecks(t, v, env, before, what)
		})
	}
}

// TestFaultKillDuringExtract: kill -9 of rl pull while it extracts the
// Debian image's layer (60 MB, thousands of files).
func TestFaultKillDuringExtract(t *testing.T) {
	needDebian(t)
	u := full
	v, env := otherHome(t, u, registryAddr)
	before := userPids(u)
	b := startBG(t, v, env, "pull", debianRef)
	deadline := time.Now().Add(120 * time.Second)
	storage := filepath.Join(v.Home, ".local", "share", "rl", "storage")
	// The layer is extracted (to a staging directory, then renamed): kill
	// once 40 MB of the ~175 MB are on disk.
	for dirSize(storage) < 40<<20 {
		select {
		case <-b.done:
			t.Fatalf("rl pull ended before its layer was seen extracting:\n%s", b.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no layer extracting after 120 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.kill()
	t.Logf("killed while extracting; the store then held %d MB", dirSize(storage)>>20)
	what := "kill -9 of rl pull while extracting"
	// Its helpers remove the half-extracted layer (40 MB of small files)
	// before they exit: 1.4-1.7 s on CI's machines, 3.6 s on a slow hour
	// of the development machine.
	afterKillLinger(t, v, env, what, 5*time.Second)
	if im := rlEnv(t, v, env, "images", "-q"); im.Stdout != "" {
		t.Logf("%s: then an image is listed: %s", what, strings.TrimSpace(im.Stdout))
	}
	t.Logf("after rl ps and rl images the store holds %d MB", dirSize(storage)>>20)
	checkStore(t, v.Home, what+" (before the next pull)")
	if r := rlEnv(t, v, env, "pull", "-q", debianRef); r.Code != 0 {
		t.Errorf("%s: the next pull:\n%v", what, r)
	}
	if r := rlEnv(t, v, env, "run", "--rm", debianRef, "sh", "-c", "dpkg -l | wc -l"); r.Code != 0 {
		t.Errorf("%s: the next run:\n%v", what, r)
	}
	finalChecks(t, v, env, before, what)
	t.Logf("with the image pulled again: %d MB", dirSize(storage)>>20)
}

// TestFaultKillBeforeStart: kill -9 of `rl run --name N busybox true` after
// small delays, to hit every phase from parsing to the exit, including the
// one after the container is created and before it starts. Then the same
// with --rm: whatever phase the kill hit, the next rl ps leaves no
// container of it (one killed before it started is removed too).
func TestFaultKillBeforeStart(t *testing.T) {
	u := full
	v, env := otherHome(t, u, registryAddr)
	rlOKEnv(t, v, env, "pull", "-q", "busybox")
	before := userPids(u)
	for _, rm := range []bool{false, true} {
		tries, step := 40, 3*time.Millisecond
		if rm {
			tries, step = 30, 2*time.Millisecond
		}
		states := map[string]int{}
		for i := 0; i < tries; i++ {
			name := fmt.Sprintf("race-%d", i)
			args := []string{"run", "--name", name, "busybox", "true"}
			if rm {
				name = fmt.Sprintf("rmrace-%d", i)
				args = []string{"run", "--rm", "--name", name, "busybox", "true"}
			}
			delay := time.Duration(i)*step + time.Duration(rand.Int63n(int64(step)))
			b := startBG(t, v, env, args...)
			time.Sleep(delay)
			code := b.kill()
			what := fmt.Sprintf("kill -9 of rl %s after %v", strings.Join(args, " "), delay.Round(100*time.Microsecond))
			left0 := rlProcs(v.Home)
			left, took := waitNoRL(v.Home, 10*time.Second)
			if len(left) > 0 || took > 2*time.Second {
				t.Errorf("%s: rl processes %v alive %v later: %v", what, left0, took.Round(100*time.Millisecond), left)
				killRL(v.Home)
			}
			r := rlEnv(t, v, env, "ps", "-a", "--format", "{{.Names}} {{.State}}")
			if r.Code != 0 {
				t.Fatalf("%s: the next rl ps -a:\n%v", what, r)
			}
			state := "none"
			for _, l := range strings.Split(r.Stdout, "\n") {
				if n, s, _ := strings.Cut(l, " "); n == name {
					state = s
				}
			}
			if code == 0 {
				state += " (rl exited 0 before the kill)"
			}
			states[state]++
			t.Logf("%s: container %s", what, state)
			if rm && state != "none" && state != "none (rl exited 0 before the kill)" {
				t.Errorf("%s: the next rl ps -a still lists the --rm container: %s", what, state)
			}
			checkConsistent(t, v, env, what)
			if !strings.HasPrefix(state, "none") {
				if r := rlEnv(t, v, env, "rm", "-f", name); r.Code != 0 {
					t.Errorf("%s: rl rm -f %s (%s):\n%v", what, name, state, r)
				}
			}
			// The name is free again.
			if r := rlEnv(t, v, env, "run", "--rm", "--name", name, "busybox", "true"); r.Code != 0 {
				t.Errorf("%s: rl run --name %s again:\n%v", what, name, r)
			}
		}
		t.Logf("states after kill -9 of rl run (--rm: %v) at 0..%v: %v", rm, time.Duration(tries)*step, states)
	}
	finalChecks(t, v, env, before, "kill -9 of rl run")
}

// TestFaultRmLeftover: a kill in the middle of making or deleting an --rm
// container leaves part of its directory, under a name out of the listing
// (made under it and renamed in whole, renamed out before it is deleted):
// rl ps -a does not show it, rl system check reports it and --repair
// removes it (with its run directory), as does the next --rm container's
// creation.
func TestFaultRmLeftover(t *testing.T) {
	u := full
	v, env := otherHome(t, u, registryAddr)
	rlOKEnv(t, v, env, "run", "--rm", "busybox", "true") // the store and its rl-rm
	rm := filepath.Join(v.Home, ".local", "share", "rl", "storage", "rl-rm")
	var info struct{ Store struct{ RunRoot string } }
	if err := json.Unmarshal([]byte(rlOKEnv(t, v, env, "info", "--format", "json").Stdout), &info); err != nil || info.Store.RunRoot == "" {
		t.Fatalf("rl info's run root: %v", err)
	}
	runRM := filepath.Join(info.Store.RunRoot, "rl-rm")
	ids := map[string]string{".gone-": strings.Repeat("ab", 32), ".new-": strings.Repeat("cd", 32)} // deleted, being made
	var left []string
	makeLeftovers := func() {
		left = nil
		for prefix, id := range ids {
			dir := filepath.Join(rm, prefix+id)
			run := filepath.Join(runRM, id)
			if r := runAs(t, v, runOpts{}, "/bin/sh", "-c", "mkdir -p "+dir+"/upper/usr "+dir+"/work/work "+run+" && echo x > "+dir+"/upper/usr/f"); r.Code != 0 {
				t.Fatalf("making the leftover: %v", r)
			}
			left = append(left, dir, run)
		}
	}
	gone := func(what string) {
		t.Helper()
		for _, dir := range left {
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s left %s: %v", what, dir, err)
			}
		}
	}

	makeLeftovers()
	if r := rlOKEnv(t, v, env, "ps", "-a", "-q"); r.Stdout != "" {
		t.Errorf("rl ps -a with the leftovers of --rm containers deleted and being made: want nothing\n%v", r)
	}
	r := rlEnv(t, v, env, "system", "check", "--quick")
	if r.Code != 125 || !strings.Contains(r.Stdout, "found container abababababab: directory of an --rm container whose deletion was interrupted") ||
		!strings.Contains(r.Stdout, "found container cdcdcdcdcdcd: directory of an --rm container whose creation was interrupted") ||
		!strings.Contains(r.Stderr, "rl system check --repair") {
		t.Errorf("rl system check with the leftovers: want both found, exit 125\n%v", r)
	}
	r = rlEnv(t, v, env, "system", "check", "--quick", "--repair")
	if r.Code != 0 || strings.Count(r.Stdout, "repaired container") != 2 {
		t.Errorf("rl system check --repair: want both repaired\n%v", r)
	}
	gone("rl system check --repair")

	makeLeftovers()
	rlOKEnv(t, v, env, "run", "--rm", "busybox", "true")
	gone("the next rl run --rm")
	checkStore(t, v.Home, "a deleted --rm container's leftover")
}

// TestFaultKillWhileRunning: kill -9 of a foreground rl run while the
// workload runs, and of a detached container's supervisor (an --rm one's
// too).
func TestFaultKillWhileRunning(t *testing.T) {
	u := full
	v, env := otherHome(t, u, registryAddr)
	rlOKEnv(t, v, env, "pull", "-q", "busybox")
	before := userPids(u)

	t.Run("foreground", func(t *testing.T) {
		b := startBG(t, v, env, "run", "--name", "fg", "busybox", "sh", "-c", "echo ready; exec sleep 1000")
		b.await(t, "ready")
		b.kill()
		what := "kill -9 of a foreground rl run"
		time.Sleep(500 * time.Millisecond)
		r := rlEnv(t, v, env, "ps", "-a", "--format", "{{.Names}} {{.State}}")
		t.Logf("%s: rl ps -a: %q, rl processes: %v", what, r.Stdout, rlProcs(v.Home))
		checkConsistent(t, v, env, what)
		if r := rlEnv(t, v, env, "rm", "-f", "fg"); r.Code != 0 {
			t.Errorf("%s: rl rm -f fg:\n%v", what, r)
		}
		if left, _ := waitNoRL(v.Home, 10*time.Second); len(left) > 0 {
			t.Errorf("%s: after rl rm -f, rl processes left: %v", what, left)
		}
		if r := rlEnv(t, v, env, "run", "--rm", "--name", "fg", "busybox", "true"); r.Code != 0 {
			t.Errorf("%s: the next run:\n%v", what, r)
		}
	})
	t.Run("foreground --rm at once", func(t *testing.T) {
		// Killed as soon as its workload runs: the supervisor may not
		// have gone on from the start yet (it recorded the container as
		// running before the workload could run). The next rl ps removes
		// the container and its control directory each time.
		for i := 0; i < 12; i++ {
			b := startBG(t, v, env, "run", "--rm", "--name", "fgrm", "busybox", "sh", "-c", "echo ready; exec sleep 1000")
			b.await(t, "ready")
			b.kill()
			what := fmt.Sprintf("kill -9 of a foreground rl run --rm as its workload started (%d)", i+1)
			if left, _ := waitNoRL(v.Home, 10*time.Second); len(left) > 0 {
				t.Fatalf("%s: rl processes left: %v", what, left)
			}
			if r := rlEnv(t, v, env, "ps", "-a", "--format", "{{.Names}} {{.State}}"); r.Code != 0 || r.Stdout != "" {
				t.Fatalf("%s: rl ps -a: want no container\n%v", what, r)
			}
			if r := rlEnv(t, v, env, "system", "check", "--quick"); r.Code != 0 || !strings.Contains(r.Stdout, "no problems found") {
				t.Fatalf("%s: rl system check:\n%v", what, r)
			}
		}
	})
	t.Run("detached", func(t *testing.T) {
		detach(t, v, env, "bg", "busybox", "sleep", "1000")
		st := inspect(t, v, env, "bg").State
		killPid(st.ConmonPid)
		what := "kill -9 of a detached container's supervisor"
		if !waitGone(st.Pid, 5*time.Second) {
			t.Errorf("%s: the workload %d lives 5 s later", what, st.Pid)
		}
		afterKill(t, v, env, before, what)
		if r := rlEnv(t, v, env, "rm", "bg"); r.Code != 0 {
			t.Errorf("%s: rl rm bg:\n%v", what, r)
		}
		if r := rlEnv(t, v, env, "run", "-d", "--name", "bg", "busybox", "sleep", "1000"); r.Code != 0 {
			t.Errorf("%s: the next run -d with the same name:\n%v", what, r)
		}
		if r := rlEnv(t, v, env, "rm", "-f", "bg"); r.Code != 0 {
			t.Errorf("%s: rl rm -f bg:\n%v", what, r)
		}
	})
	t.Run("detached --rm", func(t *testing.T) {
		// Its supervisor killed, an --rm container is removed by the
		// next rl ps, as --rm asked (and its name is free again).
		detach(t, v, env, "bgrm", "--rm", "busybox", "sleep", "1000")
		st := inspect(t, v, env, "bgrm").State
		killPid(st.ConmonPid)
		what := "kill -9 of a detached --rm container's supervisor"
		if !waitGone(st.Pid, 5*time.Second) {
			t.Errorf("%s: the workload %d lives 5 s later", what, st.Pid)
		}
		if r := rlEnv(t, v, env, "ps", "-a", "--format", "{{.Names}}"); r.Code != 0 || strings.Contains(r.Stdout, "bgrm") {
			t.Errorf("%s: rl ps -a: want no bgrm\n%v", what, r)
		}
		afterKill(t, v, env, before, what)
		if r := rlEnv(t, v, env, "run", "--rm", "--name", "bgrm", "busybox", "true"); r.Code != 0 {
			t.Errorf("%s: the next run with the same name:\n%v", what, r)
		}
	})
	finalChecks(t, v, env, before, "kill -9 while running")
}

// TestFaultKillDuringRm: kill -9 of rl rm while it removes a container with
// a big writable layer (copies of Debian's /usr).
func TestFaultKillDuringRm(t *testing.T) {
	needDebian(t)
	u := full
	v, env := otherHome(t, u, registryAddr)
	rlOKEnv(t, v, env, "pull", "-q", debianRef)
	storage := filepath.Join(v.Home, ".local", "share", "rl", "storage")
	base := dirSize(storage)
	before := userPids(u)
	hit := false
	for i, delay := range []time.Duration{150 * time.Millisecond, 50 * time.Millisecond, 400 * time.Millisecond, 20 * time.Millisecond} {
		name := fmt.Sprintf("big-%d", i)
		rlOKEnv(t, v, env, "run", "--name", name, debianRef, "sh", "-c", "cp -a /usr /usr2 && cp -a /usr /usr3")
		full := dirSize(storage)
		b := startBG(t, v, env, "rm", name)
		time.Sleep(delay)
		code := b.kill()
		what := fmt.Sprintf("kill -9 of rl rm after %v", delay)
		// rl-core may finish the removal on its own: that is fine.
		afterKillLinger(t, v, env, what, 30*time.Second)
		ps := rlEnv(t, v, env, "ps", "-a", "--format", "{{.Names}} {{.State}}")
		listed := strings.Contains(ps.Stdout, name+" ")
		t.Logf("%s (rl exit %d): store %d MB before rm (image alone %d MB), %d MB after the kill; listed: %v",
			what, code, full>>20, base>>20, dirSize(storage)>>20, listed)
		if code != -1 {
			continue // rm finished before the kill
		}
		hit = true
		if listed {
			if r := rlEnv(t, v, env, "rm", name); r.Code != 0 {
				t.Errorf("%s: the next rl rm %s:\n%v", what, name, r)
			}
		}
		checkConsistent(t, v, env, what)
		checkStore(t, v.Home, what)
		if after := dirSize(storage); after > base+(8<<20) {
			t.Errorf("%s: the store holds %d MB, the image alone %d MB: the removed container's files are left", what, after>>20, base>>20)
		}
		break
	}
	if !hit {
		t.Errorf("rl rm always finished before the kill")
	}
	if r := rlEnv(t, v, env, "run", "--rm", debianRef, "true"); r.Code != 0 {
		t.Errorf("the next run:\n%v", r)
	}
	finalChecks(t, v, env, before, "kill -9 of rl rm")
}

// TestFaultNoSpace: the store on a 20 MB tmpfs, rl pull of the Debian image
// (60 MB): a clear "no space" error, exit 125, and nothing half-written.
func TestFaultNoSpace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	needDebian(t)
	u := full
	dir := userDir(t, u, "nospace")
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=20m,mode=0755", "rl-nospace", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		for _, p := range rlProcs(u.Home) {
			pid, _ := strconv.Atoi(strings.Fields(p)[0])
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	if err := os.Chown(dir, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	g := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}
	start := time.Now()
	r := runAs(t, u, runOpts{Timeout: 3 * time.Minute}, rlBin, append(g, "pull", "-q", debianRef)...)
	t.Logf("CASE store-on-20MB-tmpfs: exit %d after %v: %s", r.Code, time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(r.Stderr))
	ls := errorLines(r.Stderr)
	if r.Code != 125 || len(ls) != 1 || !strings.Contains(strings.ToLower(ls[0]), "no space") {
		t.Errorf("want exit 125 and one line saying there is no space:\n%v", r)
	}
	if im := runAs(t, u, runOpts{}, rlBin, append(g, "images", "-q")...); im.Code != 0 || im.Stdout != "" {
		t.Errorf("rl images after the failed pull: want none:\n%v", im)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	used := int64(st.Blocks-st.Bfree) * st.Bsize
	t.Logf("the tmpfs: %d kB used after the failed pull", used>>10)
	if used > 1<<20 {
		var files []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil && fi.Size() > 64<<10 {
					files = append(files, fmt.Sprintf("%s (%d kB)", strings.TrimPrefix(p, dir), fi.Size()>>10))
				}
			}
			return nil
		})
		if len(files) > 10 {
			files = files[:10]
		}
		t.Errorf("the failed pull left %d kB on the store's filesystem (want < 1 MB); big files: %v", used>>10, files)
	}
	if left := rlProcs(u.Home); len(left) > 0 {
		t.Errorf("rl processes left: %v", left)
	}
}

// TestSystemCheckRunDir: rl system check finds nothing wrong in a store
// that was used (its run dir holds the store record and rl's caches beside
// the containers' control directories), finds a control directory no
// container owns, and --repair removes that and nothing else.
func TestSystemCheckRunDir(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		v, env := offlineStore(t, u)
		if r := rlEnv(t, v, env, "run", "--rm", "busybox", "true"); r.Code != 0 {
			t.Fatalf("%v", r)
		}
		if r := rlEnv(t, v, env, "system", "check"); r.Code != 0 || r.Stdout != "no problems found\n" {
			t.Fatalf("rl system check of a used, healthy store: want no problems:\n%v", r)
		}
		dirs, _ := filepath.Glob(filepath.Join(strings.TrimPrefix(env[0], "XDG_RUNTIME_DIR="), "rl", "root-*", "rl"))
		if len(dirs) != 1 {
			t.Fatalf("want one run dir of the store, found %q", dirs)
		}
		before, _ := os.ReadDir(dirs[0])
		stale := filepath.Join(dirs[0], "0123456789ab")
		if err := os.Mkdir(stale, 0o700); err != nil {
			t.Fatal(err)
		}
		if u.credential() != nil {
			os.Chown(stale, u.UID, u.GID)
		}
		if r := rlEnv(t, v, env, "system", "check"); r.Code != 125 || !strings.Contains(r.Stdout, "found run-dir 0123456789ab") || strings.Count(r.Stdout, "\n") != 1 {
			t.Fatalf("rl system check with a stale control directory: want it found, alone, and exit 125:\n%v", r)
		}
		if r := rlEnv(t, v, env, "system", "check", "--repair"); r.Code != 0 || !strings.Contains(r.Stdout, "repaired run-dir 0123456789ab") {
			t.Fatalf("rl system check --repair: %v", r)
		}
		after, _ := os.ReadDir(dirs[0])
		if names := func(es []os.DirEntry) (n []string) {
			for _, e := range es {
				n = append(n, e.Name())
			}
			return n
		}; !slices.Equal(names(before), names(after)) {
			t.Errorf("--repair changed the run dir's own entries: %q -> %q", names(before), names(after))
		}
		if r := rlEnv(t, v, env, "run", "--rm", "busybox", "echo", "still"); r.Code != 0 || r.Stdout != "still\n" {
			t.Errorf("rl run after the repair: %v", r)
		}

		// A control directory whose socket does not answer while an rl
		// process holds its container (starting it before the socket
		// listens, or ending it) is no problem; once the lock is free it is.
		if r := rlEnv(t, v, env, "run", "--name", "held", "busybox", "true"); r.Code != 0 {
			t.Fatalf("%v", r)
		}
		id := strings.TrimSpace(rlOKEnv(t, v, env, "inspect", "--format", "{{.Id}}", "held").Stdout)
		ctrDirs, _ := filepath.Glob(filepath.Join(v.Home, ".local", "share", "rl", "storage", "*-containers", id, "userdata"))
		if len(id) != 64 || len(ctrDirs) != 1 {
			t.Fatalf("container held (%q): its directory: found %q", id, ctrDirs)
		}
		lock, err := os.Open(ctrDirs[0])
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Close()
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		ctl := filepath.Join(dirs[0], id[:12])
		if err := os.Mkdir(ctl, 0o700); err != nil {
			t.Fatal(err)
		}
		if u.credential() != nil {
			os.Chown(ctl, u.UID, u.GID)
		}
		if r := rlEnv(t, v, env, "system", "check"); r.Code != 0 || r.Stdout != "no problems found\n" {
			t.Errorf("rl system check with the control directory of a container an rl process holds: want no problems:\n%v", r)
		}
		lock.Close()
		if r := rlEnv(t, v, env, "system", "check", "--repair"); r.Code != 0 || !strings.Contains(r.Stdout, "repaired run-dir "+id[:12]) {
			t.Errorf("rl system check --repair once the container is free: want its control directory repaired:\n%v", r)
		}
		rlOKEnv(t, v, env, "rm", "held")
	})
}

// TestRmStrayMountpoint: a container whose rootfs mount point (overlay's
// merged directory, not mounted) has entries in it is still removed by
// rl rm, and an --rm one by its supervisor: the storage library refuses to
// unmount over a directory that is not empty, which left such a container
// for good.
func TestRmStrayMountpoint(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		v, env := offlineStore(t, u)
		if r := rlEnv(t, v, env, "run", "--name", "stray", "busybox", "true"); r.Code != 0 {
			t.Fatalf("%v", r)
		}
		// The container's layer is the one with a lower layer.
		lowers, _ := filepath.Glob(filepath.Join(v.Home, ".local", "share", "rl", "storage", "overlay", "*", "lower"))
		if len(lowers) != 1 {
			t.Skipf("not one overlay container layer (driver: %s)", strings.TrimSpace(rlEnv(t, v, env, "info").Stdout))
		}
		merged := filepath.Join(filepath.Dir(lowers[0]), "merged")
		if r := runAs(t, v, runOpts{}, "/bin/sh", "-c", "mkdir -p "+merged+"/proc "+merged+"/etc && touch "+merged+"/etc/hosts"); r.Code != 0 {
			t.Fatalf("%v", r)
		}
		if r := rlEnv(t, v, env, "rm", "stray"); r.Code != 0 || r.Stdout != "stray\n" {
			t.Fatalf("rl rm of a container with entries in its mount point: %v", r)
		}
		if r := rlEnv(t, v, env, "ps", "-aq"); r.Stdout != "" {
			t.Errorf("rl ps -a after rl rm: %v", r)
		}
		if p := checkStore(t, v.Home, "rl rm"); len(p) > 0 {
			t.Errorf("store after rl rm: %q", p)
		}

		// The same while the container runs, for an --rm one (its
		// supervisor deletes it) and a kept one (its supervisor unmounts
		// it): an entry made in its mount point as the host sees it (the
		// rootfs is mounted over it only in the supervisor's namespace).
		for _, rm := range []bool{true, false} {
			args := []string{"run", "--name", "stray-run", "busybox", "sleep", "2"}
			if rm {
				args = append([]string{"run", "--rm"}, args[1:]...)
			}
			what := "rl " + strings.Join(args, " ")
			b := startBG(t, v, env, args...)
			// A kept one's mount point is its layer's merged directory;
			// an --rm one's is its own directory of rl's (docs/mounts.md).
			pattern, sub := filepath.Join(v.Home, ".local", "share", "rl", "storage", "overlay", "*", "lower"), "merged"
			if rm {
				// Not ".new-<id>": the directory being made, renamed to
				// "<id>-<name>" once whole (rootfs/ephemeral.go).
				pattern, sub = filepath.Join(v.Home, ".local", "share", "rl", "storage", "rl-rm", "[0-9a-f]*", "config.json"), ""
			}
			var merged2 string
			for deadline := time.Now().Add(10 * time.Second); merged2 == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if l, _ := filepath.Glob(pattern); len(l) == 1 {
					merged2 = filepath.Join(filepath.Dir(l[0]), sub)
				}
			}
			if merged2 == "" {
				t.Fatalf("%s: no container layer appeared:\n%s", what, b.output())
			}
			if r := runAs(t, v, runOpts{}, "/bin/sh", "-c", "touch "+merged2+"/stray"); r.Code != 0 {
				t.Fatalf("%v", r)
			}
			<-b.done
			if code := b.cmd.ProcessState.ExitCode(); code != 0 || strings.Contains(b.output(), "warning") {
				t.Errorf("%s with an entry in its mount point: want exit 0 and no warning, got %d:\n%s", what, code, b.output())
			}
			if !rm {
				rlOKEnv(t, v, env, "rm", "stray-run")
			}
			if r := rlEnv(t, v, env, "ps", "-aq"); r.Stdout != "" {
				t.Errorf("%s: want no container left: %v", what, r)
			}
			if p := checkStore(t, v.Home, what); len(p) > 0 {
				t.Errorf("store after %s: %q", what, p)
			}
		}
	})
}
