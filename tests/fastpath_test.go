package tests

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fastRun says whether the trace out shows rl run's fast path: rl's entry
// point exec'd rl-core itself, so the host rl made no mark and rl-core's
// came from the process the caller started.
func fastRun(out string) bool {
	m := traceMarks(out)
	return len(markPids(m, "host: main")) == 0 && len(markPids(m, "core: main")) == 1
}

// TestRunFastPath: rl run's fast path (userns/fastpath.go). A command line
// exec'd in place is recorded, and the next run of the same words skips
// the host rl: its entry point execs rl-core with what the host rl would
// have given it. Exit code, output, stdin, a signal and the user namespace
// (the keeper's) are as on the usual way. It is not taken (the run goes the
// usual way, and records again where it may) for other words, a record
// others may write, one whose keeper is gone or whose start time is not the
// keeper's (a reused pid), an environment holding one of rl's variables, no
// XDG_RUNTIME_DIR, or fd 100 taken; another rl binary keeps records of its
// own; a parse that depends on more than the words (--env-file) is never
// recorded.
func TestRunFastPath(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		v, env := otherHome(t, u, registryAddr)
		xdg := strings.TrimPrefix(env[0], "XDG_RUNTIME_DIR=")
		env = append(env, "RL_TRACE=1")
		t.Cleanup(func() { rlEnv(t, v, env, "system", "migrate") })
		rlOKEnv(t, v, env, "pull", "-q", "busybox") // starts the keeper

		args := []string{"run", "--rm", "-i", "busybox", "sh", "-c", "echo out; read l; echo got $l; readlink /proc/self/ns/user; exit 7"}
		run := func(what string, wantFast bool, o runOpts, prog string, args ...string) Result {
			t.Helper()
			if o.Env == nil {
				o.Env = env
			}
			if o.Stdin == "" {
				o.Stdin = "in\n"
			}
			r := runAs(t, v, o, prog, args...)
			if fastRun(r.Stderr) != wantFast {
				t.Fatalf("%s: want the fast path taken: %v\n%v", what, wantFast, r)
			}
			return r
		}
		records := func() []string {
			t.Helper()
			names, _ := filepath.Glob(filepath.Join(xdg, "rl", "fast", "*"))
			return names
		}

		run("first run", false, runOpts{}, rlBin, args...)
		if n := len(records()); n != 1 {
			t.Fatalf("after the first run: %d records, want 1", n)
		}
		r := run("second run", true, runOpts{}, rlBin, args...)
		lines := nonEmptyLines(r.Stdout)
		if r.Code != 7 || len(lines) != 3 || lines[0] != "out" || lines[1] != "got in" {
			t.Fatalf("the fast path: want exit 7 and the workload's output\n%v", r)
		}
		rec, err := os.ReadFile(filepath.Join(xdg, "rl", "keeper"))
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		fmt.Sscanf(string(rec), "%d", &pid)
		if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid)); ns == "" || lines[2] != ns {
			t.Fatalf("the fast path: the container's user namespace is %s, the keeper's (pid %d) %s", lines[2], pid, ns)
		}

		// A signal to rl reaches the workload; its exit code is rl's.
		loop := []string{"run", "--rm", "busybox", "sh", "-c", `trap "echo term; exit 3" TERM; echo ready; while :; do sleep 0.1; done`}
		for i := 0; i < 2; i++ {
			b := startBG(t, v, env, loop...)
			b.await(t, "ready") // the trap is set: a signal before it would be lost
			syscall.Kill(b.cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-b.done:
			case <-time.After(30 * time.Second):
				t.Fatalf("rl run did not end 30 s after SIGTERM: %s", b.output())
			}
			if code := b.cmd.ProcessState.ExitCode(); code != 3 || !strings.Contains(b.output(), "term") || fastRun(b.output()) != (i == 1) {
				t.Fatalf("SIGTERM to rl run (run %d, fast path: %v): want the workload's trap and exit 3, got %d: %s", i+1, i == 1, code, b.output())
			}
		}

		run("other words", false, runOpts{}, rlBin, append(args, "x")...)
		run("a variable of rl's own", false, runOpts{Env: append(env, noFast)}, rlBin, args...)
		noXDG := []string{"RL_TRACE=1"}
		for i := 0; i < 2; i++ {
			run("no XDG_RUNTIME_DIR", false, runOpts{Env: noXDG}, rlBin, args...)
		}
		var taken []*os.File // fds 3..100 of rl: 100 taken
		for i := 3; i <= 100; i++ {
			f, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			taken = append(taken, f)
		}
		if r := run("fd 100 taken", false, runOpts{ExtraFiles: taken}, rlBin, args...); r.Code != 7 {
			t.Fatalf("fd 100 taken: want exit 7\n%v", r)
		}
		run("after all that", true, runOpts{}, rlBin, args...)

		// The record: found by the hash of the words; a copy others may
		// write is refused, as is one with another start time (a pid
		// reused by another process); the usual way writes it again.
		var path string
		for _, p := range records() {
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "readlink /proc/self/ns/user; exit 7\x00") &&
				!strings.Contains(string(b), "exit 7\x00x\x00") {
				if path != "" {
					t.Fatalf("two records of %q: %s, %s", args, path, p)
				}
				path = p
			}
		}
		if path == "" {
			t.Fatalf("no record of %q among %v", args, records())
		}
		if err := os.Chmod(path, 0o622); err != nil {
			t.Fatal(err)
		}
		run("a record others may write", false, runOpts{}, rlBin, args...)
		run("written again", true, runOpts{}, rlBin, args...)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		binary.LittleEndian.PutUint64(b[16:], binary.LittleEndian.Uint64(b[16:])+1)
		writeUserFileAll(t, v, path, b)
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		run("another start time", false, runOpts{}, rlBin, args...)
		run("written again", true, runOpts{}, rlBin, args...)

		// Another rl binary (another file: a copy) goes the usual way,
		// then takes its own record; the first rl's record is still its.
		dir := userDir(t, u, "other-rl")
		for _, name := range rlBinaries {
			if err := copyExecutable(filepath.Join(filepath.Dir(rlBin), name), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		other := filepath.Join(dir, "rl")
		run("another rl", false, runOpts{}, other, args...)
		run("another rl, again", true, runOpts{}, other, args...)
		run("the first rl", true, runOpts{}, rlBin, args...)

		// The keeper gone: the run that starts one forks, the next execs
		// in place (and records), the one after takes the fast path.
		rlOKEnv(t, v, env, "system", "migrate")
		run("keeper gone", false, runOpts{}, rlBin, args...)
		run("keeper started", false, runOpts{}, rlBin, args...)
		run("recorded again", true, runOpts{}, rlBin, args...)

		// --env-file: the parse depends on the file, never recorded.
		envFile := filepath.Join(userDir(t, u, "envfile"), "env")
		for _, val := range []string{"one", "two"} {
			writeUserFile(t, v, envFile, "V="+val+"\n")
			r := run("--env-file", false, runOpts{}, rlBin, "run", "--rm", "--env-file", envFile, "busybox", "sh", "-c", "echo $V")
			if strings.TrimSpace(r.Stdout) != val {
				t.Fatalf("--env-file holding V=%s: got %q\n%v", val, r.Stdout, r)
			}
		}
	})
}
