package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// traceMark is one RL_TRACE mark: the process that made it and its name.
type traceMark struct {
	pid  int
	name string
}

// traceMarks are the RL_TRACE marks in out ("rl-trace NS PID MARK"), in
// order.
func traceMarks(out string) []traceMark {
	var marks []traceMark
	for _, l := range strings.Split(out, "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) != 4 || f[0] != "rl-trace" {
			continue
		}
		pid, err := strconv.Atoi(f[2])
		if err == nil {
			marks = append(marks, traceMark{pid, f[3]})
		}
	}
	return marks
}

// noFast keeps rl run off its fast path (userns/fastpath.go: the entry
// point takes none where the environment holds a variable of rl's own), for
// tests of what the host rl does.
const noFast = "_RL_TEST_NO_FAST=1"

// markPids are the pids that made mark, in order.
func markPids(marks []traceMark, mark string) []int {
	var pids []int
	for _, m := range marks {
		if m.name == mark {
			pids = append(pids, m.pid)
		}
	}
	return pids
}

// execdInPlace says whether the trace out shows rl run exec'ing rl-core in
// its own place: "host: exec child", and rl-core's marks made by the
// process that made the host's, with no fork.
func execdInPlace(out string) bool {
	m := traceMarks(out)
	host, core := markPids(m, "host: main"), markPids(m, "core: main")
	return len(markPids(m, "host: exec child")) == 1 && len(host) == 1 && len(core) == 1 && host[0] == core[0] &&
		len(markPids(m, "host: fork+join+exec child")) == 0
}

// TestRunExecInPlace: with the user's keeper running, rl run execs rl-core
// in its own place (userns.Options.Exec) once it has parsed the command
// line (or found it in the parse cache): one process, which the caller
// waits for. The
// workload's exit code, output and stdin, and a signal sent to rl, reach it
// as before. A kill -9 of that process ends the container, and the next rl
// ps removes the --rm container it left. An rl-core built without its
// entry point, and one refused setns(2) (a seccomp filter), run rl again
// the usual way. -t, -d and a terminal keep the fork (cmd/rl TestMayExec).
func TestRunExecInPlace(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		v, env := otherHome(t, u, registryAddr)
		// A variable of rl's own keeps the runs off the fast path
		// (TestRunFastPath), which would skip the host rl and its marks.
		env = append(env, "RL_TRACE=1", noFast)
		t.Cleanup(func() { rlEnv(t, v, env, "system", "migrate") })
		rlOKEnv(t, v, env, "pull", "-q", "busybox")

		// The pull started the keeper. The first run parses, the second
		// finds the parse cached; both exec.
		args := []string{"run", "--rm", "-i", "busybox", "sh", "-c", "echo out; read l; echo got $l; exit 7"}
		for i := 0; i < 2; i++ {
			r := runAs(t, v, runOpts{Env: env, Stdin: "in\n"}, rlBin, args...)
			if r.Code != 7 || r.Stdout != "out\ngot in\n" {
				t.Fatalf("run %d: want exit 7 and the workload's output\n%v", i+1, r)
			}
			if !execdInPlace(r.Stderr) || strings.Contains(r.Stderr, "host: parsed (cached)") != (i == 1) {
				t.Fatalf("run %d: want an exec in place, after a parse cached: %v\n%v", i+1, i == 1, r)
			}
		}
		// With the keeper started by the command itself, rl forks (the
		// keeper is its child, which rl-core would inherit).
		rlOKEnv(t, v, env, "system", "migrate")
		if r := runAs(t, v, runOpts{Env: env, Stdin: "in\n"}, rlBin, args...); r.Code != 7 || execdInPlace(r.Stderr) ||
			!strings.Contains(r.Stderr, "host: keeper started") {
			t.Fatalf("the run that starts the keeper: want it forked\n%v", r)
		}

		// A command line that is never cached (-e: the parse depends on
		// more than the words) is parsed first and exec'd too.
		for i := 0; i < 2; i++ {
			r := rlEnv(t, v, env, "run", "--rm", "-e", "A=b", "busybox", "sh", "-c", "echo $A")
			if r.Code != 0 || r.Stdout != "b\n" || !execdInPlace(r.Stderr) || strings.Contains(r.Stderr, "host: parsed (cached)") {
				t.Fatalf("rl run -e A=b (run %d): want b, a parse and an exec in place\n%v", i+1, r)
			}
		}

		// A signal to rl reaches the workload; its exit code is rl's.
		loop := []string{"run", "--rm", "busybox", "sh", "-c", `trap "echo term; exit 3" TERM; echo ready; while :; do sleep 0.1; done`}
		// The trap is set once the workload says ready (a whole line: the
		// trace's "core: init ready" comes before it); a signal before it
		// would be lost, as to any PID 1 without a handler.
		ready := func(b *bgCmd) {
			t.Helper()
			b.await(t, "ready")
		}
		for i := 0; i < 2; i++ {
			b := startBG(t, v, env, loop...)
			ready(b)
			syscall.Kill(b.cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-b.done:
			case <-time.After(30 * time.Second):
				t.Fatalf("rl run did not end 30 s after SIGTERM: %s", b.output())
			}
			if code := b.cmd.ProcessState.ExitCode(); code != 3 || !strings.Contains(b.output(), "term") {
				t.Fatalf("SIGTERM to rl run (run %d): want the workload's trap and exit 3, got %d: %s", i+1, code, b.output())
			}
			if i == 1 && !execdInPlace(b.output()) {
				t.Fatalf("the second run was not exec'd in place: %s", b.output())
			}
		}

		// kill -9: the container ends with its supervisor; the next rl ps
		// removes it (--rm) and the store is as before.
		b := startBG(t, v, env, loop...)
		ready(b)
		if !execdInPlace(b.output()) {
			t.Fatalf("not exec'd in place: %s", b.output())
		}
		b.kill()
		deadline := time.Now().Add(5 * time.Second)
		for len(storePids(u, v.Home)) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("processes of the store 5 s after kill -9 of rl run: %v", storePids(u, v.Home))
			}
			time.Sleep(50 * time.Millisecond)
		}
		if r := rlEnv(t, v, env, "ps", "-a", "-q"); r.Code != 0 || r.Stdout != "" {
			t.Errorf("rl ps -a after kill -9 of rl run --rm: want no container\n%v", r)
		}
		if r := rlEnv(t, v, env, "system", "check"); r.Code != 0 || !strings.Contains(r.Stdout, "no problems found") {
			t.Errorf("rl system check after kill -9 of rl run --rm and rl ps:\n%v", r)
		}
		checkStore(t, v.Home, "kill -9 of rl run --rm exec'd in place")

		// An rl-core without its entry point: rl runs again and forks.
		dir := userDir(t, u, "noentry")
		for _, b := range []string{"rl", "rl-image", "rl-net"} {
			if err := copyExecutable(filepath.Join(filepath.Dir(rlBin), b), filepath.Join(dir, b)); err != nil {
				t.Fatal(err)
			}
		}
		root, err := filepath.Abs("..")
		if err != nil {
			t.Fatal(err)
		}
		if err := buildCmd(root, "rl-core", "", filepath.Join(dir, "rl-core")); err != nil {
			t.Fatalf("without -E: %v", err)
		}
		for i := 0; i < 2; i++ {
			r := runAs(t, v, runOpts{Env: env, Stdin: "in\n"}, filepath.Join(dir, "rl"), args...)
			if r.Code != 7 || r.Stdout != "out\ngot in\n" {
				t.Fatalf("rl-core without its entry point, run %d:\n%v", i+1, r)
			}
			m := traceMarks(r.Stderr)
			hosts := markPids(m, "host: main")
			if i == 1 && (len(markPids(m, "host: exec child")) != 1 || len(hosts) != 2 || hosts[0] != hosts[1] ||
				len(markPids(m, "host: fork+join+exec child")) != 1) {
				t.Fatalf("rl-core without its entry point: want the exec, rl again in the same process, and the fork\n%v", r)
			}
		}

		// setns refused: the same error as without the exec.
		if os.Geteuid() != 0 {
			return
		}
		helper := seccompWrap(t)
		short := []string{"run", "--rm", "busybox", "true"}
		rlOKEnv(t, v, env, short...)
		if r := rlOKEnv(t, v, env, short...); !execdInPlace(r.Stderr) {
			t.Fatalf("not exec'd in place:\n%v", r)
		}
		r := runAs(t, v, runOpts{Env: env}, helper, append([]string{"docker-userns", rlBin}, short...)...)
		var lines []string
		for _, l := range nonEmptyLines(r.Stderr) {
			if !strings.HasPrefix(l, "rl-trace ") {
				lines = append(lines, l)
			}
		}
		hosts := markPids(traceMarks(r.Stderr), "host: main")
		if r.Code != 125 || len(lines) != 1 || !seccompRE.MatchString(lines[0]) || len(hosts) != 2 || hosts[0] != hosts[1] {
			t.Errorf("rl run under a filter refusing setns, with the keeper running: want rl again in the same process, exit 125 and one line naming seccomp\n%v", r)
		}
	})
}
