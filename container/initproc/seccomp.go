package initproc

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"runtime"
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

// Program is a filter as the spec carries it: base64 of the instructions'
// 8 bytes each (code, jt, jf, k; little-endian), not a JSON object per
// instruction. moby's default profile is ~460 instructions, whose JSON
// objects took the container's init ~0.9 ms to decode, on rl run's
// critical path.
type Program []BPF

// CompileSeccompArg is rl-image's hidden command that compiles a filter
// for a supervisor (container/seccompcache.go), which the init then gets
// in its spec.
const CompileSeccompArg = "__seccomp"

// MarshalJSON encodes p as base64 of its instructions (bytes).
func (p Program) MarshalJSON() ([]byte, error) { return json.Marshal(p.bytes()) }

// UnmarshalJSON decodes MarshalJSON's encoding.
func (p *Program) UnmarshalJSON(data []byte) error {
	var b []byte
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	out, err := programFrom(b)
	*p = out
	return err
}

// MarshalBinary is p.bytes(), for runcache.
func (p Program) MarshalBinary() ([]byte, error) { return p.bytes(), nil }

// UnmarshalBinary decodes MarshalBinary's bytes.
func (p *Program) UnmarshalBinary(b []byte) error {
	out, err := programFrom(b)
	*p = out
	return err
}

// bytes is p's instructions as the kernel lays out a sock_filter, in
// little-endian order: 8 bytes each.
func (p Program) bytes() []byte {
	b := make([]byte, 0, 8*len(p))
	for _, in := range p {
		b = binary.LittleEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.LittleEndian.AppendUint32(b, in.K)
	}
	return b
}

// programFrom decodes bytes' layout; no bytes is no program.
func programFrom(b []byte) (Program, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("seccomp program of %d bytes, not a multiple of 8", len(b))
	}
	if len(b) == 0 {
		return nil, nil
	}
	out := make(Program, len(b)/8)
	for i := range out {
		in := b[8*i:]
		out[i] = BPF{Code: binary.LittleEndian.Uint16(in), Jt: in[2], Jf: in[3], K: binary.LittleEndian.Uint32(in[4:])}
	}
	return out, nil
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

// AllowingFirst is prog with an ALLOW for the native ABI's syscall nr in
// front: the container's filter for a process that must make that call on
// its way into the container (nsenter's setns(2), for rl exec into a
// --userns keep-id container). What it execs keeps that filter, the call
// allowed. No filter stays none.
func AllowingFirst(prog []BPF, nr uint32) []BPF {
	if len(prog) == 0 {
		return nil
	}
	arch, ok := nativeArch[runtime.GOARCH]
	if !ok {
		return prog
	}
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	)
	return append([]BPF{
		{Code: ldAbs, K: 4},         // seccomp_data.arch
		{Code: jeq, Jf: 3, K: arch}, // else to prog
		{Code: ldAbs, K: 0},         // seccomp_data.nr
		{Code: jeq, Jf: 1, K: nr},   // else to prog
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}, prog...)
}

// nativeArch is the native ABI's audit architecture, the one whose calls
// the connect-notify filter reports and AllowingFirst allows (other ABIs,
// such as i386's socketcall, go on through the container's network).
var nativeArch = map[string]uint32{
	"amd64": unix.AUDIT_ARCH_X86_64,
	"arm64": unix.AUDIT_ARCH_AARCH64,
}

// InstallConnectNotify installs, on the calling thread, a filter that
// hands each connect(2) of the native ABI with an address of an IP
// address's length to a listener (netstack/bypass, in the supervisor),
// and with accept each accept(2) and accept4(2) too
// (published ports' connections handed over as host sockets), and allows
// everything else, and returns the listener's fd. Installed before the
// container's own filter, which may not allow seccomp(2); the kernel takes
// the strictest of both answers, so the container's filter still refuses
// what it refuses.
func InstallConnectNotify(accept bool) (int, error) {
	arch, ok := nativeArch[runtime.GOARCH]
	if !ok {
		return -1, fmt.Errorf("not on %s", runtime.GOARCH)
	}
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jgt   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	var accepts []uint32
	if accept {
		accepts = []uint32{uint32(unix.SYS_ACCEPT), uint32(unix.SYS_ACCEPT4)}
	}
	// The instructions' places: the two answers last.
	m := uint8(len(accepts))
	const firstAccept = 9
	allow, notify := firstAccept+m, firstAccept+m+1
	to := func(from, target uint8) uint8 { return target - from - 1 }
	filter := []unix.SockFilter{
		0: {Code: ldAbs, K: 4}, // seccomp_data.arch
		1: {Code: jeq, Jf: to(1, allow), K: arch},
		2: {Code: ldAbs, K: 0}, // seccomp_data.nr
		3: {Code: jeq, Jf: to(3, firstAccept), K: unix.SYS_CONNECT},
		// connect(2)'s addrlen (seccomp_data.args[2], its low 32 bits):
		// an IPv4 or IPv6 address's lengths (sockaddr_in, sockaddr_in6 with
		// and without its scope id) or more than a Unix socket's address
		// can be (sockaddr_storage's); not the lengths of most Unix
		// sockets' addresses, which then go on without a round trip to
		// the supervisor.
		4: {Code: ldAbs, K: 16 + 2*8},
		5: {Code: jeq, Jt: to(5, notify), K: unix.SizeofSockaddrInet4},
		6: {Code: jeq, Jt: to(6, notify), K: 24}, // SIN6_LEN_RFC2133
		7: {Code: jeq, Jt: to(7, notify), K: unix.SizeofSockaddrInet6},
		8: {Code: jgt, Jt: to(8, notify), Jf: to(8, allow), K: unix.SizeofSockaddrUnix},
	}
	for i, nr := range accepts {
		at := firstAccept + uint8(i)
		filter = append(filter, unix.SockFilter{Code: jeq, Jt: to(at, notify), K: nr})
	}
	filter = append(filter,
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_USER_NOTIF},
	)
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return -1, fmt.Errorf("installing the connect filter: %w", errno)
	}
	return int(fd), nil
}
