package initproc

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/rlcontainers/rl/netstack/link"
	"github.com/rlcontainers/rl/rootfs/mounts"
)

// fill sets every field of the struct v points to (recursively) to a value
// that is not its zero, so a field the codec forgets fails the round trip.
func fill(t *testing.T, v reflect.Value, seed int) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), seed)
	case reflect.Struct:
		switch v.Addr().Interface().(type) {
		case *netip.Addr:
			v.Set(reflect.ValueOf(netip.AddrFrom4([4]byte{10, 0, 2, byte(seed)})))
			return
		case *netip.Prefix:
			v.Set(reflect.ValueOf(netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 15: byte(seed)}), 64)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			fill(t, v.Field(i), seed+i+1)
		}
	case reflect.String:
		v.SetString(strings.Repeat("x", seed%7+1) + "é")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(-int64(seed) - 1)
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Uint8, reflect.Uintptr:
		v.SetUint(uint64(seed) + 200)
	case reflect.Slice:
		if v.Type() == reflect.TypeOf([]mounts.Op(nil)) && seed > 40 {
			return // a fallback's fallbacks: none
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := 0; i < 2; i++ {
			fill(t, s.Index(i), seed*3+i)
		}
		v.Set(s)
	default:
		t.Fatalf("fill: no value for %s", v.Type())
	}
}

func TestSpecWire(t *testing.T) {
	var s Spec
	fill(t, reflect.ValueOf(&s).Elem(), 1)
	if len(s.Mounts[0].Fallback) == 0 || len(s.Seccomp) == 0 {
		t.Fatalf("fill left parts empty: %+v", s)
	}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Spec
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
	}
	// nil and empty lists stay apart; a zero spec stays zero.
	for _, s := range []Spec{{}, {Args: []string{}, Env: []string{""}, Caps: []string{}}} {
		b, _ := s.MarshalBinary()
		var got Spec
		if err := got.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(got, s) {
			t.Fatalf("round trip of %#v: %#v, %v", s, got, err)
		}
	}
	corrupt(t, b, func(m []byte) error { return new(Spec).UnmarshalBinary(m) })
}

func TestNetworkSpecWire(t *testing.T) {
	var ns NetworkSpec
	fill(t, reflect.ValueOf(&ns).Elem(), 1)
	real := NetworkSpec{Link: &link.Config{Name: "tap0", MTU: 65520, TxQueueLen: 4096,
		Addr: netip.MustParsePrefix("10.0.2.100/24"), Gateway: netip.MustParseAddr("10.0.2.2")}}
	for _, ns := range []NetworkSpec{ns, real, {}, {Shared: true}} {
		b, err := ns.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got NetworkSpec
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ns) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, ns)
		}
		corrupt(t, b, func(m []byte) error { return new(NetworkSpec).UnmarshalBinary(m) })
	}
}

// corrupt checks that every truncation of msg, msg with a byte more, and
// msg of another kind fail to decode, with an error and no panic.
func corrupt(t *testing.T, msg []byte, decode func([]byte) error) {
	t.Helper()
	for i := range msg {
		if err := decode(msg[:i]); err == nil {
			t.Fatalf("%d of %d bytes decoded without an error", i, len(msg))
		}
	}
	if err := decode(append(append([]byte(nil), msg...), 0)); err == nil {
		t.Fatal("a trailing byte decoded without an error")
	}
	other := append([]byte{'?'}, msg[1:]...)
	if err := decode(other); err == nil {
		t.Fatal("a message of another kind decoded without an error")
	}
}
