package wire

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

type inner struct {
	S string
	P *bool
}

type outer struct {
	B  bool
	I  int8
	U  uint32
	SS []string
	M  map[string]bool
	In []inner
	Pi *inner
}

// TestValue: every kind Value encodes comes back; nil and empty slices and
// maps stay apart; an overflowing integer, a bad boolean byte and a count
// beyond the message's size are errors, not panics or huge allocations.
func TestValue(t *testing.T) {
	yes := true
	for _, v := range []outer{
		{},
		{B: true, I: -7, U: 1 << 31, SS: []string{"a", ""}, M: map[string]bool{"x": true, "": false},
			In: []inner{{S: "s", P: &yes}, {}}, Pi: &inner{S: "p"}},
		{SS: []string{}, M: map[string]bool{}, In: []inner{}},
	} {
		e := NewEncoder('T')
		e.Value(reflect.ValueOf(v))
		var got outer
		d := NewDecoder(e.Bytes(), 'T')
		d.Value(reflect.ValueOf(&got).Elem())
		if err := d.Finish(); err != nil || !reflect.DeepEqual(got, v) {
			t.Fatalf("round trip of %+v: %+v, %v", v, got, err)
		}
	}

	e := NewEncoder('T')
	e.Int(300)
	var small int8
	d := NewDecoder(e.Bytes(), 'T')
	d.Value(reflect.ValueOf(&small).Elem())
	if d.Finish() == nil {
		t.Error("300 decoded into an int8")
	}
	if d := NewDecoder([]byte{'T', 2}, 'T'); d.Bool() || d.Finish() == nil {
		t.Error("boolean byte 2 decoded")
	}
	e = NewEncoder('T')
	e.Uint(1 << 40) // a slice's count, far beyond the message
	var ss []string
	d = NewDecoder(e.Bytes(), 'T')
	d.Value(reflect.ValueOf(&ss).Elem())
	if !errors.Is(d.Finish(), ErrShort) || ss != nil {
		t.Errorf("a count beyond the message: %v, %q", d.Finish(), ss)
	}
	if NewDecoder([]byte{'X'}, 'T').Finish() == nil || NewDecoder(nil, 'T').Finish() == nil {
		t.Error("a message of another kind, or none, decoded")
	}
}

// TestLayout: a field renamed, reordered or retyped changes the layout;
// a kind Value cannot encode is an error.
func TestLayout(t *testing.T) {
	type a struct {
		X string
		Y int
	}
	type renamed struct {
		X string
		Z int
	}
	type reordered struct {
		Y int
		X string
	}
	type retyped struct {
		X string
		Y uint
	}
	type same struct {
		X string
		Y int
	}
	la, _ := Layout(reflect.TypeOf(a{}))
	for _, other := range []any{renamed{}, reordered{}, retyped{}} {
		if l, _ := Layout(reflect.TypeOf(other)); l == la {
			t.Errorf("%T has a's layout", other)
		}
	}
	if l, _ := Layout(reflect.TypeOf(same{})); l != la {
		t.Error("two types of one layout differ")
	}
	if _, err := Layout(reflect.TypeOf(struct{ F func() }{})); err == nil {
		t.Error("a func field has a layout")
	}
	if _, err := Layout(reflect.TypeOf(struct{ T time.Time }{})); err == nil {
		t.Error("a struct with unexported fields (time.Time) has a layout")
	}
}
