package runcache

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

func TestGetPut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.json")
	var got []string
	if Get(path, "k1", "a", &got) {
		t.Fatal("hit in a file that does not exist")
	}
	Put(path, "k1", "a", []string{"x", "y"})
	Put(path, "k1", "b", []string{"z"})
	if !Get(path, "k1", "a", &got) || !reflect.DeepEqual(got, []string{"x", "y"}) {
		t.Fatalf("a under k1: got %q", got)
	}
	if Get(path, "k2", "a", &got) {
		t.Fatal("hit under another key")
	}
	// A put under a new key drops the old key's entries.
	Put(path, "k2", "c", []string{"w"})
	if Get(path, "k1", "b", &got) || Get(path, "k2", "b", &got) {
		t.Fatal("k1's entries survived a put under k2")
	}
	if !Get(path, "k2", "c", &got) || !reflect.DeepEqual(got, []string{"w"}) {
		t.Fatalf("c under k2: got %q", got)
	}
	// Bounded: the entry past maxEntries starts afresh.
	for i := range maxEntries + 1 {
		Put(path, "k2", strconv.Itoa(i), i)
	}
	var n int
	if Get(path, "k2", "0", &n) || !Get(path, "k2", strconv.Itoa(maxEntries), &n) || n != maxEntries {
		t.Fatal("the file is not bounded")
	}
	// A damaged file is a miss, and the next put mends it.
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if Get(path, "k2", strconv.Itoa(maxEntries), &n) {
		t.Fatal("hit in a damaged file")
	}
	Put(path, "k2", "d", 1)
	if !Get(path, "k2", "d", &n) || n != 1 {
		t.Fatal("put after damage")
	}
}

type blob []byte

func (b blob) MarshalBinary() ([]byte, error) { return append([]byte("bin:"), b...), nil }
func (b *blob) UnmarshalBinary(data []byte) error {
	*b = append(blob(nil), data[len("bin:"):]...)
	return nil
}

// TestTypes: a type with a binary encoding of its own keeps it; an entry
// read as another type (another build's) is a miss.
func TestTypes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache")
	Put(path, "k", "b", blob("xyz"))
	var b blob
	if !Get(path, "k", "b", &b) || string(b) != "xyz" {
		t.Fatalf("binary entry: %q", b)
	}
	Put(path, "k", "s", []string{"a"})
	var n int
	if Get(path, "k", "s", &n) {
		t.Fatal("a []string entry read as an int")
	}
	var s struct{ A, B string }
	if Get(path, "k", "s", &s) {
		t.Fatal("a []string entry read as a struct")
	}
	var ss []string
	if !Get(path, "k", "s", &ss) || len(ss) != 1 || ss[0] != "a" {
		t.Fatalf("[]string entry: %q", ss)
	}
}
