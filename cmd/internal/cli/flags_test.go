package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseEnv(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "env")
	if err := os.WriteFile(file, []byte("# comment\n\nA=file\nB=file\n  C=spaced\nFROMHOST\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FROMHOST", "host")
	t.Setenv("ALSO", "yes")
	os.Unsetenv("UNSET_VAR")
	got, err := ParseEnv([]string{"B=flag", "ALSO", "UNSET_VAR", "E=x=y"}, []string{file})
	if err != nil {
		t.Fatal(err)
	}
	want := "A=file B=file C=spaced FROMHOST=host B=flag ALSO=yes E=x=y"
	if strings.Join(got, " ") != want {
		t.Errorf("got %q, want %q", strings.Join(got, " "), want)
	}
	for _, bad := range []string{"=x", "A B=c", ""} {
		if _, err := ParseEnv([]string{bad}, nil); err == nil || !strings.Contains(err.Error(), "KEY=VALUE") {
			t.Errorf("-e %q: err %v", bad, err)
		}
	}
	if _, err := ParseEnv(nil, []string{filepath.Join(dir, "missing")}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing --env-file: err %v", err)
	}
	if err := os.WriteFile(file, []byte("GOOD=1\n=bad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseEnv(nil, []string{file}); err == nil || !strings.Contains(err.Error(), file+":2") {
		t.Errorf("a bad line names file:line: err %v", err)
	}
}

func TestParseVolumes(t *testing.T) {
	dir := t.TempDir()
	got, err := ParseVolumes([]string{dir + ":/data", dir + ":/ro/:ro", dir + ":/z:z"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Source != dir || got[0].Target != "/data" || got[0].ReadOnly ||
		got[1].Target != "/ro" || !got[1].ReadOnly || got[2].ReadOnly {
		t.Errorf("got %+v", got)
	}
	for bad, why := range map[string]string{
		"nocolon":            "use -v SRC:DST",
		"name:/x":            "named volumes are not supported",
		dir + ":relative":    "must be an absolute path",
		"/nonexistent-rl:/x": "create it first",
		dir + ":/x:bogus":    "unknown option",
		dir + ":/x:ro:extra": "use -v SRC:DST",
		":/x":                "use -v SRC:DST",
	} {
		if _, err := ParseVolumes([]string{bad}); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("-v %q: err %v, want %q", bad, err, why)
		}
	}
}

func TestParseTmpfs(t *testing.T) {
	got, err := ParseTmpfs([]string{"/data:size=1m,noexec", "/x/"})
	if err != nil || len(got) != 2 || got[0].Options != "size=1m,noexec" || got[1].Target != "/x" {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := ParseTmpfs([]string{"relative"}); err == nil {
		t.Error("a relative --tmpfs destination was accepted")
	}
	if _, err := ParseTmpfs([]string{"/d:bogus"}); err == nil {
		t.Error("an unknown --tmpfs option was accepted")
	}
}

func TestHostname(t *testing.T) {
	for name, ok := range map[string]bool{"web": true, "a.b-c": true, "-x": false, "a b": false, strings.Repeat("a", 65): false} {
		if ValidHostname(name) != ok {
			t.Errorf("ValidHostname(%q) = %v", name, !ok)
		}
	}
}

func TestBinaryFor(t *testing.T) {
	if BinaryFor("pull") != Image || BinaryFor("load") != Image || BinaryFor("images") != Image || BinaryFor("run") != Core || BinaryFor("ps") != Core || BinaryFor("rmi") != Core {
		t.Error("pull, load and images run in rl-image, the rest in rl-core")
	}
}

func TestParseVolumesFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "conf")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ParseVolumes([]string{f + ":/etc/app.conf:ro", filepath.Dir(f) + ":/d"})
	if err != nil || !got[0].File || got[1].File {
		t.Fatalf("a file source binds onto a file, a directory onto a directory: %+v %v", got, err)
	}
}

func TestPreScan(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--rm", "busybox"}, "run"},
		{[]string{"--root", "/x", "run", "busybox"}, "run"},
		{[]string{"--root=/x", "--storage-driver", "vfs", "ps"}, "ps"},
		{[]string{"--help"}, ""},
		{[]string{"--bogus", "run"}, ""},
		{[]string{"--root"}, ""},
		{nil, ""},
	} {
		if got := PreScan(c.args); got != c.want {
			t.Errorf("PreScan(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}
