package wire

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"reflect"
)

// Value appends v, a value of the kinds a command line's structs hold
// (bool, integers, strings, and slices, maps, pointers and structs of
// them), by its type's layout: a struct's exported fields in order, no
// names. Value never reads a type's tags, which is what makes it cheap
// where encoding/json is not (it builds a field table per type, at its
// first use in each process: ~0.1 ms for rl run's flags). Pair it with
// Layout: a decoder built from another version of the type must refuse
// the message, not misread it.
func (e *Encoder) Value(v reflect.Value) {
	switch v.Kind() {
	case reflect.Bool:
		e.Bool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.Int(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.Uint(v.Uint())
	case reflect.String:
		e.String(v.String())
	case reflect.Pointer:
		e.Bool(!v.IsNil())
		if !v.IsNil() {
			e.Value(v.Elem())
		}
	case reflect.Slice:
		// 0 is nil, else 1 + the length: nil and empty stay apart.
		if v.IsNil() {
			e.Uint(0)
			return
		}
		e.Uint(uint64(v.Len()) + 1)
		for i := 0; i < v.Len(); i++ {
			e.Value(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			e.Uint(0)
			return
		}
		e.Uint(uint64(v.Len()) + 1)
		it := v.MapRange()
		for it.Next() {
			e.Value(it.Key())
			e.Value(it.Value())
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() {
				e.Value(v.Field(i))
			}
		}
	default:
		panic("wire: no encoding for " + v.Type().String())
	}
}

// Value reads what Encoder.Value appended into v, which must be settable
// and of the same type.
func (d *Decoder) Value(v reflect.Value) {
	if d.err != nil {
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(d.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := d.Int()
		if v.OverflowInt(n) {
			d.Fail(fmt.Errorf("%d overflows %s", n, v.Type()))
			return
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n := d.Uint()
		if v.OverflowUint(n) {
			d.Fail(fmt.Errorf("%d overflows %s", n, v.Type()))
			return
		}
		v.SetUint(n)
	case reflect.String:
		v.SetString(d.String())
	case reflect.Pointer:
		if d.Bool() {
			p := reflect.New(v.Type().Elem())
			d.Value(p.Elem())
			v.Set(p)
		}
	case reflect.Slice:
		n := d.Len(1) // every element takes a byte at least
		if n == 0 || d.err != nil {
			return
		}
		s := reflect.MakeSlice(v.Type(), n-1, n-1)
		for i := 0; i < n-1; i++ {
			d.Value(s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		n := d.Len(2)
		if n == 0 || d.err != nil {
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), n-1)
		for i := 0; i < n-1 && d.err == nil; i++ {
			k := reflect.New(v.Type().Key()).Elem()
			d.Value(k)
			e := reflect.New(v.Type().Elem()).Elem()
			d.Value(e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() {
				d.Value(v.Field(i))
			}
		}
	default:
		d.Fail(errors.New("wire: no encoding for " + v.Type().String()))
	}
}

// Layout is a digest of t's layout as Value encodes it: kinds, and the
// names and order of struct fields. Two builds whose types differ in any
// of that have different layouts (but for a hash collision). A type with
// a kind Value cannot encode (a func, a channel, an interface) or a struct
// with an unexported field (which Value would leave out) is an error:
// check it before Value, which panics on the former.
func Layout(t reflect.Type) (uint64, error) {
	h := fnv.New64a()
	if err := layout(h, t, 0); err != nil {
		return 0, err
	}
	return h.Sum64(), nil
}

func layout(h hash.Hash64, t reflect.Type, depth int) error {
	if depth > 16 {
		return errors.New("wire: a type nested too deep (recursive?): " + t.String())
	}
	h.Write([]byte{byte(t.Kind())})
	switch t.Kind() {
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return nil
	case reflect.Pointer, reflect.Slice:
		return layout(h, t.Elem(), depth+1)
	case reflect.Map:
		if err := layout(h, t.Key(), depth+1); err != nil {
			return err
		}
		return layout(h, t.Elem(), depth+1)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				// Value cannot set it: a time.Time, say, would
				// arrive as its zero value.
				return fmt.Errorf("wire: %s has an unexported field %s", t, f.Name)
			}
			h.Write([]byte(f.Name))
			h.Write([]byte{0})
			if err := layout(h, f.Type, depth+1); err != nil {
				return err
			}
		}
		h.Write([]byte{0xff})
		return nil
	}
	return errors.New("wire: no encoding for " + t.String())
}
