package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// User is a test user: rl runs with its credentials and its HOME.
type User struct {
	Name     string
	UID, GID int
	Groups   []uint32
	Home     string
}

// testUsers are the users this run has: full and, as root, single.
func testUsers() []User {
	var us []User
	for _, u := range []User{full, single} {
		if u.Name != "" {
			us = append(us, u)
		}
	}
	return us
}

// forEachUser runs f as a subtest for the user with subordinate ids and the
// user without (named after them), skipping one this run does not have.
func forEachUser(t *testing.T, f func(t *testing.T, u User)) {
	t.Helper()
	for _, u := range []User{full, single} {
		name := u.Name
		if name == "" {
			name = "single-id"
		}
		t.Run(name, func(t *testing.T) {
			if u.Name == "" {
				t.Skip("no user without subordinate ids: the tests run as their caller (RL_TEST_USER), not as root")
			}
			f(t, u)
		})
	}
}

// env is the environment of every process run as u: no XDG_RUNTIME_DIR
// unless a test adds one (rl must cope without it).
func (u User) env() []string {
	return []string{
		"HOME=" + u.Home,
		"USER=" + u.Name,
		"LOGNAME=" + u.Name,
		"PATH=/usr/local/bin:/usr/bin:/bin",
	}
}

// credential is nil when u is the caller (a non-root run).
func (u User) credential() *syscall.Credential {
	if u.UID == os.Geteuid() {
		return nil
	}
	return &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: u.Groups}
}

// Result is what a command run as a test user did.
type Result struct {
	Args           []string
	Stdout, Stderr string
	// Code is the exit code; -1 when killed by a signal or never started.
	Code     int
	TimedOut bool
}

func (r Result) String() string {
	status := fmt.Sprintf("exit %d", r.Code)
	if r.TimedOut {
		status = "timed out"
	}
	return fmt.Sprintf("`%s`: %s\n--- stdout:\n%s--- stderr:\n%s", shellQuote(r.Args), status, r.Stdout, r.Stderr)
}

// shellQuote renders args as a command line one can paste into sh.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,/:@%+") == "" {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// runOpts adjusts one command run as a test user.
type runOpts struct {
	Stdin   string
	Env     []string      // added to the user's environment
	Timeout time.Duration // 60 s when zero
	Dir     string        // the user's HOME when empty
	// ExtraFiles are the program's fds 3, 4, ... (--preserve-fds).
	ExtraFiles []*os.File
}

const defaultTimeout = 60 * time.Second

// rl runs rl as u and returns what it did; any exit code is a result, not a
// test failure.
func rl(t *testing.T, u User, args ...string) Result {
	t.Helper()
	return runAs(t, u, runOpts{}, rlBin, args...)
}

// rlWithStdin is rl with stdin fed from a string.
func rlWithStdin(t *testing.T, u User, stdin string, args ...string) Result {
	t.Helper()
	return runAs(t, u, runOpts{Stdin: stdin}, rlBin, args...)
}

// rlOK is rl that fails the test, showing rl's output, unless rl exits 0.
func rlOK(t *testing.T, u User, args ...string) Result {
	t.Helper()
	r := rl(t, u, args...)
	if r.Code != 0 || r.TimedOut {
		t.Fatalf("%v", r)
	}
	return r
}

// runAs runs prog as u in its own process group; on timeout the whole group
// is killed.
func runAs(t *testing.T, u User, o runOpts, prog string, args ...string) Result {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(u.env(), o.Env...)
	cmd.Dir = o.Dir
	if cmd.Dir == "" {
		cmd.Dir = u.Home
	}
	cmd.Stdin = strings.NewReader(o.Stdin)
	cmd.ExtraFiles = o.ExtraFiles
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.credential(), Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A child that keeps rl's stdout open must not hang the test.
	cmd.WaitDelay = 5 * time.Second

	r := Result{Args: append([]string{filepath.Base(prog)}, args...), Code: -1}
	err := cmd.Run()
	r.Stdout, r.Stderr = stdout.String(), stderr.String()
	r.TimedOut = ctx.Err() != nil
	var exit *exec.ExitError
	switch {
	case err == nil:
		r.Code = 0
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case !r.TimedOut:
		t.Fatalf("run %s as %s: %v", prog, u.Name, err)
	}
	return r
}

// Tmux is a program running as a test user in a tmux pane of 120x40, for
// what needs a terminal (rl run -it). The tmux server runs as the user, on
// its own socket in the user's HOME, and is killed when the test ends.
type Tmux struct {
	t    *testing.T
	u    User
	sock string
}

var tmuxCount atomic.Int32

// tmuxRL starts `rl ARGS...` as u in a new tmux session.
func tmuxRL(t *testing.T, u User, args ...string) *Tmux {
	t.Helper()
	return tmuxRun(t, u, append([]string{rlBin}, args...)...)
}

// tmuxRun starts argv as u in a new tmux session. The pane stays after the
// program exits so its last screen and exit status can be read.
func tmuxRun(t *testing.T, u User, argv ...string) *Tmux {
	t.Helper()
	n := tmuxCount.Add(1)
	m := &Tmux{t: t, u: u, sock: filepath.Join(u.Home, fmt.Sprintf(".tmux-%d.sock", n))}
	conf := filepath.Join(u.Home, fmt.Sprintf(".tmux-%d.conf", n))
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g history-limit 10000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		runAs(t, u, runOpts{Env: []string{"TERM=xterm-256color"}, Timeout: 10 * time.Second}, "tmux", "-S", m.sock, "kill-server")
		os.Remove(conf)
	})
	// With more than one argument, tmux execs the command without a shell;
	// the sh wrapper prints the exit status for WaitExit.
	argv = append([]string{"/bin/sh", "-c", `"$0" "$@"; echo "[exited $?]"`}, argv...)
	m.tmux(append([]string{"-f", conf, "new-session", "-d", "-s", "rl", "-x", "120", "-y", "40"}, argv...)...)
	return m
}

func (m *Tmux) tmux(args ...string) string {
	m.t.Helper()
	r := runAs(m.t, m.u, runOpts{Env: []string{"TERM=xterm-256color"}, Timeout: 10 * time.Second},
		"tmux", append([]string{"-S", m.sock}, args...)...)
	if r.Code != 0 {
		m.t.Fatalf("%v", r)
	}
	return r.Stdout
}

// Type sends text literally, then Enter.
func (m *Tmux) Type(text string) {
	m.t.Helper()
	m.tmux("send-keys", "-t", "rl", "-l", text)
	m.tmux("send-keys", "-t", "rl", "Enter")
}

// Prompt waits until re matches the screen's last line, a shell's prompt.
// A line typed before the prompt shows is echoed ahead of it, and what the
// line prints then follows the prompt on one line.
func (m *Tmux) Prompt(re string) {
	m.t.Helper()
	m.WaitFor(`(?m)^`+re+`\s*\z`, 30*time.Second)
}

// Keys sends tmux key names: "C-c", "C-d", "Enter", "Up".
func (m *Tmux) Keys(keys ...string) {
	m.t.Helper()
	m.tmux(append([]string{"send-keys", "-t", "rl"}, keys...)...)
}

// Screen is the pane's visible text, trailing blank lines trimmed.
func (m *Tmux) Screen() string {
	m.t.Helper()
	return strings.TrimRight(m.tmux("capture-pane", "-p", "-J", "-t", "rl"), "\n")
}

// Resize makes the window cols x rows (the program gets SIGWINCH).
func (m *Tmux) Resize(cols, rows int) {
	m.t.Helper()
	m.tmux("resize-window", "-t", "rl", "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows))
}

// WaitFor polls the screen until it matches the regular expression re and
// returns the screen; after timeout (10 s when zero) it fails the test,
// showing the screen.
func (m *Tmux) WaitFor(re string, timeout time.Duration) string {
	m.t.Helper()
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		screen := m.Screen()
		if rx.MatchString(screen) {
			return screen
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("tmux: no %q on screen after %v; screen:\n%s", re, timeout, screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitExit waits for the "[exited N]" line tmuxRun's wrapper prints when
// the program ends and returns N. (tmux 3.3a sometimes marks a pane dead
// without reaping its program, so #{pane_dead_status} is not reliable.)
func (m *Tmux) WaitExit(timeout time.Duration) int {
	m.t.Helper()
	screen := m.WaitFor(`(?m)^\[exited \d+\]$`, timeout)
	var code int
	fmt.Sscan(regexp.MustCompile(`(?m)^\[exited (\d+)\]$`).FindStringSubmatch(screen)[1], &code)
	return code
}

// userDir makes a fresh directory owned by u (mode 0755) under u's HOME, for
// volumes, env files and alternative stores; it is removed when the test
// ends (as root: files a container made as a subordinate id included).
func userDir(t *testing.T, u User, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp(u.Home, name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if u.credential() != nil {
		if err := os.Chown(dir, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runtimeDir is a fresh XDG_RUNTIME_DIR for u (0700, as logind makes it):
// a run dir, a keeper and caches of its own.
func runtimeDir(t *testing.T, u User) string {
	t.Helper()
	dir := userDir(t, u, "xdg")
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeUserFile writes body to path (mode 0644) and gives it to u.
func writeUserFile(t *testing.T, u User, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if u.credential() != nil {
		if err := os.Chown(path, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}
}
