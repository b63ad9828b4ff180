package mounts

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMkdirAllInRoot: directories are made inside root whatever symlinks
// the image has on the way (absolute ones and ".." are resolved with root as
// /), on the one-level fast path and on the deeper one, and the handle
// returned is the directory made.
func TestMkdirAllInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	for _, d := range []string{"dev", "etc"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"abs":      outside,                       // absolute: root + outside
		"up":       "../../../..",                 // climbs to root, no further
		"dangling": filepath.Join(outside, "new"), // root + outside/new: missing
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// What "abs" names, inside root.
	if err := os.MkdirAll(filepath.Join(root, outside), 0o755); err != nil {
		t.Fatal(err)
	}
	rootf, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer rootf.Close()

	for _, c := range []struct{ path, want string }{
		{"/dev/pts", "dev/pts"},        // parent exists: the fast path
		{"dev/shm", "dev/shm"},         // relative is the same
		{"/etc", "etc"},                // exists
		{"/up/escaped", "escaped"},     // ".." stops at root
		{"/abs/x", outside[1:] + "/x"}, // an absolute link is inside root
		{"/a/b/c", "a/b/c"},            // deeper: pathrs-lite
	} {
		d, err := mkdirAllInRoot(rootf, c.path)
		if err != nil {
			t.Errorf("mkdirAllInRoot(%q): %v", c.path, err)
			continue
		}
		want, err := os.Stat(filepath.Join(root, c.want))
		if err != nil {
			t.Errorf("mkdirAllInRoot(%q): %s not made: %v", c.path, c.want, err)
		} else if got, err := d.Stat(); err != nil || !os.SameFile(got, want) {
			t.Errorf("mkdirAllInRoot(%q): the handle is not %s (%v)", c.path, c.want, err)
		}
		d.Close()
	}
	for _, p := range []string{"/file/x", "/dangling"} {
		if d, err := mkdirAllInRoot(rootf, p); err == nil {
			d.Close()
			t.Errorf("mkdirAllInRoot(%q): want an error (pathrs-lite makes no directory through a file or a dangling link)", p)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("made outside root: %v", ents)
	}
}
