package paths

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestDefaultPaths(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("_CONTAINERS_ROOTLESS_UID", "")

	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if p.Root != filepath.Join(home, ".local/share/rl/storage") {
		t.Errorf("Root = %s", p.Root)
	}
	if p.RunRoot != filepath.Join(rt, "rl") {
		t.Errorf("RunRoot = %s with a usable XDG_RUNTIME_DIR", p.RunRoot)
	}

	t.Setenv("XDG_DATA_HOME", "/data")
	t.Setenv("XDG_RUNTIME_DIR", "")
	p, err = Default()
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(os.TempDir(), "rl-"+strconv.Itoa(os.Getuid()))
	if p.Root != "/data/rl/storage" || p.RunRoot != want || !strings.Contains(p.RunRootReason, "not set") {
		t.Errorf("got %+v, want /data/rl/storage and %s", p, want)
	}

	// After su or sudo -u, XDG_RUNTIME_DIR names someone else's directory.
	t.Setenv("XDG_RUNTIME_DIR", "/nonexistent-runtime-dir")
	if p, _ = Default(); p.RunRoot != want {
		t.Errorf("unusable XDG_RUNTIME_DIR: RunRoot = %s", p.RunRoot)
	}

	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "")
	if _, err := Default(); err == nil || !strings.Contains(err.Error(), "--root") {
		t.Errorf("no HOME: err %v", err)
	}
}

func TestEnsurePrivateDir(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "run")
	if err := EnsurePrivateDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("%s: %v %v", dir, fi.Mode(), err)
	}
	if err := EnsurePrivateDir(dir); err != nil {
		t.Errorf("existing own dir: %v", err)
	}
	// A symlink planted in a shared /tmp must not be followed.
	link := filepath.Join(base, "planted")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if err := EnsurePrivateDir(link); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("symlink: err %v", err)
	}
}

// TestForRoot: each store gets its own run dir inside the user's, the
// same however its path is spelled; --runroot wins.
func TestForRoot(t *testing.T) {
	base := t.TempDir()
	def := Paths{Root: filepath.Join(base, "data", "storage"), RunRoot: filepath.Join(base, "run"), RunRootReason: "XDG_RUNTIME_DIR"}
	if err := os.MkdirAll(def.Root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "data"), filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	d := def.ForRoot(def.Root)
	if filepath.Dir(d.RunRoot) != def.RunRoot || d.Root != def.Root || !strings.Contains(d.RunRootReason, "one per store") {
		t.Errorf("ForRoot(default) = %+v, want a run dir inside %s", d, def.RunRoot)
	}
	for _, same := range []string{filepath.Join(base, "link", "storage"), def.Root + "/./"} {
		if p := def.ForRoot(same); p.RunRoot != d.RunRoot || p.Root != same {
			t.Errorf("ForRoot(%s) = %+v, want run dir %s", same, p, d.RunRoot)
		}
	}
	a, b := def.ForRoot(filepath.Join(base, "a")), def.ForRoot(filepath.Join(base, "b", "not-made-yet"))
	if a.RunRoot == d.RunRoot || b.RunRoot == d.RunRoot || a.RunRoot == b.RunRoot || filepath.Dir(a.RunRoot) != def.RunRoot {
		t.Errorf("run dirs: default %s, a %s, b %s: want three inside %s", d.RunRoot, a.RunRoot, b.RunRoot, def.RunRoot)
	}
	if err := a.EnsureRunRoot(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{def.RunRoot, a.RunRoot} {
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, want a 0700 directory", dir, err)
		}
	}
	if p := a.WithRunRoot("/elsewhere"); p.RunRoot != "/elsewhere" || p.runBase != "" || p.RunRootReason != "set by --runroot" {
		t.Errorf("WithRunRoot: %+v", p)
	}
}

// TestClaimRunRoot: the first store to use a run dir records itself; the
// same store (by any spelling) passes, another one is refused naming both.
func TestClaimRunRoot(t *testing.T) {
	base := t.TempDir()
	run := filepath.Join(base, "run")
	a := Paths{Root: filepath.Join(base, "a"), RunRoot: run}
	b := Paths{Root: filepath.Join(base, "b"), RunRoot: run}
	if err := CheckRunRoot(b); err != nil {
		t.Fatalf("an unclaimed run dir: %v", err)
	}
	if err := ClaimRunRoot(a); err != nil {
		t.Fatal(err)
	}
	if err := ClaimRunRoot(a); err != nil {
		t.Errorf("claiming again: %v", err)
	}
	if err := CheckRunRoot(Paths{Root: a.Root + "/", RunRoot: run}); err != nil {
		t.Errorf("the same store: %v", err)
	}
	for name, f := range map[string]func(Paths) error{"Claim": ClaimRunRoot, "Check": CheckRunRoot} {
		err := f(b)
		if err == nil || !strings.Contains(err.Error(), a.Root) || !strings.Contains(err.Error(), b.Root) || !strings.Contains(err.Error(), "--runroot") {
			t.Errorf("%sRunRoot of another store: %v, want an error naming both stores and --runroot", name, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(run, "rl")); len(ents) != 1 {
		t.Errorf("run dir holds %v, want the record only (no temporary files)", ents)
	}
}
