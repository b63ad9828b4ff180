package userns

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// startJoined starts path (argv, env) in the user namespace of nsFD (an
// open /proc/PID/ns/user of the keeper) and a new mount namespace of its
// own, with files as its fds 0, 1, 2, ... (nil: /dev/null).
//
// Go's os/exec cannot do this: between its fork and exec it runs only a
// fixed list of steps, setns(2) not among them, and a multithreaded
// process cannot enter a user namespace itself (setns(2): EINVAL). So the
// fork is ours: a plain fork (no CLONE_VM: the child has a copy of our
// memory, nothing it does can touch ours), whose child makes raw system
// calls only (rawForkJoin, which does not grow its stack) and execs. A
// failing step reaches us as its errno on a close-on-exec pipe, as in Go's
// own fork: EOF there means the exec happened.
func startJoined(path string, argv, env []string, files []*os.File, nsFD int) (*os.Process, error) {
	c, err := newJoinCall(path, argv, env, files, nsFD)
	if err != nil {
		return nil, err
	}
	defer c.close()

	// No descriptor may be made without close-on-exec while we fork (the
	// child would pass it on), and the child starts with every signal
	// blocked until it has restored our mask, just before the exec.
	syscall.ForkLock.Lock()
	runtime.LockOSThread()
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&all)), uintptr(unsafe.Pointer(&old)), unsafe.Sizeof(old), 0, 0)
	c.mask = old
	pid, errno := rawForkJoin(c)
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, unsafe.Sizeof(old), 0, 0)
	runtime.UnlockOSThread()
	syscall.ForkLock.Unlock()
	if errno != 0 {
		return nil, fmt.Errorf("fork: %w", errno)
	}
	unix.Close(c.errW)
	c.errW = -1

	reports := os.NewFile(uintptr(c.errR), "join-report")
	c.errR = -1
	defer reports.Close()
	var report [16]byte
	n, _ := io.ReadFull(reports, report[:])
	if n == 0 {
		return os.FindProcess(pid)
	}
	// The child failed before its exec and has exited: reap it.
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			break
		}
	}
	step := binary.NativeEndian.Uint64(report[:8])
	if n != len(report) || step >= uint64(len(joinSteps)) {
		return nil, fmt.Errorf("starting %s: a garbled report from the child (%d bytes)", path, n)
	}
	e := syscall.Errno(binary.NativeEndian.Uint64(report[8:]))
	return nil, &os.SyscallError{Syscall: joinSteps[step], Err: e}
}

// joinSteps name what the child was doing when it failed (its report).
var joinSteps = []string{"setns(CLONE_NEWUSER)", "unshare(CLONE_NEWNS)", "dup3", "execve"}

// joinCall is what the child of rawForkJoin needs, made beforehand: it
// may not allocate.
type joinCall struct {
	path       *byte
	argv, envv []*byte
	src        []int // the files' fds, above every target fd (close-on-exec)
	null       int   // /dev/null, for nil files
	ns         int
	errR, errW int
	mask       unix.Sigset_t
	report     [16]byte
}

func newJoinCall(path string, argv, env []string, files []*os.File, nsFD int) (*joinCall, error) {
	c := &joinCall{null: -1, ns: -1, errR: -1, errW: -1}
	var err error
	if c.path, err = syscall.BytePtrFromString(path); err != nil {
		return nil, err
	}
	if c.argv, err = syscall.SlicePtrFromStrings(argv); err != nil {
		return nil, err
	}
	if c.envv, err = syscall.SlicePtrFromStrings(env); err != nil {
		return nil, err
	}
	// Every descriptor the child dups from lies above the targets 0..n-1,
	// so no dup3 overwrites a source still to come.
	n := len(files)
	above := func(fd int) (int, error) {
		return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, n)
	}
	fail := func(err error) (*joinCall, error) {
		c.close()
		return nil, err
	}
	for _, f := range files {
		if f == nil {
			if c.null < 0 {
				fd, err := unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0)
				if err != nil {
					return fail(err)
				}
				if c.null, err = above(fd); err != nil {
					unix.Close(fd)
					return fail(err)
				}
				unix.Close(fd)
			}
			c.src = append(c.src, c.null)
			continue
		}
		fd, err := above(int(f.Fd()))
		if err != nil {
			return fail(err)
		}
		c.src = append(c.src, fd)
	}
	if c.ns, err = above(nsFD); err != nil {
		return fail(err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return fail(err)
	}
	c.errR = p[0]
	if c.errW, err = above(p[1]); err != nil {
		unix.Close(p[1])
		return fail(err)
	}
	unix.Close(p[1])
	return c, nil
}

func (c *joinCall) close() {
	for _, fd := range c.src {
		if fd != c.null { // /dev/null is closed once, below
			unix.Close(fd)
		}
	}
	c.src = nil
	for _, fd := range []*int{&c.null, &c.ns, &c.errR, &c.errW} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// rawForkJoin forks; the child joins c.ns, unshares its mount namespace,
// puts c.src in place, restores c.mask and execs, or reports the step and
// errno on c.errW and exits. The child runs on a copy of our memory in a
// process with one thread: only raw system calls, no allocation, no stack
// growth (nosplit), no locks.
//
//go:nosplit
//go:norace
func rawForkJoin(c *joinCall) (pid int, errno syscall.Errno) {
	r1, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 || r1 != 0 {
		return int(r1), e
	}
	// The child.
	var step uintptr
	if _, _, e = syscall.RawSyscall(unix.SYS_SETNS, uintptr(c.ns), syscall.CLONE_NEWUSER, 0); e != 0 {
		goto fail
	}
	step = 1
	if _, _, e = syscall.RawSyscall(syscall.SYS_UNSHARE, syscall.CLONE_NEWNS, 0, 0); e != 0 {
		goto fail
	}
	step = 2
	for i := 0; i < len(c.src); i++ {
		if _, _, e = syscall.RawSyscall(unix.SYS_DUP3, uintptr(c.src[i]), uintptr(i), 0); e != 0 {
			goto fail
		}
	}
	step = 3
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&c.mask)), 0, unsafe.Sizeof(c.mask), 0, 0)
	_, _, e = syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(c.path)), uintptr(unsafe.Pointer(&c.argv[0])), uintptr(unsafe.Pointer(&c.envv[0])))
fail:
	*(*uint64)(unsafe.Pointer(&c.report[0])) = uint64(step)
	*(*uint64)(unsafe.Pointer(&c.report[8])) = uint64(e)
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(c.errW), uintptr(unsafe.Pointer(&c.report[0])), uintptr(len(c.report)))
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 253, 0, 0)
	}
}
