package tests

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// rootPrompt is busybox sh's prompt for root in /.
const rootPrompt = `(?m)^/ # $`

// TestRunInteractiveShell is the main command in a terminal:
// rl run -it busybox sh gives a prompt on /dev/pts/0 of the terminal's size,
// follows resizes, and exits with the shell's status.
func TestRunInteractiveShell(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		m := tmuxRL(t, u, "run", "-it", "--rm", "busybox", "sh")
		m.WaitFor(rootPrompt, 30*time.Second)

		m.Type("tty; echo tty-done")
		m.WaitFor(`(?m)^tty-done$`, 0)
		if s := m.Screen(); !regexp.MustCompile(`(?m)^/dev/pts/0$`).MatchString(s) {
			t.Fatalf("tty: want /dev/pts/0; screen:\n%s", s)
		}

		m.Type("echo size $(stty size)")
		m.WaitFor(`(?m)^size 40 120$`, 0)

		m.Resize(100, 30)
		// The shell reads the size again at each command.
		m.Type("echo resized $(stty size)")
		m.WaitFor(`(?m)^resized 30 100$`, 0)

		// Raw mode on rl's side: the line discipline inside echoes and
		// edits, so ^C reaches the foreground job and not rl.
		m.Type("sleep 30")
		time.Sleep(300 * time.Millisecond)
		m.Keys("C-c")
		m.Type("echo after-ctrl-c $?")
		m.WaitFor(`(?m)^after-ctrl-c 130$`, 0)

		m.Type("exit 5")
		if status := m.WaitExit(0); status != 5 {
			t.Fatalf("exit 5 in the container: rl exited %d; screen:\n%s", status, m.Screen())
		}
	})
}

// TestRunTTYRestoresTerminal: after rl run -it exits, by the workload's exit
// or by rl's own error, the terminal has its settings back.
func TestRunTTYRestoresTerminal(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		m := tmuxRun(t, u, "/bin/sh")
		m.Prompt(`\$`)
		m.Type(`PS1='host$ '`)
		m.Prompt(`host\$`)
		m.Type(`echo "BEFORE $(stty -g)"`)
		before := settings(t, m.WaitFor(`(?m)^BEFORE \S+$`, 0), "BEFORE")

		for i, c := range []struct {
			args string
			code int
			// inside is typed once the container's prompt shows; "" when rl
			// fails before starting it.
			inside string
		}{
			{"run -it --rm busybox sh", 7, "exit 7"},
			{"run -it --rm busybox sh", 0, "stty -echo -icanon; exit"},
			{"run -it --rm --user nosuchuser busybox sh", 125, ""},
			{"run -it --rm busybox nosuchcmd", 127, ""},
		} {
			m.Prompt(`host\$`)
			m.Type(rlBin + " " + c.args + fmt.Sprintf(`; echo "RC%d $?"`, i))
			if c.inside != "" {
				m.WaitFor(rootPrompt, 30*time.Second)
				m.Type(c.inside)
			}
			rc := fmt.Sprintf(`(?m)^RC%d (\d+)$`, i)
			screen := m.WaitFor(rc, 30*time.Second)
			var code int
			fmt.Sscan(regexp.MustCompile(rc).FindStringSubmatch(screen)[1], &code)
			if code != c.code {
				t.Errorf("rl %s: exit %d, want %d; screen:\n%s", c.args, code, c.code, screen)
			}
			tag := fmt.Sprintf("AFTER%d", i)
			m.Prompt(`host\$`)
			m.Type(fmt.Sprintf(`echo "%s $(stty -g)"; stty -a | tr ' ;' '\n\n' | grep -x -e icanon -e echo -e isig -e icrnl -e opost | tr '\n' ' '; echo`, tag))
			screen = m.WaitFor(`(?m)^`+tag+` \S+\n.*\S`, 0)
			if after := settings(t, screen, tag); after != before {
				t.Errorf("rl %s: terminal settings not restored:\nbefore %s\nafter  %s\nscreen:\n%s", c.args, before, after, screen)
			}
		}
	})
}

// settings is the stty -g output printed after tag on the screen.
func settings(t *testing.T, screen, tag string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + tag + ` (\S+)$`).FindStringSubmatch(screen)
	if m == nil {
		t.Fatalf("no %s line on the screen:\n%s", tag, screen)
	}
	return strings.TrimSpace(m[1])
}

// TestRunTTYHangup: when rl's terminal goes away (the terminal window is
// closed: SIGHUP, then EIO on reads), rl ends and its --rm container is
// removed; nothing stays running with no terminal. The shell as PID 1 of
// its namespace ignores a forwarded SIGHUP, so forwarding alone is not
// enough.
func TestRunTTYHangup(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		before := psIDs(t, u)
		m := tmuxRL(t, u, "run", "-it", "--rm", "busybox", "sh")
		m.WaitFor(rootPrompt, 30*time.Second)
		var pid int
		fmt.Sscan(m.tmux("display-message", "-p", "-t", "rl", "#{pane_pid}"), &pid)
		if pid <= 1 {
			t.Fatalf("no pane pid")
		}
		m.tmux("kill-server")
		deadline := time.Now().Add(10 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("rl run -it --rm busybox sh (pid %d) still running 10 s after its terminal closed", pid)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for psIDs(t, u) != before {
			if time.Now().After(deadline) {
				t.Fatalf("the --rm container is still there 10 s after its terminal closed:\n%v", rl(t, u, "ps", "-a"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}
