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

// TestParsedRoundTrip: what the host encodes (the global flags and the
// command's own struct) decodes to the CLI it parsed, for every command.
func TestParsedRoundTrip(t *testing.T) {
	for _, args := range [][]string{
		{"--root", "/r", "run", "--rm", "-it", "-e", "A=1", "-p", "8080:80", "--init", "busybox", "sh", "-c", "x"},
		{"exec", "-it", "-u", "1", "c", "sh"},
		{"start", "-a", "c"}, {"stop", "-t", "3", "c"}, {"kill", "-s", "HUP", "c"}, {"wait", "c"},
		{"logs", "c"}, {"attach", "c"}, {"inspect", "c"}, {"--runroot", "/x", "ps", "-a"}, {"rm", "-f", "c"},
		{"pull", "-q", "--tls-verify=false", "img"}, {"load", "-i", "cli_test.go"}, {"images"}, {"rmi", "-f", "img"},
		{"info"}, {"system", "check"}, {"doctor"},
	} {
		c, kctx, err := Parse(args, func(int) {})
		if err != nil {
			t.Errorf("%q: %v", args, err)
			continue
		}
		want := Parsed{Command: Command(kctx), Given: Given(kctx), CLI: c}
		enc, err := want.Encode()
		if err != nil {
			t.Errorf("%q: Encode: %v", args, err)
			continue
		}
		got, err := decodeParsed([]byte(enc))
		if err != nil {
			t.Errorf("%q: decode: %v", args, err)
			continue
		}
		// Only the command's own struct travels (kong fills the other
		// commands' defaults too, which nothing reads).
		gf, _ := commandField(got.CLI, got.Command)
		wf, ok := commandField(want.CLI, want.Command)
		if !ok || got.Command != want.Command || !reflect.DeepEqual(got.Given, want.Given) ||
			got.CLI.Globals != want.CLI.Globals || !reflect.DeepEqual(gf.Interface(), wf.Interface()) {
			t.Errorf("%q: decoded %q %v %+v %+v\nwant %q %v %+v %+v", args, got.Command, got.Given, got.CLI.Globals, gf, want.Command, want.Given, want.CLI.Globals, wf)
		}
	}
}
