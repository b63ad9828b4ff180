package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLowerDirs: the lowerdir option from the overlay driver's files: the
// top layer's diff, then its "lower" file's links; a layer or link that
// could smuggle in another option or leave the driver's directory, and an
// option too long for mount(2), leave the container to the library.
func TestLowerDirs(t *testing.T) {
	dir := t.TempDir()
	s := &Store{overlay: filepath.Join(dir, "overlay")}
	write := func(layer, lower string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(s.overlay, layer, "diff"), 0o700); err != nil {
			t.Fatal(err)
		}
		if lower != "" {
			if err := os.WriteFile(filepath.Join(s.overlay, layer, "lower"), []byte(lower), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("base", "")
	write("top", "l/AAA:l/BBB\n")
	write("comma", "l/AAA,upperdir=/x")
	write("dots", "l/../../etc")
	write("long", strings.Repeat("l/"+strings.Repeat("A", 26)+":", 200)+"l/B")
	for _, c := range []struct {
		layer, lower string
		ok           bool
	}{
		{"base", s.overlay + "/base/diff", true},
		{"top", s.overlay + "/top/diff:" + s.overlay + "/l/AAA:" + s.overlay + "/l/BBB", true},
		{"comma", "", false},
		{"dots", "", false},
		{"long", "", false},
		{"", "", false},
		{"a,b", "", false},
		{"../x", "", false},
	} {
		lower, top, ok := s.lowerDirs(c.layer)
		if ok != c.ok || (ok && (lower != c.lower || top != filepath.Join(s.overlay, c.layer, "diff"))) {
			t.Errorf("lowerDirs(%q) = %q, %q, %v; want %q, %v", c.layer, lower, top, ok, c.lower, c.ok)
		}
	}
}

// TestRmEntries: the directory names of --rm containers are <id>-<name>;
// anything else in rl-rm is not a container.
func TestRmEntries(t *testing.T) {
	dir := t.TempDir()
	s := &Store{rm: dir, known: map[string]rmKnown{}}
	id := strings.Repeat("ab", 32)
	for _, n := range []string{id + "-web.1", id[:63] + "-x", "tmp", id + "-"} {
		if err := os.Mkdir(filepath.Join(dir, n), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, strings.Repeat("cd", 32)+"-file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got := s.entries()
	if len(got) != 1 || got[0].id != id || got[0].name != "web.1" {
		t.Fatalf("entries = %v, want %s web.1", got, id)
	}
	for _, ref := range []string{id, "web.1"} {
		if e, ok := s.find(ref); !ok || e != got[0] {
			t.Errorf("find(%q) = %v, %v", ref, e, ok)
		}
	}
	if _, ok := s.find(id[:12]); ok {
		t.Errorf("find by a prefix: LookupContainer does prefixes")
	}
	if e, ok := s.byID(id); !ok || e != got[0] {
		t.Errorf("byID(%s) = %v, %v", id, e, ok)
	}
	c := s.load(got[0])
	if c.ID != id || len(c.Names) != 1 || c.Names[0] != "web.1" || c.ImageID != "" {
		t.Errorf("load of a container without a config: %+v, want its id and name (rl ps -a shows it, rl rm removes it)", c)
	}
}

// TestLeftovers: what a killed rl left in rl-rm (.new-<id>, .gone-<id>)
// is a leftover, but not a .gone- directory whose deletion goes on (its
// lock held); removing one takes its run directory too.
func TestLeftovers(t *testing.T) {
	dir := t.TempDir()
	s := &Store{rm: filepath.Join(dir, "rm"), rmRun: filepath.Join(dir, "run"), known: map[string]rmKnown{}}
	a, b, c := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	for _, d := range []string{"rm/" + goneDir + a, "rm/" + newDir + b, "rm/" + goneDir + c, "rm/" + a + "-web", "run/" + a, "run/" + c} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	held, err := flockDir(filepath.Join(s.rm, goneDir+c), unix.LOCK_SH|unix.LOCK_NB) // as another rl deleting it
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	list, gone := s.scan()
	if len(list) != 1 || len(gone) != 3 {
		t.Fatalf("scan = %v, %v", list, gone)
	}
	left := s.leftovers(gone)
	if strings.Join(left, " ") != goneDir+a+" "+newDir+b {
		t.Fatalf("leftovers = %v, want .gone-a... and .new-b... (not the locked .gone-c...)", left)
	}
	for _, l := range left {
		if err := s.removeLeftover(l); err != nil {
			t.Fatal(err)
		}
	}
	for d, want := range map[string]bool{"rm/" + goneDir + a: false, "run/" + a: false, "rm/" + newDir + b: false, "rm/" + goneDir + c: true, "run/" + c: true, "rm/" + a + "-web": true} {
		if _, err := os.Stat(filepath.Join(dir, d)); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", d, err == nil, want)
		}
	}
}
