package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestPureRunFlags: every flag of rl run (and the global ones) is either
// pure or impure, not both: a new flag must be classified (a flag wrongly
// called pure would let a cached parse go stale).
func TestPureRunFlags(t *testing.T) {
	seen := map[string]bool{}
	for _, typ := range []reflect.Type{reflect.TypeOf(RunCmd{}), reflect.TypeOf(Globals{})} {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if _, positional := f.Tag.Lookup("arg"); positional || f.Tag.Get("kong") == "-" {
				continue
			}
			name := f.Tag.Get("name")
			if name == "" {
				name = kebab(f.Name)
			}
			seen[name] = true
			if pureRunFlags[name] == impureRunFlags[name] {
				t.Errorf("flag --%s (%s.%s): classify it in pureRunFlags or impureRunFlags", name, typ.Name(), f.Name)
			}
			if pureRunFlags[name] && f.Tag.Get("type") == "path" {
				t.Errorf("flag --%s is a path (resolved against the working directory): not pure", name)
			}
		}
	}
	for _, m := range []map[string]bool{pureRunFlags, impureRunFlags} {
		for name := range m {
			if !seen[name] {
				t.Errorf("--%s is classified but no flag of rl run", name)
			}
		}
	}
}

// kebab is kong's default flag name of a field.
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 && !(s[i-1] >= 'A' && s[i-1] <= 'Z') {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func TestParseCache(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "rl")
	if err := os.WriteFile(self, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--rm", "busybox", "true"}
	c := NewParseCache(dir, self, args)
	if _, ok := c.Get(); ok {
		t.Fatal("hit in an empty cache")
	}
	c.Put([]byte("parsed"), map[string]bool{"rm": true})
	if b, ok := NewParseCache(dir, self, args).Get(); !ok || string(b) != "parsed" {
		t.Fatalf("after Put: %q %v", b, ok)
	}
	// Arguments that join to the same string are another command line.
	if _, ok := NewParseCache(dir, self, []string{"run", "--rm", "busybox true"}).Get(); ok {
		t.Fatal("other arguments hit")
	}
	// An impure flag keeps the command line out.
	e := NewParseCache(dir, self, []string{"run", "-e", "A=1", "busybox"})
	e.Put([]byte("with env"), map[string]bool{"env": true})
	if _, ok := e.Get(); ok {
		t.Fatal("a command line with -e was kept")
	}
	// Another rl binary (a rebuild, an install) misses.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(self, later, later); err != nil {
		t.Fatal(err)
	}
	if _, ok := NewParseCache(dir, self, args).Get(); ok {
		t.Fatal("a changed rl binary hit")
	}
	// Bounded.
	for i := 0; i < maxParsed+1; i++ {
		NewParseCache(dir, self, []string{"run", "--name", string(rune('a' + i)), "busybox"}).Put([]byte("x"), map[string]bool{"name": true})
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "parsed"))
	if len(entries) > maxParsed {
		t.Fatalf("%d entries, more than %d", len(entries), maxParsed)
	}
	if NewParseCache("", self, args) != nil {
		t.Fatal("a cache without a run dir")
	}
}
