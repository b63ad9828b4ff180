package main

import "testing"

// TestMayExec: rl run's command lines with a terminal or detached keep the
// fork (the host rl restores the terminal, or returns first); a -d or -t
// anywhere, the container's command included, counts.
func TestMayExec(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"run", "--rm", "busybox", "true"}, true},
		{[]string{"run", "-i", "--rm", "-e", "A=b", "busybox", "sh", "-c", "exit 3"}, true},
		{[]string{"run", "--name", "x", "--", "busybox", "true"}, true},
		{[]string{"run", "-d", "busybox", "sleep", "9"}, false},
		{[]string{"run", "--detach", "busybox", "sleep", "9"}, false},
		{[]string{"run", "--detach=true", "busybox", "sleep", "9"}, false},
		{[]string{"run", "-t", "busybox", "sh"}, false},
		{[]string{"run", "-it", "busybox", "sh"}, false},
		{[]string{"run", "-dit", "busybox", "sh"}, false},
		{[]string{"run", "--tty", "busybox", "sh"}, false},
		{[]string{"run", "--rm", "busybox", "ls", "-t"}, false},
	} {
		if got := mayExec(c.args); got != c.want {
			t.Errorf("mayExec(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}
