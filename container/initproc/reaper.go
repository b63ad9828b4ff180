package initproc

import (
	"os"
	"os/signal"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// IsReaper reports whether this rl process is a container's --init reaper.
func IsReaper() bool { return len(os.Args) > 2 && os.Args[1] == ReaperArg }

// Reap is rl as a container's PID 1 (--init): it starts the workload
// (argv: ReaperArg, path, argv of the workload...), forwards every signal
// it gets to it, and reaps every child that the kernel reparents to it, so
// zombies never pile up. The kernel gives PID 1 no default signal actions,
// which is why a bare `sleep` ignores SIGTERM; here SIGTERM reaches sleep,
// whose default action applies. It returns the workload's exit code
// (128+N when killed by signal N).
func Reap() (int, error) {
	path, argv := os.Args[2], os.Args[3:]
	// Exec'd from /proc/self/fd/N, the kernel named us "N".
	name := []byte("rl-init\x00")
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		return ExecError(argv[0], err)
	}
	for {
		sig := <-sigs
		switch sig {
		case unix.SIGCHLD:
		case unix.SIGURG:
			continue // the Go runtime's own preemption signal
		default:
			_ = unix.Kill(pid, sig.(syscall.Signal))
			continue
		}
		for {
			var ws unix.WaitStatus
			got, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if got <= 0 || err != nil {
				break
			}
			if got == pid {
				if ws.Signaled() {
					return 128 + int(ws.Signal()), nil
				}
				return ws.ExitStatus(), nil
			}
		}
	}
}
