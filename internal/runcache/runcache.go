// Package runcache keeps, in a file of the store's run dir, results that
// cost milliseconds to work out and microseconds to key: what a short image
// name stands for, a compiled seccomp filter. A file holds the entries of
// one key, a digest of everything its results depend on: under another key
// every entry is a miss, and the first Put starts the file afresh. A file
// that cannot be read or written is a miss, never an error: the next run
// works the result out again.
package runcache

import (
	"encoding"
	"os"
	"reflect"

	"github.com/rlcontainers/rl/internal/wire"
	"go.podman.io/storage/pkg/ioutils"
)

// A file is an internal/wire message: its key, then each entry's name,
// the layout of its value's type (an entry another build wrote with
// another type is a miss) and the value, in its binary encoding when the
// type has one (encoding.BinaryMarshaler), else wire's. (JSON cost ~0.2 ms
// of each rl run's start for the two files it reads: encoding/json's
// first use of each type, and scanning the seccomp program's base64.)
type file struct {
	Key     string
	Entries map[string]entry
}

type entry struct {
	Layout uint64
	Value  []byte
}

const kindFile = 'R'

// maxEntries bounds a file: an entry beyond it starts the file afresh.
const maxEntries = 64

func read(path, key string) file {
	b, err := os.ReadFile(path)
	if err != nil {
		return file{Key: key}
	}
	d := wire.NewDecoder(b, kindFile)
	f := file{Key: d.String()}
	if f.Key != key || d.Err() != nil {
		return file{Key: key}
	}
	n := d.Len(3)
	f.Entries = make(map[string]entry, n)
	for range n {
		name := d.String()
		f.Entries[name] = entry{Layout: d.Uint(), Value: d.Blob()}
	}
	if d.Finish() != nil {
		return file{Key: key}
	}
	return f
}

func (f file) encode() []byte {
	e := wire.NewEncoder(kindFile)
	e.String(f.Key)
	e.Uint(uint64(len(f.Entries)))
	for name, en := range f.Entries {
		e.String(name)
		e.Uint(en.Layout)
		e.Blob(en.Value)
	}
	return e.Bytes()
}

// Get decodes entry name of the file at path into v (a pointer), if the
// file holds that entry under key, written for v's type.
func Get(path, key, name string, v any) bool {
	en, ok := read(path, key).Entries[name]
	if !ok {
		return false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false
	}
	layout, err := wire.Layout(rv.Type().Elem())
	if err != nil || layout != en.Layout {
		return false
	}
	if u, ok := v.(encoding.BinaryUnmarshaler); ok {
		return u.UnmarshalBinary(en.Value) == nil
	}
	d := wire.NewDecoder(en.Value, kindValue)
	d.Value(rv.Elem())
	return d.Finish() == nil
}

const kindValue = 'V'

// Put records v as entry name under key. Two processes that put at once
// both replace the file whole (a rename): one entry may be lost, which
// costs one more miss.
func Put(path, key, name string, v any) {
	layout, err := wire.Layout(reflect.TypeOf(v))
	if err != nil {
		return
	}
	var b []byte
	if m, ok := v.(encoding.BinaryMarshaler); ok {
		if b, err = m.MarshalBinary(); err != nil {
			return
		}
	} else {
		e := wire.NewEncoder(kindValue)
		e.Value(reflect.ValueOf(v))
		b = e.Bytes()
	}
	f := read(path, key)
	if f.Entries == nil || len(f.Entries) >= maxEntries {
		f.Entries = map[string]entry{}
	}
	f.Entries[name] = entry{Layout: layout, Value: b}
	_ = ioutils.AtomicWriteFileWithOpts(path, f.encode(), 0o600, &ioutils.AtomicFileWriterOptions{NoSync: true})
}
