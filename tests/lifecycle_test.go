package tests

// Containers that live on (issue 4): rl run -d, logs, ps, inspect, stop,
// kill, wait, start, rm, --init, and state that survives the supervisor and
// the run directory.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var fullIDRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// lcRL is rl as u with env added (nil: none).
func lcRL(t *testing.T, u User, env []string, args ...string) Result {
	t.Helper()
	return runAs(t, u, runOpts{Env: env}, rlBin, args...)
}

// lcRLOK is lcRL that fails the test unless rl exits 0.
func lcRLOK(t *testing.T, u User, env []string, args ...string) Result {
	t.Helper()
	r := lcRL(t, u, env, args...)
	if r.Code != 0 || r.TimedOut {
		t.Fatalf("%v", r)
	}
	return r
}

// detach runs `rl run -d --name name ARGS...` as u (with env), wants exit 0
// within 5 s and a 64-hex id on stdout, and removes the container (rm -f)
// when the test ends. It returns the id.
func detach(t *testing.T, u User, env []string, name string, args ...string) string {
	t.Helper()
	t.Cleanup(func() { lcRL(t, u, env, "rm", "-f", name) })
	start := time.Now()
	r := lcRL(t, u, env, append([]string{"run", "-d", "--name", name}, args...)...)
	took := time.Since(start)
	if r.Code != 0 || r.TimedOut {
		t.Fatalf("rl run -d: want exit 0:\n%v", r)
	}
	id := strings.TrimSpace(r.Stdout)
	if !fullIDRe.MatchString(id) || r.Stdout != id+"\n" {
		t.Fatalf("rl run -d: want the full 64-hex id and nothing else on stdout:\n%v", r)
	}
	if took > 5*time.Second {
		t.Errorf("rl run -d took %v, want < 5 s", took)
	}
	return id
}

// lcInspect is the part of `rl inspect`'s JSON the tests read.
type lcInspect struct {
	ID    string `json:"Id"`
	Name  string `json:"Name"`
	State struct {
		Status     string
		Running    bool
		Pid        int
		ConmonPid  int
		ExitCode   int
		StartedAt  string
		FinishedAt string
	}
	Config struct {
		Env        []string
		Cmd        []string
		WorkingDir string
		User       string
		Hostname   string
		Tty        bool
	}
	HostConfig struct {
		AutoRemove bool
		Init       bool
	}
	Namespaces map[string]string
	LogPath    string
}

// inspect is `rl inspect name` parsed; it fails the test unless rl exits 0
// with a JSON array of one.
func inspect(t *testing.T, u User, env []string, name string) lcInspect {
	t.Helper()
	r := lcRLOK(t, u, env, "inspect", name)
	var v []lcInspect
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil || len(v) != 1 {
		t.Fatalf("rl inspect %s: want a JSON array of one (%v):\n%v", name, err, r)
	}
	return v[0]
}

// waitStatus polls `rl inspect` until State.Status is want; it fails the
// test after timeout, showing rl ps -a.
func waitStatus(t *testing.T, u User, env []string, name, want string, timeout time.Duration) lcInspect {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := inspect(t, u, env, name)
		if v.State.Status == want {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: State.Status %q %v after, want %q; rl ps -a:\n%v", name, v.State.Status, timeout, want, lcRL(t, u, env, "ps", "-a"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLogs polls `rl logs name` until its stdout matches re and returns it.
func waitLogs(t *testing.T, u User, name, re string, timeout time.Duration) Result {
	t.Helper()
	r, ok := pollLogs(t, u, nil, name, re, timeout)
	if !ok {
		t.Fatalf("rl logs %s: no %s after %v:\n%v", name, re, timeout, r)
	}
	return r
}

// pollLogs polls `rl logs name` (with env) until its stdout matches re, up
// to timeout, and returns the last result and whether it matched.
func pollLogs(t *testing.T, u User, env []string, name, re string, timeout time.Duration) (Result, bool) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		r := lcRL(t, u, env, "logs", name)
		if r.Code == 0 && rx.MatchString(r.Stdout) {
			return r, true
		}
		if time.Now().After(deadline) {
			return r, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// timedRL is rl as u and how long it took.
func timedRL(t *testing.T, u User, args ...string) (Result, time.Duration) {
	t.Helper()
	start := time.Now()
	r := rl(t, u, args...)
	return r, time.Since(start)
}

// waitGone waits up to timeout for pid to exit (or become a zombie).
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// TestLifecycleDetach: rl run -d returns at once with the id; the container
// runs on, its stdout and stderr in the log, apart.
func TestLifecycleDetach(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "detach-" + u.Name
		id := detach(t, u, nil, name, "busybox", "sh", "-c", "echo out; echo err >&2; sleep 1000")
		ps := rlOK(t, u, "ps")
		row := psRow(ps.Stdout, name)
		if row == "" || !strings.HasPrefix(row, id[:12]+" ") || !strings.Contains(row, "Up ") {
			t.Fatalf("rl ps: want %s, id %s, Up:\n%v", name, id[:12], ps)
		}
		v := inspect(t, u, nil, name)
		if v.ID != id || !v.State.Running || !alive(v.State.Pid) {
			t.Fatalf("rl inspect %s: want id %s, running, a live Pid: %+v", name, id, v.State)
		}
		// rl run -d has exited (rlOK returned): the container is still
		// there a moment later.
		time.Sleep(500 * time.Millisecond)
		if !alive(v.State.Pid) || !inspect(t, u, nil, name).State.Running {
			t.Fatalf("the container died with the rl run -d that started it")
		}
		r := waitLogs(t, u, name, "out", 10*time.Second)
		if r.Stdout != "out\n" || fmt.Sprint(errorLines(r.Stderr)) != "[err]" {
			t.Fatalf("rl logs: want out on stdout and err on stderr:\n%v", r)
		}
		// By id and by a unique id prefix too.
		for _, ref := range []string{id, id[:12], id[:5]} {
			if r := rl(t, u, "logs", ref); r.Code != 0 || r.Stdout != "out\n" {
				t.Errorf("rl logs %s:\n%v", ref, r)
			}
		}
	})
}

// TestLifecycleDetachSurvivesTerminal: a container started with rl run -d
// from a shell in a terminal survives the terminal closing (SIGHUP to the
// shell, the pty gone).
func TestLifecycleDetachSurvivesTerminal(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "hup-" + u.Name
		t.Cleanup(func() { rl(t, u, "rm", "-f", name) })
		m := tmuxRun(t, u, "/bin/sh")
		m.Prompt(`\$`)
		m.Type(fmt.Sprintf(`%s run -d --name %s busybox sh -c 'echo before; sleep 1000'; echo "RC $?"`, rlBin, name))
		screen := m.WaitFor(`(?m)^RC \d+$`, 30*time.Second)
		if !regexp.MustCompile(`(?m)^[0-9a-f]{64}\nRC 0$`).MatchString(screen) {
			t.Fatalf("rl run -d in a terminal: want the id and exit 0; screen:\n%s", screen)
		}
		m.tmux("kill-server")
		time.Sleep(time.Second)
		ps := rlOK(t, u, "ps")
		if row := psRow(ps.Stdout, name); row == "" || !strings.Contains(row, "Up ") {
			t.Fatalf("after the terminal closed, rl ps does not show %s running:\n%v", name, ps)
		}
		v := inspect(t, u, nil, name)
		if !v.State.Running || !alive(v.State.Pid) {
			t.Fatalf("after the terminal closed: %+v", v.State)
		}
		if r := rlOK(t, u, "logs", name); r.Stdout != "before\n" {
			t.Fatalf("rl logs:\n%v", r)
		}
	})
}

// TestLifecycleLogs: --tail N, -t, and -f that follows new lines and
// returns when the container stops.
func TestLifecycleLogs(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "logs-" + u.Name
		detach(t, u, nil, name, "busybox", "sh", "-c",
			"echo one; echo two; echo three; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo four; sleep 1000")
		waitLogs(t, u, name, "three", 10*time.Second)
		for _, c := range []struct{ n, want string }{{"1", "three\n"}, {"2", "two\nthree\n"}, {"10", "one\ntwo\nthree\n"}, {"0", ""}} {
			if r := rl(t, u, "logs", "--tail", c.n, name); r.Code != 0 || r.Stdout != c.want {
				t.Errorf("rl logs --tail %s: want %q:\n%v", c.n, c.want, r)
			}
		}
		r := rlOK(t, u, "logs", "-t", name)
		tsLine := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) (one|two|three)$`)
		lines := strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n")
		if len(lines) != 3 {
			t.Errorf("rl logs -t: want 3 lines:\n%v", r)
		}
		for _, l := range lines {
			if !tsLine.MatchString(l) {
				t.Errorf("rl logs -t: line %q has no RFC 3339 timestamp before the text", l)
			}
		}

		f := startRL(t, u, "logs", "-f", name)
		f.waitLine(t, "three", 10*time.Second)
		rlOK(t, u, "exec", name, "touch", "/tmp/go")
		f.waitLine(t, "four", 10*time.Second)
		// sleep as PID 1 ignores SIGTERM: kill it.
		rlOK(t, u, "kill", name)
		if code, out := f.wait(t, 10*time.Second); code != 0 {
			t.Errorf("rl logs -f: exit %d when the container stopped, want 0:\n%s", code, out)
		}
	})
}

// TestLifecycleStopTiming: sleep as PID 1 ignores SIGTERM, so rl stop -t 2
// kills it after 2 s (137); with --init the reaper forwards SIGTERM and
// sleep dies at once (143); --stop-timeout sets rl stop's default.
func TestLifecycleStopTiming(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		plain, init, short := "stop-"+u.Name, "stop-init-"+u.Name, "stop-short-"+u.Name
		detach(t, u, nil, plain, "busybox", "sleep", "1000")
		detach(t, u, nil, init, "--init", "busybox", "sleep", "1000")
		detach(t, u, nil, short, "--stop-timeout", "1", "busybox", "sleep", "1000")

		r, took := timedRL(t, u, "stop", "-t", "2", plain)
		if r.Code != 0 || r.Stdout != plain+"\n" {
			t.Errorf("rl stop -t 2: want exit 0 and the name:\n%v", r)
		}
		if took < 1900*time.Millisecond || took > 4*time.Second {
			t.Errorf("rl stop -t 2 %s (sleep ignores SIGTERM): took %v, want about 2 s", plain, took)
		}
		ps := rlOK(t, u, "ps", "-a")
		if row := psRow(ps.Stdout, plain); !strings.Contains(row, "Exited (137)") {
			t.Errorf("rl ps -a: want %s Exited (137):\n%v", plain, ps)
		}
		if w := rl(t, u, "wait", plain); w.Code != 0 || w.Stdout != "137\n" {
			t.Errorf("rl wait of a stopped container: want 137:\n%v", w)
		}
		// Stopping a stopped container succeeds.
		if r := rl(t, u, "stop", plain); r.Code != 0 {
			t.Errorf("rl stop of a stopped container: want exit 0:\n%v", r)
		}

		r, took = timedRL(t, u, "stop", init)
		if r.Code != 0 || took > time.Second {
			t.Errorf("rl stop of an --init container: want exit 0 in < 1 s, took %v:\n%v", took, r)
		}
		if w := rl(t, u, "wait", init); w.Code != 0 || w.Stdout != "143\n" {
			t.Errorf("rl wait: want 143 (SIGTERM reached sleep through the reaper):\n%v", w)
		}
		if v := inspect(t, u, nil, init); v.State.Status != "exited" || v.State.ExitCode != 143 || !v.HostConfig.Init {
			t.Errorf("rl inspect %s: want exited 143 and HostConfig.Init: %+v %+v", init, v.State, v.HostConfig)
		}

		r, took = timedRL(t, u, "stop", short)
		if r.Code != 0 || took < 800*time.Millisecond || took > 3*time.Second {
			t.Errorf("--stop-timeout 1 then a plain rl stop: want about 1 s, took %v:\n%v", took, r)
		}
	})
}

// TestLifecycleWait: rl wait blocks until the container exits and prints
// its code; for several containers, one code each.
func TestLifecycleWait(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		a, b := "wait-a-"+u.Name, "wait-b-"+u.Name
		detach(t, u, nil, a, "busybox", "sh", "-c", "sleep 1; exit 7")
		detach(t, u, nil, b, "busybox", "sh", "-c", "exit 3")
		r, took := timedRL(t, u, "wait", a, b)
		if r.Code != 0 || r.Stdout != "7\n3\n" {
			t.Errorf("rl wait a b: want 7 and 3:\n%v", r)
		}
		if took < 500*time.Millisecond {
			t.Errorf("rl wait returned after %v, before the container's sleep 1 ended", took)
		}
	})
}

// TestLifecycleKill: rl kill -s USR1 reaches the workload's trap; rl kill
// (KILL) leaves it exited 137; killing a stopped container is an error.
func TestLifecycleKill(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "kill-" + u.Name
		detach(t, u, nil, name, "busybox", "sh", "-c", `trap "echo got-usr1" USR1; echo ready; while true; do sleep 0.1; done`)
		waitLogs(t, u, name, "ready", 10*time.Second)
		if r := rl(t, u, "kill", "-s", "USR1", name); r.Code != 0 || r.Stdout != name+"\n" {
			t.Errorf("rl kill -s USR1: want exit 0 and the name:\n%v", r)
		}
		waitLogs(t, u, name, "got-usr1", 5*time.Second)
		if !inspect(t, u, nil, name).State.Running {
			t.Fatalf("USR1 (trapped) stopped the container")
		}
		rlOK(t, u, "kill", name)
		v := waitStatus(t, u, nil, name, "exited", 5*time.Second)
		if v.State.ExitCode != 137 || v.State.Running {
			t.Errorf("after rl kill: want exited 137: %+v", v.State)
		}
		wantOneLineError(t, rl(t, u, "kill", name), "not running")
		wantOneLineError(t, rl(t, u, "kill", "-s", "NOSUCHSIG", name), "NOSUCHSIG")
	})
}

// TestLifecycleStart: a stopped container starts again, detached, with the
// same log; rl start -a waits and returns the workload's code.
func TestLifecycleStart(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "start-" + u.Name
		id := detach(t, u, nil, name, "busybox", "sh", "-c", "echo started; exec sleep 1000")
		waitLogs(t, u, name, "started", 10*time.Second)
		rlOK(t, u, "stop", "-t", "0", name)
		waitStatus(t, u, nil, name, "exited", 5*time.Second)

		r, took := timedRL(t, u, "start", name)
		if r.Code != 0 || took > 5*time.Second {
			t.Fatalf("rl start of a stopped container: want exit 0 at once (detached), took %v:\n%v", took, r)
		}
		ps := rlOK(t, u, "ps")
		if row := psRow(ps.Stdout, name); row == "" || !strings.HasPrefix(row, id[:12]+" ") || !strings.Contains(row, "Up ") {
			t.Fatalf("rl ps after rl start: want %s running:\n%v", name, ps)
		}
		waitLogs(t, u, name, `^started\nstarted\n$`, 10*time.Second)
		if v := inspect(t, u, nil, name); !v.State.Running || !alive(v.State.Pid) {
			t.Fatalf("after rl start: %+v", v.State)
		}

		short := "start-a-" + u.Name
		t.Cleanup(func() { rl(t, u, "rm", "-f", short) })
		if r := rl(t, u, "run", "--name", short, "busybox", "sh", "-c", "echo hi; exit 4"); r.Code != 4 {
			t.Fatalf("want exit 4:\n%v", r)
		}
		r = rl(t, u, "start", "-a", short)
		if r.Code != 4 || r.Stdout != "hi\n" {
			t.Errorf("rl start -a of `sh -c 'echo hi; exit 4'`: want hi and exit 4:\n%v", r)
		}
		if v := inspect(t, u, nil, short); v.State.Status != "exited" || v.State.ExitCode != 4 {
			t.Errorf("after rl start -a: want exited 4: %+v", v.State)
		}
	})
}

// TestLifecycleInitReapsZombies: orphans whose parent exits become PID 1's
// children. The reaper of --init reaps them; sleep as PID 1 does not, so
// their zombies stay.
func TestLifecycleInitReapsZombies(t *testing.T) {
	// Each (sleep 0.1 &) is a subshell that forks sleep and exits: sleep
	// is orphaned to PID 1 and exits 0.1 s later. exec makes sleep PID 1
	// (or the reaper's child) in place of sh, which would reap them.
	script := "for i in 1 2 3 4 5; do (sleep 0.1 &) ; done; exec sleep 1000"
	zombies := func(t *testing.T, u User, name string) (int, string) {
		r := rlOK(t, u, "exec", name, "ps", "-o", "stat,pid,ppid,comm")
		n := 0
		for _, l := range strings.Split(r.Stdout, "\n")[1:] {
			if strings.HasPrefix(l, "Z") {
				n++
			}
		}
		return n, r.Stdout
	}
	forEachUser(t, func(t *testing.T, u User) {
		withInit, without := "zombie-init-"+u.Name, "zombie-"+u.Name
		detach(t, u, nil, withInit, "--init", "busybox", "sh", "-c", script)
		detach(t, u, nil, without, "busybox", "sh", "-c", script)
		time.Sleep(1500 * time.Millisecond)
		if n, ps := zombies(t, u, withInit); n != 0 {
			t.Errorf("--init: %d zombies 1.5 s after they exited:\n%s", n, ps)
		} else {
			t.Logf("--init:\n%s", ps)
		}
		n, ps := zombies(t, u, without)
		t.Logf("without --init (sleep is PID 1):\n%s", ps)
		if n != 5 {
			t.Errorf("without --init: want the 5 orphans' zombies (sleep as PID 1 does not reap), have %d:\n%s", n, ps)
		}
	})
}

// TestLifecycleNameUnique: a name in use is a one-line error, and the
// running container with it is untouched.
func TestLifecycleNameUnique(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "uniq-" + u.Name
		id := detach(t, u, nil, name, "busybox", "sleep", "1000")
		before := inspect(t, u, nil, name)
		ids := psIDs(t, u)
		wantOneLineError(t, rl(t, u, "run", "-d", "--name", name, "busybox", "true"), regexp.QuoteMeta(name))
		wantOneLineError(t, rl(t, u, "run", "--name", name, "busybox", "true"), regexp.QuoteMeta(name))
		after := inspect(t, u, nil, name)
		if after.ID != id || !after.State.Running || after.State.Pid != before.State.Pid || after.State.StartedAt != before.State.StartedAt {
			t.Errorf("the first %s changed: before %+v, after %+v", name, before.State, after.State)
		}
		if now := psIDs(t, u); now != ids {
			t.Errorf("rl ps -a -q was %q, now %q", ids, now)
		}
	})
}

// TestLifecycleIDPrefix: a prefix that fits two ids is "ambiguous"; a
// unique one works.
func TestLifecycleIDPrefix(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		// 17 containers have two ids with the same first hex digit.
		byFirst := map[byte][]string{}
		var prefix string
		for i := 0; i < 17 && prefix == ""; i++ {
			name := fmt.Sprintf("amb%d-%s", i, u.Name)
			t.Cleanup(func() { rl(t, u, "rm", "-f", name) })
			rlOK(t, u, "run", "--name", name, "busybox", "true")
			id := inspect(t, u, nil, name).ID
			byFirst[id[0]] = append(byFirst[id[0]], id)
			if len(byFirst[id[0]]) == 2 {
				prefix = id[:1]
			}
		}
		ids := byFirst[prefix[0]]
		n := 1
		for ids[0][:n] == ids[1][:n] {
			n++
		}
		ambiguous := ids[0][:n-1]
		before := psIDs(t, u)
		for _, cmd := range [][]string{{"inspect"}, {"rm"}, {"logs"}, {"start"}, {"wait"}} {
			r := rl(t, u, append(cmd, ambiguous)...)
			if cmd[0] == "inspect" && r.Stdout == "[]\n" {
				r.Stdout = "" // docker and podman print an empty array too
			}
			wantOneLineError(t, r, "ambiguous")
		}
		if after := psIDs(t, u); after != before {
			t.Errorf("an ambiguous prefix changed the containers: rl ps -a -q was %q, now %q", before, after)
		}
		unique := ids[0][:n]
		if got := inspect(t, u, nil, unique).ID; got != ids[0] {
			t.Errorf("rl inspect of the unique prefix %s: Id %s, want %s", unique, got, ids[0])
		}
		if r := rl(t, u, "logs", unique); r.Code != 0 {
			t.Errorf("rl logs of the unique prefix %s:\n%v", unique, r)
		}
	})
}

// TestLifecycleUnknownContainer: every command on a container that does
// not exist is a one-line error, exit 125.
func TestLifecycleUnknownContainer(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		for _, cmd := range [][]string{{"stop"}, {"kill"}, {"wait"}, {"logs"}, {"inspect"}, {"rm"}, {"rm", "-f"}, {"start"}, {"exec", "nosuchctr", "true"}} {
			args := append([]string{}, cmd...)
			if cmd[0] != "exec" {
				args = append(args, "nosuchctr")
			}
			r := rl(t, u, args...)
			if cmd[0] == "inspect" && r.Stdout == "[]\n" {
				r.Stdout = ""
			}
			wantOneLineError(t, r, "nosuchctr")
		}
	})
}

// TestLifecycleRmRunning: rl rm of a running container refuses and leaves it
// running; rl rm -f removes it and ends its processes, supervisor included.
func TestLifecycleRmRunning(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "rm-" + u.Name
		detach(t, u, nil, name, "busybox", "sleep", "1000")
		v := inspect(t, u, nil, name)
		wantOneLineError(t, rl(t, u, "rm", name), "running")
		if w := inspect(t, u, nil, name); !w.State.Running || w.State.Pid != v.State.Pid || !alive(v.State.Pid) {
			t.Fatalf("rl rm (refused) touched the running container: %+v", w.State)
		}
		if v.State.ConmonPid <= 0 || !alive(v.State.ConmonPid) {
			t.Errorf("rl inspect: State.ConmonPid %d is not a live process", v.State.ConmonPid)
		}
		r, took := timedRL(t, u, "rm", "-f", name)
		if r.Code != 0 {
			t.Fatalf("rl rm -f of a running container:\n%v", r)
		}
		t.Logf("rl rm -f of a running sleep took %v", took)
		if ps := rlOK(t, u, "ps", "-a"); psRow(ps.Stdout, name) != "" {
			t.Errorf("rl rm -f: still listed:\n%v", ps)
		}
		if !waitGone(v.State.Pid, 5*time.Second) {
			t.Errorf("rl rm -f: the workload (pid %d) still runs", v.State.Pid)
		}
		if v.State.ConmonPid > 0 && !waitGone(v.State.ConmonPid, 5*time.Second) {
			t.Errorf("rl rm -f: the supervisor (pid %d) still runs", v.State.ConmonPid)
		}
	})
}

// TestLifecycleSupervisorKilled: kill -9 of a detached container's
// supervisor: the container is reported exited, not running forever, and
// can be removed, leaving nothing running. Also for a workload that is not
// the container's root (--user, --userns keep-id, or su in the workload
// itself, as su-exec and gosu entry points do): the kernel clears the
// parent-death signal of a process whose user changes, so its death does
// not follow from the supervisor's.
func TestLifecycleSupervisorKilled(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		sleep := []string{"busybox", "sleep", "1000"}
		for _, c := range []struct {
			name string
			args []string
		}{
			{"root", sleep},
			{"user", append([]string{"--user", "1000:1000"}, sleep...)},
			{"keep-id", append([]string{"--userns", "keep-id"}, sleep...)},
			{"su", []string{"busybox", "su", "tester", "-c", "exec sleep 1000"}},
		} {
			if (c.name == "user" || c.name == "su") && u.Name == single.Name {
				continue // one id in the container: only root
			}
			t.Run(c.name, func(t *testing.T) { supervisorKilled(t, u, "conmon-"+c.name+"-"+u.Name, c.args) })
		}
	})
}

func supervisorKilled(t *testing.T, u User, name string, args []string) {
	detach(t, u, nil, name, args...)
	v := inspect(t, u, nil, name)
	// podman's template for it.
	r := rl(t, u, "inspect", "-f", "{{.State.ConmonPid}}", name)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != strconv.Itoa(v.State.ConmonPid) {
		t.Errorf("rl inspect -f '{{.State.ConmonPid}}': want %d (as in the JSON):\n%v", v.State.ConmonPid, r)
	}
	sup := v.State.ConmonPid
	if sup <= 1 || !alive(sup) || !alive(v.State.Pid) {
		t.Fatalf("no live supervisor and workload pids in rl inspect: %+v", v.State)
	}
	if err := killPid(sup); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var status string
	zombie := false
	for time.Since(start) < 10*time.Second {
		ps := rlOK(t, u, "ps", "-a", "--format", "{{.Names}} {{.State}}")
		status = ""
		for _, l := range strings.Split(ps.Stdout, "\n") {
			if n, s, _ := strings.Cut(l, " "); n == name {
				status = s
			}
		}
		if status != "running" {
			break
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", sup)); err == nil {
			if _, rest, _ := strings.Cut(string(b), ") "); strings.HasPrefix(rest, "Z") {
				zombie = true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)
	if status == "running" || took > time.Second {
		t.Errorf("after kill -9 of the supervisor: rl ps -a shows %s %q after %v, want not running within 1 s (while it said running, the dead supervisor was a zombie not yet reaped: %v)",
			name, status, took.Round(10*time.Millisecond), zombie)
	}
	if status == "exited" && alive(v.State.Pid) {
		t.Errorf("rl ps -a says exited but the workload (pid %d) still runs", v.State.Pid)
	}
	rmr := rl(t, u, "rm", name)
	if rmr.Code != 0 || rmr.Stdout != name+"\n" {
		t.Errorf("rl rm after the supervisor died: want exit 0 and the name as given (as docker and podman print it):\n%v", rmr)
		rl(t, u, "rm", "-f", name)
	}
	if ps := rlOK(t, u, "ps", "-a"); psRow(ps.Stdout, name) != "" {
		t.Errorf("still listed after rl rm:\n%v", ps)
	}
	if !waitGone(v.State.Pid, 5*time.Second) {
		t.Errorf("the workload (pid %d) still runs after its supervisor was killed and the container removed", v.State.Pid)
	}
}

// waitReaped waits up to timeout for /proc/PID to go (exited and reaped).
func waitReaped(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killPid sends SIGKILL to pid.
func killPid(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// TestLifecycleOtherRunDir: a container started with one run dir
// (XDG_RUNTIME_DIR set, as in a desktop session) is reached from an rl with
// another (none set: after su, in cron): exec, kill and stop act on it,
// as its state says where its supervisor listens; before, stop printed the
// name and left it running.
func TestLifecycleOtherRunDir(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		xdg := []string{"XDG_RUNTIME_DIR=" + userDir(t, u, "xdg")}
		name := "otherrun-" + u.Name
		detach(t, u, xdg, name, "busybox", "sleep", "300")
		if r := lcRL(t, u, nil, "exec", name, "echo", "reached"); r.Code != 0 || r.Stdout != "reached\n" {
			t.Errorf("rl exec from another run dir:\n%v", r)
		}
		lcRLOK(t, u, nil, "kill", "-s", "WINCH", name)
		lcRLOK(t, u, nil, "stop", "-t", "0", name)
		if c := inspect(t, u, nil, name); c.State.Status != "exited" {
			t.Errorf("rl stop from another run dir: the container is %q, want exited", c.State.Status)
		}
	})
}

// TestLifecycleStaleRunDir: after a reboot (processes gone, run dir gone)
// rl ps -a lists the containers as exited; they start and rm.
func TestLifecycleStaleRunDir(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		// A store and run dir of the test's own, so deleting the run dir
		// touches nothing else.
		v, env := otherHome(t, u, registryAddr)
		runDir := filepath.Join(strings.TrimPrefix(env[0], "XDG_RUNTIME_DIR="), "rl")
		stopped, exited, crashed := "stale-stopped", "stale-exited", "stale-crashed"
		detach(t, v, env, stopped, "busybox", "sh", "-c", "echo up; exec sleep 1000")
		t.Cleanup(func() { lcRL(t, v, env, "rm", "-f", exited) })
		lcRLOK(t, v, env, "run", "--name", exited, "busybox", "true")
		detach(t, v, env, crashed, "busybox", "sleep", "1000")
		// Its word before the stop, which could kill it before it says it
		// on a busy machine.
		pollLogs(t, v, env, stopped, "^up\n$", 10*time.Second)
		lcRLOK(t, v, env, "stop", "-t", "0", stopped)
		// The crash: the supervisor and the workload die with the machine.
		c := inspect(t, v, env, crashed)
		killPid(c.State.ConmonPid)
		killPid(c.State.Pid)
		// After a reboot they are not even zombies.
		for _, pid := range []int{c.State.ConmonPid, c.State.Pid} {
			if !waitReaped(pid, 10*time.Second) {
				t.Fatalf("pid %d not reaped 10 s after kill -9", pid)
			}
		}
		if _, err := os.Stat(runDir); err != nil {
			t.Fatalf("the run dir: %v", err)
		}
		if err := os.RemoveAll(runDir); err != nil {
			t.Fatal(err)
		}

		ps := lcRL(t, v, env, "ps", "-a", "--format", "{{.Names}} {{.State}}")
		if ps.Code != 0 {
			t.Fatalf("rl ps -a with the run dir gone:\n%v", ps)
		}
		for _, n := range []string{stopped, exited, crashed} {
			if !regexp.MustCompile(`(?m)^` + n + ` exited$`).MatchString(ps.Stdout) {
				t.Errorf("with the run dir gone: want %s exited:\n%v", n, ps)
			}
		}
		if r := lcRL(t, v, env, "start", stopped); r.Code != 0 {
			t.Fatalf("rl start with the run dir gone:\n%v", r)
		}
		if w := waitStatus(t, v, env, stopped, "running", 5*time.Second); !alive(w.State.Pid) {
			t.Errorf("rl start: not running: %+v", w.State)
		}
		if r, _ := pollLogs(t, v, env, stopped, "^up\nup\n$", 10*time.Second); r.Code != 0 || r.Stdout != "up\nup\n" {
			t.Errorf("rl logs after the restart: want up twice:\n%v", r)
		}
		for _, n := range []string{exited, crashed} {
			if r := lcRL(t, v, env, "rm", n); r.Code != 0 {
				t.Errorf("rl rm with the run dir gone:\n%v", r)
			}
		}
		lcRLOK(t, v, env, "rm", "-f", stopped)
		if ps := lcRLOK(t, v, env, "ps", "-a", "-q"); ps.Stdout != "" {
			t.Errorf("containers left:\n%v", ps)
		}
	})
}

// TestLifecycleConcurrentStart: two rl start at once: one starts the
// container, the other fails cleanly; it runs once.
func TestLifecycleConcurrentStart(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "race-" + u.Name
		detach(t, u, nil, name, "busybox", "sh", "-c", "echo started; exec sleep 1000")
		waitLogs(t, u, name, "started", 10*time.Second)
		const rounds = 5
		for i := 0; i < rounds; i++ {
			rlOK(t, u, "stop", "-t", "0", name)
			var rs [2]Result
			var wg sync.WaitGroup
			for j := range rs {
				wg.Add(1)
				go func(j int) {
					defer wg.Done()
					rs[j] = rl(t, u, "start", name)
				}(j)
			}
			wg.Wait()
			ok, failed := 0, 0
			for _, r := range rs {
				switch {
				case r.Code == 0:
					ok++
				case r.Code == 125 && len(errorLines(r.Stderr)) == 1:
					failed++
				}
			}
			if ok != 1 || failed != 1 {
				t.Errorf("round %d: two rl start at once: want one exit 0 and one exit 125 with a line of error:\n%v\n%v", i, rs[0], rs[1])
			}
			v := waitStatus(t, u, nil, name, "running", 5*time.Second)
			if !alive(v.State.Pid) {
				t.Errorf("round %d: inspect says running, pid %d is not", i, v.State.Pid)
			}
			// The workload's word before the next round's stop, which
			// could kill it before it says it on a busy machine.
			waitLogs(t, u, name, "^(started\n){"+strconv.Itoa(2+i)+"}", 10*time.Second)
		}
		// Each start ran the workload once: 1 + rounds "started".
		want := strings.Repeat("started\n", 1+rounds)
		waitLogs(t, u, name, "^"+want+"$", 5*time.Second)
	})
}

// TestLifecyclePsFormat: rl ps --format json, Go templates, -q and
// --no-trunc.
func TestLifecyclePsFormat(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		up, down := "fmt-up-"+u.Name, "fmt-down-"+u.Name
		id := detach(t, u, nil, up, "busybox", "sleep", "1000")
		t.Cleanup(func() { rl(t, u, "rm", "-f", down) })
		rl(t, u, "run", "--name", down, "busybox", "sh", "-c", "exit 9")
		v := inspect(t, u, nil, up)

		r := rlOK(t, u, "ps", "--format", "json")
		var rows []map[string]any
		if err := json.Unmarshal([]byte(r.Stdout), &rows); err != nil {
			t.Fatalf("rl ps --format json: %v:\n%v", err, r)
		}
		var row map[string]any
		for _, m := range rows {
			if names(m["Names"]) == up {
				row = m
			}
			if names(m["Names"]) == down {
				t.Errorf("rl ps --format json (no -a) lists the exited %s", down)
			}
		}
		if row == nil {
			t.Fatalf("rl ps --format json: no row with Names %s:\n%v", up, r)
		}
		for _, k := range []string{"Id", "Image", "Command", "Created", "Status", "State", "Names", "Ports", "ExitCode", "Pid"} {
			if _, ok := row[k]; !ok {
				t.Errorf("rl ps --format json: no %s in %v", k, row)
			}
		}
		if s, _ := row["Id"].(string); s == "" || !strings.HasPrefix(id, s) {
			t.Errorf("Id %v is not (a prefix of) %s", row["Id"], id)
		}
		if row["Image"] != "busybox" || row["State"] != "running" || !strings.HasPrefix(fmt.Sprint(row["Status"]), "Up ") ||
			!strings.Contains(fmt.Sprint(row["Command"]), "sleep") || fmt.Sprint(row["Pid"]) != strconv.Itoa(v.State.Pid) {
			t.Errorf("rl ps --format json: want busybox, running, Up, sleep, Pid %d: %v", v.State.Pid, row)
		}

		r = rlOK(t, u, "ps", "-a", "--format", "{{.Names}} {{.State}} {{.ExitCode}} {{.Image}}")
		for _, want := range []string{up + " running 0 busybox", down + " exited 9 busybox"} {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).MatchString(r.Stdout) {
				t.Errorf("rl ps -a --format: want a line %q:\n%v", want, r)
			}
		}
		r = rlOK(t, u, "ps", "--format", "{{.ID}}|{{.Command}}|{{.Pid}}|{{.Names}}", "--no-trunc")
		if !strings.Contains(r.Stdout, id+"|") || !strings.Contains(r.Stdout, fmt.Sprintf("|%d|%s\n", v.State.Pid, up)) {
			t.Errorf("rl ps --format --no-trunc: want the full id %s and pid %d:\n%v", id, v.State.Pid, r)
		}
		r = rlOK(t, u, "ps", "-q")
		if !regexp.MustCompile(`(?m)^`+id[:12]+`$`).MatchString(r.Stdout) || strings.Contains(r.Stdout, " ") {
			t.Errorf("rl ps -q: want the short id %s alone on a line:\n%v", id[:12], r)
		}
		r = rlOK(t, u, "ps", "-q", "--no-trunc")
		if !regexp.MustCompile(`(?m)^` + id + `$`).MatchString(r.Stdout) {
			t.Errorf("rl ps -q --no-trunc: want %s:\n%v", id, r)
		}
	})
}

// names is a ps JSON Names field: a string, or podman's array of them.
func names(v any) string {
	switch n := v.(type) {
	case string:
		return n
	case []any:
		if len(n) == 1 {
			return fmt.Sprint(n[0])
		}
	}
	return fmt.Sprint(v)
}

// TestLifecycleInspect: rl inspect's JSON for a running container: state,
// pid, config, namespaces, log path; -f templates.
func TestLifecycleInspect(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "insp-" + u.Name
		id := detach(t, u, nil, name, "-e", "FOO=bar", "-e", "PATH=/bin", "-w", "/tmp", "--hostname", "inspected", "busybox", "sleep", "1000")
		v := inspect(t, u, nil, name)
		if v.ID != id || v.Name != name || !v.State.Running || v.State.Status != "running" || v.State.Pid <= 0 || !alive(v.State.Pid) {
			t.Errorf("want id %s, name %s, running with a live pid: %+v", id, name, v)
		}
		if fmt.Sprint(v.Config.Cmd) != "[sleep 1000]" || v.Config.WorkingDir != "/tmp" || v.Config.Hostname != "inspected" || v.HostConfig.Init {
			t.Errorf("Config: want Cmd [sleep 1000], WorkingDir /tmp, Hostname inspected, no Init: %+v %+v", v.Config, v.HostConfig)
		}
		hasEnv := false
		for _, e := range v.Config.Env {
			hasEnv = hasEnv || e == "FOO=bar"
		}
		if !hasEnv || !slices.Contains(v.Config.Env, "PATH=/bin") || strings.Count(strings.Join(v.Config.Env, "\n"), "PATH=") != 1 {
			t.Errorf("Config.Env: want FOO=bar, and -e's PATH=/bin in place of the image's: %q", v.Config.Env)
		}
		for _, k := range []string{"net", "pid", "ipc", "uts", "cgroup", "mnt", "user"} {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", v.State.Pid, k))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(v.Namespaces[k], link) {
				t.Errorf("Namespaces[%s] = %q, the workload's is %s", k, v.Namespaces[k], link)
			}
		}
		if st, err := os.Stat(v.LogPath); err != nil || st.IsDir() {
			t.Errorf("LogPath %q: %v", v.LogPath, err)
		}
		r := rlOK(t, u, "inspect", "-f", "{{.State.Pid}} {{.State.Running}} {{.Name}}", name)
		if r.Stdout != fmt.Sprintf("%d true %s\n", v.State.Pid, name) {
			t.Errorf("rl inspect -f: want %d true %s:\n%v", v.State.Pid, name, r)
		}
		// Templates take the JSON's (podman's) names.
		r = rl(t, u, "inspect", "-f", "{{.Id}} {{.State.ConmonPid}}", name)
		if want := fmt.Sprintf("%s %d\n", id, v.State.ConmonPid); r.Code != 0 || r.Stdout != want {
			t.Errorf("rl inspect -f '{{.Id}} {{.State.ConmonPid}}': want %q (the JSON's Id and State.ConmonPid):\n%v", want, r)
		}
		// Docker's address fields are there, empty as podman's are for a
		// slirp4netns container; SandboxKey is the network namespace.
		r = rlOK(t, u, "inspect", "-f", "[{{.NetworkSettings.IPAddress}}] [{{.NetworkSettings.Gateway}}] {{.NetworkSettings.SandboxKey}}", name)
		if want := fmt.Sprintf("[] [] /proc/%d/ns/net\n", v.State.Pid); r.Stdout != want {
			t.Errorf("rl inspect -f NetworkSettings: want %q\n%v", want, r)
		}
		rlOK(t, u, "stop", "-t", "0", name)
		v = inspect(t, u, nil, name)
		if v.State.Running || v.State.Status != "exited" || v.State.ExitCode != 137 || v.State.Pid != 0 {
			t.Errorf("after rl stop: want exited 137, Pid 0: %+v", v.State)
		}
		if r := rlOK(t, u, "inspect", "-f", "[{{.NetworkSettings.SandboxKey}}]", name); r.Stdout != "[]\n" {
			t.Errorf("rl inspect -f SandboxKey of a stopped container: want it empty\n%v", r)
		}
	})
}

// storeRecords reads the storage library's container and layer records
// and lists its overlay directory: what an --rm container must not touch.
func storeRecords(t *testing.T, u User) string {
	t.Helper()
	root := filepath.Join(u.Home, ".local/share/rl/storage")
	var b strings.Builder
	for _, f := range []string{"overlay-containers/containers.json", "overlay-containers/volatile-containers.json",
		"overlay-layers/layers.json", "overlay-layers/volatile-layers.json"} {
		data, _ := os.ReadFile(filepath.Join(root, f))
		if string(data) == "[]" {
			data = nil // none, as when the file was never written
		}
		fmt.Fprintf(&b, "%s: %s\n", f, data)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "overlay"))
	for _, e := range entries {
		fmt.Fprintf(&b, "overlay/%s\n", e.Name())
	}
	return b.String()
}

// rmDirs lists the --rm containers' directories in u's store.
func rmDirs(u User) []string {
	m, _ := filepath.Glob(filepath.Join(u.Home, ".local/share/rl/storage/rl-rm/*"))
	return m
}

// TestLifecycleRmOutsideRecords: an --rm container is not a record of the
// storage library (no containers.json or layers.json write, no layer
// directory), yet rl sees it as any container while it runs: rl ps, exec,
// inspect; its name is unique across both kinds; the image under it
// cannot be removed; once it exits nothing of it is left. With its
// supervisor killed, rl ps -a removes what is left.
func TestLifecycleRmOutsideRecords(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		rlOK(t, u, "run", "--rm", "busybox", "true") // the store exists
		before, dirs := storeRecords(t, u), rmDirs(u)
		r := rlOK(t, u, "run", "--rm", "busybox", "sh", "-c", "echo made > /new; cat /new; rm /bin/true; ls /bin/true || echo gone")
		if r.Stdout != "made\ngone\n" {
			t.Errorf("writing in an --rm container's rootfs: want made, gone:\n%v", r)
		}
		if after := storeRecords(t, u); after != before {
			t.Errorf("rl run --rm changed the storage library's records:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if now := rmDirs(u); len(now) != len(dirs) {
			t.Errorf("rl run --rm left a directory: %v, before %v", now, dirs)
		}
		if r := rlOK(t, u, "run", "--rm", "busybox", "ls", "/bin/true"); r.Stdout != "/bin/true\n" {
			t.Errorf("the next --rm container sees the last one's change:\n%v", r)
		}

		name, kept := "rmd-"+u.Name, "kept-"+u.Name
		id := detach(t, u, nil, name, "--rm", "busybox", "sleep", "1000")
		if during := storeRecords(t, u); during != before {
			t.Errorf("a running --rm container is in the storage library's records:\nbefore:\n%s\nduring:\n%s", before, during)
		}
		if now := rmDirs(u); len(now) != len(dirs)+1 {
			t.Errorf("want one directory more for the running --rm container: %v, before %v", now, dirs)
		}
		// Its mount points (/etc/hosts, which busybox lacks) come from
		// rl's base layer: nothing was written in its rootfs.
		upper := filepath.Join(u.Home, ".local/share/rl/storage/rl-rm", id+"-"+name, "upper")
		if written, err := os.ReadDir(upper); err != nil || len(written) != 0 {
			t.Errorf("%s: want an empty upper directory (%v): %v", upper, err, written)
		}
		detach(t, u, nil, kept, "busybox", "true")
		if ps := rlOK(t, u, "ps"); !strings.Contains(psRow(ps.Stdout, name), "Up ") {
			t.Errorf("rl ps: want %s up:\n%v", name, ps)
		}
		v := inspect(t, u, nil, name)
		if v.ID != id || !v.State.Running || !v.HostConfig.AutoRemove {
			t.Errorf("rl inspect %s: want id %s, running, AutoRemove: %+v", name, id, v)
		}
		if r := rlOK(t, u, "exec", name, "hostname"); r.Stdout != id[:12]+"\n" {
			t.Errorf("rl exec %s hostname: want %s:\n%v", name, id[:12], r)
		}
		if r := rlOK(t, u, "exec", id[:10], "true"); r.Code != 0 {
			t.Errorf("rl exec by id prefix:\n%v", r)
		}
		for _, args := range [][]string{
			{"run", "--name", name, "busybox", "true"},
			{"run", "--rm", "--name", name, "busybox", "true"},
			{"run", "--rm", "--name", kept, "busybox", "true"},
		} {
			wantOneLineError(t, rl(t, u, args...), "name .*already in use")
		}
		wantOneLineError(t, rl(t, u, "rmi", "busybox"), "in use by container.*"+id[:12])
		if r := rlOK(t, u, "run", "--rm", "busybox", "true"); r.Code != 0 {
			t.Errorf("busybox after rl rmi was refused:\n%v", r)
		}
		rlOK(t, u, "stop", "-t", "0", name)
		if ps := rlOK(t, u, "ps", "-a"); psRow(ps.Stdout, name) != "" {
			t.Errorf("%s listed after it stopped:\n%v", name, ps)
		}
		rlOK(t, u, "rm", kept)
		if after := storeRecords(t, u); after != before {
			t.Errorf("records after the containers went:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if now := rmDirs(u); len(now) != len(dirs) {
			t.Errorf("left behind: %v, before %v", now, dirs)
		}

		// rl rm -f of a running one: its supervisor removes it as rl rm
		// waits, which is a success (it failed with "layer not known").
		for range 3 {
			detach(t, u, nil, name, "--rm", "busybox", "sleep", "1000")
			if r := rl(t, u, "rm", "-f", name); r.Code != 0 || r.Stdout != name+"\n" {
				t.Errorf("rl rm -f of a running --rm container: want exit 0 and its name:\n%v", r)
			}
			if ps := rlOK(t, u, "ps", "-a"); psRow(ps.Stdout, name) != "" {
				t.Errorf("%s listed after rl rm -f:\n%v", name, ps)
			}
		}

		// Its supervisor killed: rl ps -a clears what is left.
		detach(t, u, nil, name, "--rm", "busybox", "sleep", "1000")
		v = inspect(t, u, nil, name)
		if err := killPid(v.State.ConmonPid); err != nil {
			t.Fatal(err)
		}
		waitGone(v.State.Pid, 5*time.Second)
		if ps := rlOK(t, u, "ps", "-a"); psRow(ps.Stdout, name) != "" {
			t.Errorf("%s listed after its supervisor died:\n%v", name, ps)
		}
		if now := rmDirs(u); len(now) != len(dirs) {
			t.Errorf("left behind after the supervisor died and rl ps -a: %v, before %v", now, dirs)
		}
	})
}
