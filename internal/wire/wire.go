// Package wire is the binary encoding of the messages rl's own processes
// send one another on the way to a container's workload (the supervisor's
// specs for the container's init). Both ends are the same build of rl, so
// a message is its fields in a fixed order: varints, length-prefixed bytes,
// no names and no reflection. encoding/json works out how to handle a type
// by reflection at its first use in each process, and rl's processes are
// short-lived: for the init's two specs that first use cost ~0.9 ms of CPU
// per rl run (both ends), more than encoding and decoding themselves.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Encoder appends values to a message.
type Encoder struct{ b []byte }

// NewEncoder starts a message with its kind, a byte the decoder checks.
func NewEncoder(kind byte) *Encoder { return &Encoder{b: []byte{kind}} }

// Bytes is the message so far.
func (e *Encoder) Bytes() []byte { return e.b }

// Uint appends v as an unsigned varint.
func (e *Encoder) Uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

// Int appends v as a signed varint.
func (e *Encoder) Int(v int64) { e.b = binary.AppendVarint(e.b, v) }

// Bool appends v as one byte.
func (e *Encoder) Bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// Blob appends b, prefixed by its length.
func (e *Encoder) Blob(b []byte) {
	e.Uint(uint64(len(b)))
	e.b = append(e.b, b...)
}

// String appends s, prefixed by its length.
func (e *Encoder) String(s string) {
	e.Uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

// Strings appends the count of ss, then each.
func (e *Encoder) Strings(ss []string) {
	e.Uint(uint64(len(ss)))
	for _, s := range ss {
		e.String(s)
	}
}

// Decoder reads a message's values in the order they were appended. The
// first error sticks: later reads return zero values, and Finish reports
// it.
type Decoder struct {
	b   []byte
	err error
}

// ErrShort is a message that ends before its last value.
var ErrShort = errors.New("message ends early")

// NewDecoder reads msg, which must be of kind.
func NewDecoder(msg []byte, kind byte) *Decoder {
	d := &Decoder{b: msg}
	switch {
	case len(msg) == 0:
		d.err = ErrShort
	case msg[0] != kind:
		d.err = fmt.Errorf("message of kind %d, expected %d", msg[0], kind)
	default:
		d.b = msg[1:]
	}
	return d
}

// Fail records err (the first error sticks) and ends the reading: for a
// value that decoded but does not make sense to its reader.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

// Uint reads an unsigned varint.
func (d *Decoder) Uint() uint64 { return varint(d, binary.Uvarint) }

// Int reads a signed varint.
func (d *Decoder) Int() int64 { return varint(d, binary.Varint) }

func varint[T uint64 | int64](d *Decoder, read func([]byte) (T, int)) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.b)
	if n <= 0 {
		d.Fail(ErrShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Bool reads a byte that must be 0 or 1.
func (d *Decoder) Bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 {
		d.Fail(ErrShort)
		return false
	}
	v := d.b[0]
	d.b = d.b[1:]
	if v > 1 {
		d.Fail(fmt.Errorf("boolean byte %d", v))
	}
	return v == 1
}

// Len reads a count of what follows, which must fit in the rest of the
// message at min bytes each (so a corrupt count cannot make the reader
// allocate more than the message's size).
func (d *Decoder) Len(min int) int {
	n := d.Uint()
	if d.err == nil && n > uint64(len(d.b))/uint64(max(min, 1)) {
		d.Fail(ErrShort)
		return 0
	}
	return int(n)
}

// Blob reads length-prefixed bytes (a copy).
func (d *Decoder) Blob() []byte {
	n := d.Len(1)
	if d.err != nil || n == 0 {
		return nil
	}
	b := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return b
}

// String reads a length-prefixed string.
func (d *Decoder) String() string {
	n := d.Len(1)
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// Strings reads what Encoder.Strings appended; none is nil.
func (d *Decoder) Strings() []string {
	n := d.Len(1)
	if d.err != nil || n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.String()
	}
	return ss
}

// Err is the first error so far.
func (d *Decoder) Err() error { return d.err }

// Finish is the first error, or one for bytes left over.
func (d *Decoder) Finish() error {
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes after the message's end", len(d.b))
	}
	return d.err
}
