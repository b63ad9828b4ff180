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
