package initproc

import (
	"slices"
	"testing"
)

// TestEnviron: each variable once, at its first place with its last value
// (a C program's getenv takes the first of two); PATH and HOME filled in
// when unset.
func TestEnviron(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"PATH=/img", "A=1", "PATH=/user", "B=x=y", "A=2"}, []string{"PATH=/user", "A=2", "B=x=y", "HOME=/root"}},
		{[]string{"HOME=/h", "TERM=xterm", "TERM=vt100"}, []string{"HOME=/h", "TERM=vt100", defaultPath}},
		{[]string{"EMPTY=", "EMPTY=", "NOEQ", "NOEQ"}, []string{"EMPTY=", "NOEQ", defaultPath, "HOME=/root"}},
		{nil, []string{defaultPath, "HOME=/root"}},
	} {
		if got := Environ(c.in, "/root"); !slices.Equal(got, c.want) {
			t.Errorf("Environ(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
