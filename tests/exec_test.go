package tests

// rl exec (issue 4): setns into a running container's namespaces, with its
// environment, and no rl binary left where the container can reach it.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestExecCmdline: the exec'd process sees the container's PID 1.
func TestExecCmdline(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "exec-cmd-" + u.Name
		detach(t, u, nil, name, "busybox", "sleep", "1000")
		r := rlOK(t, u, "exec", name, "cat", "/proc/1/cmdline")
		if r.Stdout != "sleep\x001000\x00" {
			t.Fatalf("rl exec cat /proc/1/cmdline: want the container's `sleep 1000`:\n%v", r)
		}
		r = rlOK(t, u, "exec", name, "sh", "-c", "echo $$")
		if r.Stdout == "1\n" || !regexp.MustCompile(`^\d+\n$`).MatchString(r.Stdout) {
			t.Fatalf("the exec'd shell's pid in the container: want a number other than 1:\n%v", r)
		}
	})
}

var nsKinds = []string{"net", "pid", "ipc", "uts", "cgroup", "mnt", "user"}

// nsScript prints `kind link` for each namespace kind.
var nsScript = func() string {
	s := ""
	for _, k := range nsKinds {
		s += fmt.Sprintf("echo %s $(readlink /proc/self/ns/%s); ", k, k)
	}
	return s
}()

// nsLinks parses nsScript's output.
func nsLinks(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			m[k] = v
		}
	}
	return m
}

// TestExecNamespaces: the exec'd process is in each of the container's
// namespaces (as the container's own process reports them), none of them
// the host's, and has its seccomp filter.
func TestExecNamespaces(t *testing.T) {
	host := map[string]string{}
	for _, k := range nsKinds {
		l, err := os.Readlink("/proc/self/ns/" + k)
		if err != nil {
			t.Fatal(err)
		}
		host[k] = l
	}
	forEachUser(t, func(t *testing.T, u User) {
		name := "exec-ns-" + u.Name
		detach(t, u, nil, name, "busybox", "sh", "-c", nsScript+"exec sleep 1000")
		inner := nsLinks(waitLogs(t, u, name, "user ", 10*time.Second).Stdout)
		r := rlOK(t, u, "exec", name, "sh", "-c", nsScript)
		exec := nsLinks(r.Stdout)
		v := inspect(t, u, nil, name)
		for _, k := range nsKinds {
			if !strings.HasPrefix(inner[k], k+":[") {
				t.Errorf("%s: the container's log has %q", k, inner[k])
				continue
			}
			if exec[k] != inner[k] {
				t.Errorf("%s namespace: exec'd %q, the container's %q", k, exec[k], inner[k])
			}
			if exec[k] == host[k] {
				t.Errorf("%s namespace: exec'd is the host's %q", k, host[k])
			}
			if !strings.Contains(v.Namespaces[k], inner[k]) {
				t.Errorf("%s: rl inspect's Namespaces has %q, the container's is %q", k, v.Namespaces[k], inner[k])
			}
		}
		if t.Failed() {
			t.Logf("host %v\ncontainer %v\nexec'd %v", host, inner, exec)
		}
		// And under the container's seccomp filter (TestExecKeepID: nsenter's).
		if r := rl(t, u, "exec", name, "unshare", "-U", "true"); r.Code != 1 {
			t.Errorf("unshare -U in the exec'd process: want exit 1 (refused by moby's profile)\n%v", r)
		}
	})
}

// TestRunJoinNamespaces: rl run --network/--pid/--ipc/--uts container:NAME
// puts the new container in that container's namespaces (and only
// those): its processes, its hostname, its network.
func TestRunJoinNamespaces(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "join-" + u.Name
		detach(t, u, nil, name, "busybox", "sh", "-c", nsScript+"exec sleep 1000")
		target := nsLinks(waitLogs(t, u, name, "user ", 10*time.Second).Stdout)
		joined := []string{"net", "pid", "ipc", "uts"}
		r := rlOK(t, u, "run", "--rm", "--network", "container:"+name, "--pid", "container:"+name,
			"--ipc", "container:"+name, "--uts", "container:"+name,
			"busybox", "sh", "-c", nsScript+"echo host $(hostname); ps -o comm")
		got := nsLinks(r.Stdout)
		for _, k := range nsKinds {
			same := got[k] == target[k]
			want := slices.Contains(joined, k) || k == "user"
			if !strings.HasPrefix(got[k], k+":[") || same != want {
				t.Errorf("%s namespace: the joining container's %q, the target's %q (want the same: %v)", k, got[k], target[k], want)
			}
		}
		v := inspect(t, u, nil, name)
		if got["host"] != v.ID[:12] {
			t.Errorf("hostname in the joining container: %q, want the target's %q", got["host"], v.ID[:12])
		}
		if !strings.Contains(r.Stdout, "\nsleep\n") {
			t.Errorf("ps in the joining container: want the target's sleep:\n%v", r)
		}
		if t.Failed() {
			t.Logf("target %v\njoined %v", target, got)
		}
	})
}

// TestExecOptions: -e, -w and -u; the container's own environment and
// hostname.
func TestExecOptions(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "exec-opt-" + u.Name
		detach(t, u, nil, name, "-e", "FROMRUN=run", "--hostname", "exechost", "busybox", "sleep", "1000")
		r := rlOK(t, u, "exec", name, "sh", "-c", "echo $FROMRUN; hostname; id -u; pwd; echo $PATH")
		if r.Stdout != "run\nexechost\n0\n/\n/usr/sbin:/usr/bin:/sbin:/bin\n" {
			t.Errorf("rl exec: want the run's -e, hostname, root, / and the image's PATH:\n%v", r)
		}
		r = rlOK(t, u, "exec", "-e", "FROMRUN=exec", "-e", "A=1", name, "sh", "-c", "echo $FROMRUN $A")
		if r.Stdout != "exec 1\n" {
			t.Errorf("rl exec -e: want exec's values over run's:\n%v", r)
		}
		r = rlOK(t, u, "exec", "-e", "FROMRUN=exec", "-e", "PATH=/bin", name, "env")
		if lines := strings.Split(r.Stdout, "\n"); !slices.Contains(lines, "FROMRUN=exec") || !slices.Contains(lines, "PATH=/bin") ||
			strings.Count(r.Stdout, "FROMRUN=") != 1 || strings.Count(r.Stdout, "PATH=") != 1 {
			t.Errorf("rl exec -e ... env: want exec's values over run's and the image's, once each:\n%v", r)
		}
		if u.Name != full.Name {
			r = rl(t, u, "exec", "-u", "1000", name, "id", "-u")
			wantOneLineError(t, r, "1000")
			r = rlOK(t, u, "exec", "-w", "/tmp", "-e", "A=1", name, "sh", "-c", "echo $A; pwd; id -u")
			if r.Stdout != "1\n/tmp\n0\n" {
				t.Errorf("rl exec -w /tmp -e A=1:\n%v", r)
			}
			return
		}
		r = rlOK(t, u, "exec", "-e", "A=1", "-w", "/tmp", "-u", "1000", name, "sh", "-c", "echo $A; pwd; id -u; id -g")
		if r.Stdout != "1\n/tmp\n1000\n1000\n" {
			t.Errorf("rl exec -e A=1 -w /tmp -u 1000: want 1, /tmp, 1000, 1000:\n%v", r)
		}
		r = rlOK(t, u, "exec", "-u", "tester", name, "id", "-un")
		if r.Stdout != "tester\n" {
			t.Errorf("rl exec -u tester:\n%v", r)
		}
		wantOneLineError(t, rl(t, u, "exec", "-u", "nosuchuser", name, "true"), "nosuchuser")
	})
}

// TestExecExitCodes: the command's code; 127 not found; 126 not executable.
func TestExecExitCodes(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "exec-rc-" + u.Name
		detach(t, u, nil, name, "busybox", "sleep", "1000")
		for _, c := range []struct {
			args   []string
			code   int
			stderr string
		}{
			{[]string{"sh", "-c", "exit 3"}, 3, ""},
			{[]string{"false"}, 1, ""},
			{[]string{"nosuchcmd"}, 127, "nosuchcmd"},
			{[]string{"/no/such/path"}, 127, "/no/such/path"},
			{[]string{"/etc/passwd"}, 126, "/etc/passwd"},
		} {
			r := rl(t, u, append([]string{"exec", name}, c.args...)...)
			if r.Code != c.code || !strings.Contains(r.Stderr, c.stderr) {
				t.Errorf("want exit %d and stderr naming %q:\n%v", c.code, c.stderr, r)
			}
		}
		if !inspect(t, u, nil, name).State.Running {
			t.Errorf("the container stopped")
		}
	})
}

// TestExecStdin: -i feeds rl's stdin to the command; without it the command
// reads nothing.
func TestExecStdin(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "exec-in-" + u.Name
		detach(t, u, nil, name, "busybox", "sleep", "1000")
		if r := rlWithStdin(t, u, "hi\n", "exec", "-i", name, "cat"); r.Code != 0 || r.Stdout != "hi\n" {
			t.Errorf("echo hi | rl exec -i %s cat: want hi:\n%v", name, r)
		}
		r := runAs(t, u, runOpts{Stdin: "hi\n", Timeout: 10 * time.Second}, rlBin, "exec", name, "cat")
		if r.Code != 0 || r.Stdout != "" || r.TimedOut {
			t.Errorf("echo hi | rl exec %s cat (no -i): want nothing read, exit 0:\n%v", name, r)
		}
	})
}

// TestExecDetached: rl exec -d returns at once; the command runs on.
func TestExecDetached(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "exec-d-" + u.Name
		detach(t, u, nil, name, "busybox", "sleep", "1000")
		// rl's stdout and stderr are pipes (as in out=$(rl exec -d ...)):
		// the detached command must not hold them.
		r, took := timedRL(t, u, "exec", "-d", name, "sh", "-c", "sleep 1; touch /tmp/done")
		if r.Code != 0 || took > 800*time.Millisecond {
			start := time.Now()
			q := runAs(t, u, runOpts{}, "/bin/sh", "-c", rlBin+" exec -d "+name+" sh -c 'sleep 1; touch /tmp/other' </dev/null >/dev/null 2>&1")
			t.Fatalf("rl exec -d: want exit 0 at once, took %v (with stdio on /dev/null: exit %d in %v):\n%v", took, q.Code, time.Since(start), r)
		}
		if r := rl(t, u, "exec", name, "test", "-e", "/tmp/done"); r.Code == 0 {
			t.Fatalf("/tmp/done is there before the detached command's sleep 1 ended")
		}
		deadline := time.Now().Add(5 * time.Second)
		for rl(t, u, "exec", name, "test", "-e", "/tmp/done").Code != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("rl exec -d: /tmp/done never appeared")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// TestExecTTY: rl exec -it gives a shell on a pty of the container's and
// exits with its status.
func TestExecTTY(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "exec-tty-" + u.Name
		detach(t, u, nil, name, "busybox", "sleep", "1000")
		m := tmuxRL(t, u, "exec", "-it", name, "sh")
		if s := m.WaitFor(rootPrompt+`|(?m)^\[exited \d+\]$`, 30*time.Second); !regexp.MustCompile(rootPrompt).MatchString(s) {
			t.Fatalf("rl exec -it %s sh: no prompt; screen:\n%s", name, s)
		}
		m.Type("tty; echo tty-done")
		screen := m.WaitFor(`(?m)^tty-done$`, 0)
		if !regexp.MustCompile(`(?m)^/dev/pts/\d+$`).MatchString(screen) {
			t.Fatalf("tty: want /dev/pts/N; screen:\n%s", screen)
		}
		m.Type("echo size $(stty size)")
		m.WaitFor(`(?m)^size 40 120$`, 0)
		m.Type("exit 5")
		if status := m.WaitExit(0); status != 5 {
			t.Fatalf("exit 5 in rl exec -it: rl exited %d; screen:\n%s", status, m.Screen())
		}
		if !inspect(t, u, nil, name).State.Running {
			t.Errorf("the container stopped with the exec'd shell")
		}
	})
}

// TestExecNotRunning: exec into a stopped or unknown container is a
// one-line error, exit 125.
func TestExecNotRunning(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "exec-stopped-" + u.Name
		t.Cleanup(func() { rl(t, u, "rm", "-f", name) })
		rlOK(t, u, "run", "--name", name, "busybox", "true")
		wantOneLineError(t, rl(t, u, "exec", name, "true"), "not running")
		wantOneLineError(t, rl(t, u, "exec", "nosuchctr", "true"), "nosuchctr")
	})
}

// rlBinaryNames are the base names of rl's binaries.
var rlBinaryNames = map[string]bool{"rl": true, "rl-core": true, "rl-image": true, "rl-net": true}

// TestExecNoRLBinary: while an exec'd command runs, no process in the
// container's PID namespace has an rl binary as its executable, seen from
// inside and from the host (CVE-2019-5736: the container's root is the
// user, who owns rl).
func TestExecNoRLBinary(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		for _, init := range []bool{false, true} {
			t.Run(fmt.Sprintf("init=%v", init), func(t *testing.T) {
				name := fmt.Sprintf("exec-bin-%v-%s", init, u.Name)
				args := []string{"busybox", "sleep", "1000"}
				if init {
					args = append([]string{"--init"}, args...)
				}
				detach(t, u, nil, name, args...)
				v := inspect(t, u, nil, name)
				pidNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", v.State.Pid))
				if err != nil {
					t.Fatal(err)
				}

				// From inside, by a command that runs beside a second exec.
				bg := startRL(t, u, "exec", name, "sh", "-c", "echo started; sleep 5")
				bg.waitLine(t, "started", 30*time.Second)
				r := rlOK(t, u, "exec", name, "sh", "-c", `for p in /proc/[0-9]*; do echo "${p#/proc/} $(readlink $p/exe)"; done`)
				procs := 0
				for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
					procs++
					_, exe, _ := strings.Cut(l, " ")
					if init && strings.HasPrefix(l, "1 ") {
						// The reaper runs from a sealed memfd copy, not the
						// user's file; it must not be writable.
						if strings.HasPrefix(exe, "/") && !strings.HasPrefix(exe, "/memfd:") {
							t.Errorf("the --init reaper's exe is a file: %q", exe)
						}
						continue
					}
					if strings.Contains(exe, "rl") {
						t.Errorf("inside, a process's exe names rl: %q\n%v", l, r)
					}
				}
				if procs < 3 {
					t.Errorf("inside: want PID 1, the sleep 5 exec and this one, have:\n%v", r)
				}
				if init {
					w := rl(t, u, "exec", name, "sh", "-c", "echo x >> /proc/1/exe && echo WROTE")
					if strings.Contains(w.Stdout, "WROTE") {
						t.Errorf("the container can write its reaper's executable:\n%v", w)
					}
				}

				// From the host: every process in the container's PID
				// namespace.
				dir := filepath.Dir(rlBin)
				found := 0
				entries, _ := filepath.Glob("/proc/[0-9]*")
				for _, p := range entries {
					if l, err := os.Readlink(p + "/ns/pid"); err != nil || l != pidNS {
						continue
					}
					exe, err := os.Readlink(p + "/exe")
					if err != nil {
						continue
					}
					found++
					cmdline, _ := os.ReadFile(p + "/cmdline")
					desc := fmt.Sprintf("%s exe %s (%q)", p, exe, cmdline)
					t.Logf("in the container: %s", desc)
					if rlBinaryNames[filepath.Base(strings.TrimSuffix(exe, " (deleted)"))] || strings.HasPrefix(exe, dir+"/") {
						t.Errorf("a process of the container runs an rl binary: %s", desc)
					}
				}
				if found < 2 {
					t.Errorf("from the host: found %d processes in the container's pid namespace %s, want PID 1 and the exec'd sleep", found, pidNS)
				}
				if code, out := bg.wait(t, 15*time.Second); code != 0 {
					t.Errorf("rl exec sh -c 'sleep 5': exit %d:\n%s", code, out)
				}
			})
		}
	})
}

// TestExecPreserveFDs: rl exec --preserve-fds N hands rl's fds 3 to 3+N-1
// to the process as its 3 to 3+N-1, as podman exec does, straight to the
// supervisor and through rl-core (from another run dir), with a terminal
// too; without it nothing past 2 arrives; asking for more than rl got is
// one line and 125.
func TestExecPreserveFDs(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		file := filepath.Join(userDir(t, u, "epfd"), "data")
		writeUserFile(t, u, file, "from-a-file\n")
		open2 := func() []*os.File { return fileAndPipe(t, file) }
		xdg := []string{"XDG_RUNTIME_DIR=" + userDir(t, u, "xdg")}
		name := "exec-pfd-" + u.Name
		detach(t, u, xdg, name, "busybox", "sleep", "1000")
		const script = `cat <&3; cat <&4; ls /proc/self/fd | tr '\n' ' '`
		for _, env := range [][]string{xdg, nil} { // its supervisor's run dir; another (rl-core)
			r := runAs(t, u, runOpts{Env: env, ExtraFiles: open2()}, rlBin, "exec", "--preserve-fds", "2", name, "sh", "-c", script)
			// ls's own directory fd is the one past 4.
			if r.Code != 0 || r.Stdout != "from-a-file\nfrom-a-pipe\n0 1 2 3 4 5 " {
				t.Errorf("rl exec --preserve-fds 2 (env %q): want both fds' data and fds 0-4 (5 is ls's own):\n%v", env, r)
			}
		}
		r := runAs(t, u, runOpts{Env: xdg, ExtraFiles: open2()}, rlBin, "exec", name, "sh", "-c", "ls /proc/self/fd | tr '\\n' ' '")
		if r.Code != 0 || r.Stdout != "0 1 2 3 " {
			t.Errorf("rl exec with fds 3 and 4 open but no --preserve-fds: want fds 0-2 only (3 is ls's own):\n%v", r)
		}
		r = runAs(t, u, runOpts{Env: xdg, ExtraFiles: open2()}, rlBin, "exec", "--preserve-fds", "3", name, "true")
		if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); r.Code != 125 || len(lines) != 1 || !strings.Contains(lines[0], "fd 5 is not open") {
			t.Errorf("rl exec --preserve-fds 3 with fds 3 and 4 open: want exit 125 and one line naming fd 5:\n%v", r)
		}
		// With a terminal: stdio is the pty, fd 3 still the caller's.
		m := tmuxRun(t, u, "/bin/sh", "-c", shellQuote([]string{"env", xdg[0], rlBin, "exec", "-it", "--preserve-fds", "1", name, "sh", "-c", "cat <&3; tty"})+" 3<"+shellQuote([]string{file}))
		code := m.WaitExit(10 * time.Second)
		// The whole pane with its history: tmux can scroll the first line
		// off the visible screen as it sizes the pane.
		all := m.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "rl")
		if code != 0 || !regexp.MustCompile(`(?m)^from-a-file\s*$\s*^/dev/pts/\d+\s*$`).MatchString(all) {
			t.Errorf("rl exec -it --preserve-fds 1: want exit 0, fd 3's data and a pty:\n%s", all)
		}
	})
}

// TestExecKeepID: --userns keep-id gives the user's own uid and gid inside,
// in rl run and in what rl exec starts there (through nsenter), which has
// the container's seccomp filter and no_new_privs too; exec as
// root is the subordinate range's, which the single-ID user lacks: one line
// naming the fix.
func TestExecKeepID(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		ids := fmt.Sprintf("%d %d\n", u.UID, u.GID)
		r := rl(t, u, "run", "--rm", "--userns", "keep-id", "busybox", "sh", "-c", "echo $(id -u) $(id -g)")
		if r.Code != 0 || r.Stdout != ids {
			t.Errorf("rl run --userns keep-id: want %q\n%v", ids, r)
		}
		name := "keepid-" + u.Name
		nnp := "--security-opt=no-new-privileges"
		if r = rl(t, u, "run", "-d", "--name", name, "--userns", "keep-id", nnp, "busybox", "sleep", "60"); r.Code != 0 {
			t.Fatalf("rl run -d --userns keep-id:\n%v", r)
		}
		defer rl(t, u, "rm", "-f", name)
		r = rl(t, u, "exec", name, "sh", "-c", "echo $(id -u) $(id -g)")
		if r.Code != 0 || r.Stdout != ids {
			t.Errorf("rl exec into a --userns keep-id container: want %q\n%v", ids, r)
		}
		// The container's seccomp filter and no_new_privs, as in what rl
		// run started (moby's profile refuses unshare(2) without
		// CAP_SYS_ADMIN; a new user namespace needs no capability).
		want := rlOK(t, u, "run", "--rm", "--userns", "keep-id", nnp, "busybox", "grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status").Stdout
		if want != "NoNewPrivs:\t1\nSeccomp:\t2\n" {
			t.Errorf("rl run --userns keep-id %s: want no_new_privs and seccomp mode 2 (filter): %q", nnp, want)
		}
		if r = rl(t, u, "exec", name, "grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"); r.Code != 0 || r.Stdout != want {
			t.Errorf("rl exec into a --userns keep-id container: want %q\n%v", want, r)
		}
		if r = rl(t, u, "exec", name, "unshare", "-U", "true"); r.Code != 1 {
			t.Errorf("rl exec into a --userns keep-id container: unshare -U: want exit 1 (refused by moby's profile)\n%v", r)
		}
		r = rl(t, u, "exec", "-u", "0", name, "id", "-u")
		if u.Name == full.Name {
			if r.Code != 0 || r.Stdout != "0\n" {
				t.Errorf("rl exec -u 0 into a --userns keep-id container: want 0\n%v", r)
			}
		} else if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); r.Code != 125 || !strings.Contains(r.Stderr, "only your own ids") || !strings.Contains(lines[len(lines)-1], "/etc/subuid") {
			t.Errorf("rl exec -u 0 as the single-ID user: want exit 125 and one line naming /etc/subuid\n%v", r)
		}
	})
}
