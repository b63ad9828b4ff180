package initproc

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
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

// TestAllowingFirst: the program in front lets the one call through to
// the kernel and leaves every other answer to the filter.
func TestAllowingFirst(t *testing.T) {
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	// EPERM for setns(2) and unshare(2), the rest allowed.
	deny := []BPF{
		{Code: ldAbs, K: 0},
		{Code: jeq, Jt: 2, K: unix.SYS_SETNS},
		{Code: jeq, Jt: 1, K: unix.SYS_UNSHARE},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
	}
	if AllowingFirst(nil, unix.SYS_SETNS) != nil {
		t.Error("no filter: want none")
	}
	for _, c := range []struct {
		prog          []BPF
		setns, unshar error
	}{
		{deny, unix.EPERM, unix.EPERM},
		{AllowingFirst(deny, unix.SYS_SETNS), unix.EBADF, unix.EPERM},
	} {
		errs := make(chan [2]error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the filter ends with the thread
			if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
				errs <- [2]error{err, err}
				return
			}
			if err := InstallSeccomp(c.prog); err != nil {
				errs <- [2]error{err, err}
				return
			}
			errs <- [2]error{unix.Setns(-1, 0), unix.Unshare(0)}
		}()
		got := <-errs
		if got[0] != c.setns || got[1] != c.unshar {
			t.Errorf("%d instructions: setns(-1, 0) %v, unshare(0) %v; want %v, %v", len(c.prog), got[0], got[1], c.setns, c.unshar)
		}
	}
}

// TestConnectNotifyLengths: the connect filter reports connect(2) with an
// IP address's lengths (or more than a Unix address can have) and, asked
// to, accept(2); a Unix address of sockaddr_un's length goes on to the
// kernel. With its listener closed, a reported call fails with ENOSYS.
func TestConnectNotifyLengths(t *testing.T) {
	connect := func(domain int, addrlen uintptr) error {
		fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		// An AF_UNIX address of a path that is not there.
		var sun unix.RawSockaddrUnix
		sun.Family = unix.AF_UNIX
		for i, c := range "/nonexistent/rl" {
			sun.Path[i] = int8(c)
		}
		var buf [128]byte
		copy(buf[:], unsafe.Slice((*byte)(unsafe.Pointer(&sun)), unsafe.Sizeof(sun)))
		if _, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&buf)), addrlen); errno != 0 {
			return errno
		}
		return nil
	}
	for _, accept := range []bool{false, true} {
		type call struct {
			name string
			err  error
		}
		calls := make(chan []call, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the filter ends with the thread
			var got []call
			defer func() { calls <- got }()
			if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
				got = append(got, call{"prctl", err})
				return
			}
			fd, err := InstallConnectNotify(accept)
			if err != nil {
				got = append(got, call{"install", err})
				return
			}
			unix.Close(fd)
			for _, n := range []uintptr{16, 24, 28, 110, 111, 128, 19} {
				got = append(got, call{fmt.Sprintf("unix %d", n), connect(unix.AF_UNIX, n)})
			}
			_, _, errno := unix.Syscall(unix.SYS_ACCEPT, ^uintptr(0), 0, 0)
			got = append(got, call{"accept", errno})
		}()
		acceptErr := error(unix.EBADF)
		if accept {
			acceptErr = unix.ENOSYS
		}
		want := []call{
			{"unix 16", unix.ENOSYS}, {"unix 24", unix.ENOSYS}, {"unix 28", unix.ENOSYS},
			{"unix 110", unix.ENOENT}, {"unix 111", unix.ENOSYS}, {"unix 128", unix.ENOSYS},
			{"unix 19", unix.ENOENT}, {"accept", acceptErr},
		}
		if got := <-calls; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("accept %v: got %v\nwant %v", accept, got, want)
		}
	}
}
