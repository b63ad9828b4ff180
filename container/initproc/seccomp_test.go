package initproc

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestProgramJSON(t *testing.T) {
	in := Spec{Seccomp: Program{{Code: 0x20, K: 4}, {Code: 0x15, Jt: 1, Jf: 255, K: 0xc000003e}, {Code: 0x6, K: 0x7fff0000}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Spec
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.Seccomp, in.Seccomp) {
		t.Fatalf("round trip: got %+v, want %+v (JSON %s)", out.Seccomp, in.Seccomp, b)
	}
	var bad Program
	if err := json.Unmarshal([]byte(`"AAAA"`), &bad); err == nil {
		t.Fatalf("3 bytes decoded as a program: %+v", bad)
	}
	var none Spec
	if b, _ := json.Marshal(Spec{}); json.Unmarshal(b, &none) != nil || none.Seccomp != nil {
		t.Fatalf("an empty filter must stay empty (unconfined): %s", b)
	}
}
