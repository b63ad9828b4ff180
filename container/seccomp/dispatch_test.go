package seccomp

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/rlcontainers/rl/container/caps"
	"github.com/rlcontainers/rl/container/initproc"
	"golang.org/x/sys/unix"
)

// TestDispatchSameAnswers: the filter with the search in front answers as
// the assembler's program alone, for every syscall number the search
// covers and past it (x32's), on this architecture and others, with
// arguments that do and do not match the profile's conditions (clone's
// namespace flags, socket's address families, personality's values).
func TestDispatchSameAnswers(t *testing.T) {
	info, err := arch.GetInfo(runtime.GOARCH)
	if err != nil {
		t.Skip(err)
	}
	for _, cs := range [][]string{caps.Default, nil, {"CAP_SYS_ADMIN"}} {
		prog, err := Compile("", cs)
		if err != nil {
			t.Fatal(err)
		}
		orig := assembled(t, prog)
		args := [][6]uint64{{}, {^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)},
			{unix.CLONE_NEWUSER}, {unix.CLONE_NEWNS | unix.CLONE_VM}, {unix.AF_NETLINK}, {unix.AF_INET, unix.SOCK_STREAM}, {0xffffffff}, {8}, {0x20008}}
		r := rand.New(rand.NewPCG(1, 2))
		for range 20 {
			var a [6]uint64
			for i := range a {
				a[i] = r.Uint64() >> r.UintN(64)
			}
			args = append(args, a)
		}
		var nrs []uint32
		for nr := uint32(0); nr <= dispatchMax+100; nr++ {
			nrs = append(nrs, nr)
		}
		nrs = append(nrs, 0x40000000, 0x40000001, 0x4000003b, 0x7fffffff, 0xffffffff)
		constant := 0 // numbers up to dispatchMax the search answers
		for _, ar := range []uint32{uint32(info.ID), 0x40000003 /* i386 */, 0} {
			for _, nr := range nrs {
				for _, a := range args {
					d := seccompData{nr: nr, arch: ar, ip: 0x401000, args: a}
					want, _, ok1 := run(orig, d)
					got, c, ok2 := run(prog, d)
					if !ok1 || !ok2 || got != want {
						t.Fatalf("caps %v: arch %#x nr %d args %#x: %#x (%v), the assembler's program %#x (%v)", cs, ar, nr, a, got, ok2, want, ok1)
					}
					if c && ar == uint32(info.ID) && a == args[0] && nr <= dispatchMax {
						constant++
					}
				}
			}
		}
		if constant < 300 {
			t.Errorf("caps %v: only %d syscall numbers answered by the search", cs, constant)
		}
		t.Logf("caps %v: %d instructions (%d the assembler's), %d numbers answered without the arguments", cs, len(prog), len(orig), constant)
	}
}

// assembled is the assembler's program at the end of prog, after the
// search (dispatch's head: load arch, test it, jump to the program, load
// the number); the test fails if prog has no search in front.
func assembled(t *testing.T, prog []initproc.BPF) []initproc.BPF {
	t.Helper()
	if len(prog) < 5 || prog[0] != (initproc.BPF{Code: opLdAbsW, K: 4}) || prog[1].Code != opJeq ||
		prog[2].Code != opJa || prog[3] != (initproc.BPF{Code: opLdAbsW, K: 0}) || 3+int(prog[2].K) >= len(prog) {
		t.Fatalf("no search in front of the program: %v", prog[:min(5, len(prog))])
	}
	return prog[3+int(prog[2].K):]
}

// TestDispatchInstalls: the kernel takes the filter with the search (it
// checks every jump), and the time it takes against the assembler's
// program alone is logged (the action cache's runs: bench/README).
func TestDispatchInstalls(t *testing.T) {
	prog, err := Compile("", caps.Default)
	if err != nil {
		t.Fatal(err)
	}
	orig := assembled(t, prog)
	install := func(p []initproc.BPF) time.Duration {
		done := make(chan time.Duration)
		var best time.Duration
		for range 5 {
			go func() {
				runtime.LockOSThread() // the thread ends with its filter
				if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
					t.Error(err)
				}
				t0 := time.Now()
				if err := initproc.InstallSeccomp(p); err != nil {
					t.Error(err)
				}
				done <- time.Since(t0)
			}()
			if d := <-done; best == 0 || d < best {
				best = d
			}
		}
		return best
	}
	withSearch, alone := install(prog), install(orig)
	t.Logf("installing: %v with the search, %v the assembler's program alone", withSearch, alone)
}
