package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKeeper: the first command starts the user's keeper, which holds the
// user namespace (mapped by newuidmap/newgidmap, or the single ID); later
// commands enter it instead of mapping one each, and their containers are
// in it. The keeper holds nothing of the command that started it: its own
// session, cwd /, no environment, none of its files open. A killed keeper is
// replaced; `rl system migrate` stops it, and a container running in its
// namespace goes on.
func TestKeeper(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		xdg := runtimeDir(t, u)
		env := []string{"XDG_RUNTIME_DIR=" + xdg, "RL_TRACE=1", noFast}
		t.Cleanup(func() { rlEnv(t, u, env, "system", "migrate") })
		record := filepath.Join(xdg, "rl", "keeper")
		keeper := func() int {
			t.Helper()
			b, err := os.ReadFile(record)
			if err != nil {
				t.Fatalf("no keeper record: %v", err)
			}
			// "PID START", the plan's key, the plan (userns/keeper.go).
			var pid, start int
			if _, err := fmt.Sscanf(string(b), "%d %d\n", &pid, &start); err != nil || pid <= 0 || strings.Count(string(b), "\n") != 3 {
				t.Fatalf("keeper record %q: %v", b, err)
			}
			return pid
		}
		uidMap := "0 " + fmt.Sprint(u.UID) + " 1"
		run := func(wantStart bool) string {
			t.Helper()
			r := rlEnv(t, u, env, "run", "--rm", "busybox", "sh", "-c", "cat /proc/self/uid_map; readlink /proc/self/ns/user")
			if r.Code != 0 {
				t.Fatalf("%v", r)
			}
			lines := nonEmptyLines(r.Stdout)
			if len(lines) < 2 || strings.Join(strings.Fields(lines[0]), " ") != uidMap {
				t.Fatalf("uid_map's first line: want %q\n%v", uidMap, r)
			}
			if want := map[bool]int{true: 3, false: 2}[u.Name == full.Name]; len(lines) != want {
				t.Fatalf("uid_map: want %d lines\n%v", want-1, r)
			}
			started := strings.Contains(r.Stderr, "host: keeper started")
			// Entered by a forked child, or by rl-core exec'd in place.
			joined := strings.Contains(r.Stderr, "host: fork+join+exec child") || strings.Contains(r.Stderr, "host: exec child")
			if started != wantStart || !joined || strings.Contains(r.Stderr, "host: maps written") {
				t.Fatalf("want the keeper started: %v, and the child to enter its namespace (no maps written)\n%v", wantStart, r)
			}
			return lines[len(lines)-1]
		}

		ns := run(true)
		pid := keeper()
		if got, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid)); got != ns {
			t.Fatalf("the container's user namespace is %s, the keeper's %s", ns, got)
		}
		if again := run(false); again != ns || keeper() != pid {
			t.Fatalf("second run: user namespace %s, keeper %d; first: %s, %d", again, keeper(), ns, pid)
		}
		checkKeeperBare(t, u, pid)
		if r := rlEnv(t, u, env, "info"); !strings.Contains(r.Stdout, fmt.Sprintf("keeper: pid %d holds this user namespace", pid)) {
			t.Errorf("rl info: want the keeper's pid %d\n%v", pid, r)
		}

		// Killed: the next command starts another.
		syscall.Kill(pid, syscall.SIGKILL)
		if !waitGone(pid, 5*time.Second) {
			t.Fatalf("keeper %d still runs after SIGKILL", pid)
		}
		run(true)
		if keeper() == pid {
			t.Fatal("a killed keeper's pid is still recorded")
		}

		// rl system migrate: the keeper goes, a running container stays.
		name := "keeper-" + u.Name
		rlOKEnv(t, u, env, "run", "-d", "--name", name, "busybox", "sleep", "60")
		t.Cleanup(func() { rlEnv(t, u, env, "rm", "-f", name) })
		pid = keeper()
		rlOKEnv(t, u, env, "system", "migrate")
		if !waitGone(pid, 5*time.Second) {
			t.Fatalf("keeper %d still runs after rl system migrate", pid)
		}
		if _, err := os.Stat(record); !os.IsNotExist(err) {
			t.Fatalf("rl system migrate left the record: %v", err)
		}
		if r := rlEnv(t, u, env, "exec", name, "true"); r.Code != 0 {
			t.Fatalf("rl exec into a container started before rl system migrate:\n%v", r)
		}
		// rl rm runs in rl-core: a new keeper.
		r := rlOKEnv(t, u, env, "rm", "-f", name)
		if !strings.Contains(r.Stderr, "host: keeper started") || keeper() == pid {
			t.Fatalf("the first command after rl system migrate: want a new keeper\n%v", r)
		}
		run(false)
	})
}

// checkKeeperBare: the keeper pid runs as u in a session of its own, in /,
// with no environment and none of its caller's files open.
func checkKeeperBare(t *testing.T, u User, pid int) {
	t.Helper()
	proc := fmt.Sprintf("/proc/%d/", pid)
	var st syscall.Stat_t
	if err := syscall.Stat(proc, &st); err != nil || int(st.Uid) != u.UID {
		t.Errorf("keeper %d: owner %d (%v), want %d", pid, st.Uid, err, u.UID)
	}
	if cwd, _ := os.Readlink(proc + "cwd"); cwd != "/" {
		t.Errorf("keeper's cwd %q, want /", cwd)
	}
	if environ, err := os.ReadFile(proc + "environ"); err != nil || len(environ) != 0 {
		t.Errorf("keeper's environment %q (%v), want none", environ, err)
	}
	// 0-2 are /dev/null; others are the Go runtime's own (cgroup files,
	// its poller), none a pipe, socket, terminal or file of the caller's.
	fds, err := os.ReadDir(proc + "fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		target, _ := os.Readlink(proc + "fd/" + fd.Name())
		switch {
		case fd.Name() == "0" || fd.Name() == "1" || fd.Name() == "2":
			if target != "/dev/null" {
				t.Errorf("keeper's fd %s is %s, want /dev/null", fd.Name(), target)
			}
		case strings.HasPrefix(target, "pipe:"), strings.HasPrefix(target, "socket:"), strings.HasPrefix(target, "/dev/pts"),
			strings.HasPrefix(target, "/dev/tty"), strings.HasPrefix(target, u.Home), strings.HasPrefix(target, os.TempDir()):
			t.Errorf("keeper's fd %s is %s: the caller's", fd.Name(), target)
		}
	}
	stat, _ := os.ReadFile(proc + "stat")
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 4 || f[3] != fmt.Sprint(pid) {
		t.Errorf("keeper's session %v, want its own (%d)", f[3:4], pid)
	}
}
