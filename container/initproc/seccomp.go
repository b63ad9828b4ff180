package initproc

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BPF is one classic BPF instruction (struct sock_filter) of a seccomp
// filter, compiled by the supervisor (container/seccomp).
type BPF struct {
	Code uint16 `json:"c"`
	Jt   uint8  `json:"t"`
	Jf   uint8  `json:"f"`
	K    uint32 `json:"k"`
}

// InstallSeccomp loads a filter on the calling thread (what it execs
// inherits it). Without no_new_privs the kernel asks for CAP_SYS_ADMIN in
// the thread's user namespace: install it before giving that up.
func InstallSeccomp(prog []BPF) error {
	if len(prog) == 0 {
		return nil
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, p := range prog {
		filter[i] = unix.SockFilter{Code: p.Code, Jt: p.Jt, Jf: p.Jf, K: p.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("installing the seccomp filter: %w", errno)
	}
	return nil
}
