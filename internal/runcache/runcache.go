// Package runcache keeps, in a file of the store's run dir, results that
// cost milliseconds to work out and microseconds to key: what a short image
// name stands for, a compiled seccomp filter. A file holds the entries of
// one key, a digest of everything its results depend on: under another key
// every entry is a miss, and the first Put starts the file afresh. A file
// that cannot be read or written is a miss, never an error: the next run
// works the result out again.
package runcache

import (
	"encoding/json"
	"os"

	"go.podman.io/storage/pkg/ioutils"
)

type file struct {
	Key     string                     `json:"key"`
	Entries map[string]json.RawMessage `json:"entries"`
}

// maxEntries bounds a file: an entry beyond it starts the file afresh.
const maxEntries = 64

func read(path, key string) file {
	var f file
	if b, err := os.ReadFile(path); err != nil || json.Unmarshal(b, &f) != nil || f.Key != key {
		return file{Key: key}
	}
	return f
}

// Get decodes entry name of the file at path into v, if the file holds
// that entry under key.
func Get(path, key, name string, v any) bool {
	raw, ok := read(path, key).Entries[name]
	return ok && json.Unmarshal(raw, v) == nil
}

// Put records v as entry name under key. Two processes that put at once
// both replace the file whole (a rename): one entry may be lost, which
// costs one more miss.
func Put(path, key, name string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	f := read(path, key)
	if f.Entries == nil || len(f.Entries) >= maxEntries {
		f.Entries = map[string]json.RawMessage{}
	}
	f.Entries[name] = b
	if out, err := json.Marshal(f); err == nil {
		_ = ioutils.AtomicWriteFileWithOpts(path, out, 0o600, &ioutils.AtomicFileWriterOptions{NoSync: true})
	}
}
