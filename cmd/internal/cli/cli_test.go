package cli

import (
	"reflect"
	"testing"
)

// TestParseRun: rl run's own grammar gives what the whole CLI's gives, for
// command lines that parse and for ones that do not.
func TestParseRun(t *testing.T) {
	for _, args := range [][]string{
		{"run", "busybox"},
		{"run", "--rm", "-it", "--name", "x", "-e", "A=1", "-v", "/tmp:/t:ro", "-p", "8080:80", "busybox", "sh", "-c", "echo $$"},
		{"--root", "/r", "--runroot", "/rr", "--storage-driver", "vfs", "run", "-d", "--network", "none", "--init", "img", "--", "-x"},
		{"run", "--security-opt", "seccomp=unconfined", "--cap-drop", "ALL", "--userns", "keep-id", "-u", "1:2", "-w", "/w", "img"},
		{"run", "--bogus", "busybox"},
		{"run"},
		{"run", "--pull", "sometimes", "busybox"},
	} {
		want, wctx, werr := Parse(args, func(int) {})
		got, gctx, gerr := ParseRun(args, func(int) {})
		if (werr == nil) != (gerr == nil) {
			t.Errorf("%q: Parse err %v, ParseRun err %v", args, werr, gerr)
			continue
		}
		if werr != nil {
			if args[0] == "run" && werr.Error() != gerr.Error() {
				t.Errorf("%q: Parse says %q, ParseRun %q", args, werr, gerr)
			}
			continue
		}
		if !reflect.DeepEqual(want.Globals, got.Globals) || !reflect.DeepEqual(want.Run, got.Run) {
			t.Errorf("%q: ParseRun gives\n%+v\n%+v\nwant\n%+v\n%+v", args, got.Globals, got.Run, want.Globals, want.Run)
		}
		if Command(wctx) != Command(gctx) || !reflect.DeepEqual(Given(wctx), Given(gctx)) {
			t.Errorf("%q: command %q given %v, want %q %v", args, Command(gctx), Given(gctx), Command(wctx), Given(wctx))
		}
	}
	// Only for what PreScan takes for rl run.
	if _, _, err := ParseRun([]string{"ps"}, func(int) {}); err == nil {
		t.Errorf("ParseRun parsed rl ps")
	}
}
