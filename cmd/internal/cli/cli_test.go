package cli

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	"github.com/rlcontainers/rl/internal/wire"
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
		got, err := decodeParsed(enc)
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

// TestParsedOtherBuild: a parse encoded by another build of rl (other
// flags: other layouts) is refused, not misread, and ParseOrDecode parses
// the words again; a message cut short is refused too.
func TestParsedOtherBuild(t *testing.T) {
	c, kctx, err := Parse([]string{"run", "--rm", "busybox", "true"}, func(int) {})
	if err != nil {
		t.Fatal(err)
	}
	good, err := Parsed{Command: Command(kctx), Given: Given(kctx), CLI: c}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	e := wire.NewEncoder(kindParsed)
	e.String("run")
	e.Uint(1)
	e.Uint(2)
	other := base64.RawURLEncoding.EncodeToString(e.Bytes())
	if _, err := decodeParsed(other); err == nil || !strings.Contains(err.Error(), "another build") {
		t.Errorf("another build's layout: %v", err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	for i := range raw {
		if _, err := decodeParsed(base64.RawURLEncoding.EncodeToString(raw[:i])); err == nil {
			t.Fatalf("%d of %d bytes decoded", i, len(raw))
		}
	}
	t.Setenv(EnvParsed, other)
	p, err := ParseOrDecode(nil, []string{"run", "-e", "A=1", "busybox", "env"}, func(int) {})
	if err != nil || p.Command != "run" || !reflect.DeepEqual(p.CLI.Run.Env, []string{"A=1"}) {
		t.Errorf("ParseOrDecode of another build's message: %+v, %v", p, err)
	}
	if _, err := ParseOrDecode([]byte(other), nil, func(int) {}); err == nil {
		t.Errorf("ParseOrDecode with nothing to parse again: no error")
	}
}
