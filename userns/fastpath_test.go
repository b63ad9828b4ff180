package userns

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFastName: the record's name is FNV-1a (64 bits) of the words, each
// with its NUL, and of rl's file's device and inode, in 16 hex digits
// (what cmd/rl/entry_amd64.s computes).
func TestFastName(t *testing.T) {
	for _, args := range [][]string{nil, {"run"}, {"run", "--rm", "busybox", "true"}, {"run", "", "ünï", "a b"}} {
		h := fnv.New64a()
		for _, a := range args {
			h.Write([]byte(a))
			h.Write([]byte{0})
		}
		h.Write(binary.LittleEndian.AppendUint64(nil, 0x801))
		h.Write(binary.LittleEndian.AppendUint64(nil, 123456789))
		if got, want := FastName(args, 0x801, 123456789), fmt.Sprintf("%016x", h.Sum64()); got != want {
			t.Errorf("FastName(%q) = %s, want %s", args, got, want)
		}
	}
	if FastName([]string{"ab", "c"}, 1, 2) == FastName([]string{"a", "bc"}, 1, 2) {
		t.Error("words split differently share a name")
	}
	if FastName([]string{"run"}, 1, 2) == FastName([]string{"run"}, 1, 3) {
		t.Error("two rl binaries share a name")
	}
}

// TestFastRecord: the layout the entry point reads: the magic, the
// keeper's pid and start, rl's file, the id files, the three lengths, and
// the words, rl's own variables only (the caller's environment is the
// exec's own), and the path, each with its NUL.
func TestFastRecord(t *testing.T) {
	env := []string{"HOME=/h", "_RL_EXE=/bin/rl", "_RL_USERNS=exec", "_CONTAINERS_USERNS_CONFIGURED=1", "PATH=/bin"}
	b, _, err := fastRecord([]string{"run", "busybox"}, env, "/libexec/rl-core", keeperRec{Pid: 42, Start: 7})
	if err != nil {
		t.Fatal(err)
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(b[8+8*i:]) }
	var exe syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &exe); err != nil {
		t.Fatal(err)
	}
	if string(b[:8]) != fastMagic || u(0) != 42 || u(1) != 7 || u(2) != exe.Dev || u(3) != exe.Ino || u(6) != uint64(exe.Size) {
		t.Fatalf("header: %q pid %d start %d dev %d ino %d size %d", b[:8], u(0), u(1), u(2), u(3), u(6))
	}
	words, vars, path := u(11), u(12), u(13)
	body := string(b[fastHeader:])
	if uint64(len(body)) != words+vars+path {
		t.Fatalf("lengths %d+%d+%d, body %d", words, vars, path, len(body))
	}
	if got := body[:words]; got != "run\x00busybox\x00" {
		t.Errorf("words %q", got)
	}
	if got := body[words : words+vars]; got != "_RL_EXE=/bin/rl\x00_RL_USERNS=exec\x00_CONTAINERS_USERNS_CONFIGURED=1\x00" {
		t.Errorf("variables %q", got)
	}
	if got := body[words+vars:]; got != "/libexec/rl-core\x00" {
		t.Errorf("path %q", got)
	}
	if _, _, err := fastRecord([]string{strings.Repeat("x", fastMax)}, nil, "/p", keeperRec{}); err != errFastTooBig {
		t.Errorf("a record past 16 KiB: %v", err)
	}
	if FastEnvOK(env) || !FastEnvOK([]string{"HOME=/h", "RL_TRACE=1"}) {
		t.Error("FastEnvOK: wrong about rl's own variables")
	}

	dir := filepath.Join(t.TempDir(), "fast")
	for i := 0; i < fastKeep+1; i++ {
		if err := writeFast(dir, []string{"run", fmt.Sprint(i)}, env, "/p", keeperRec{}); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := os.ReadDir(dir)
	if len(names) != 1 || names[0].Name() != FastName([]string{"run", fmt.Sprint(fastKeep)}, exe.Dev, exe.Ino) {
		t.Errorf("after %d records: %d left, want the last one only", fastKeep+1, len(names))
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the records' directory: %v %v", st.Mode(), err)
	}
}
