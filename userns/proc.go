package userns

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A process is named by its pid and its start time, since pids are
// reused: a keeper in its record (keeper.go), a supervisor in a
// container's state (rootfs).

// ProcessAlive reports whether pid still is the process that started at
// start (clock ticks since boot), and has not exited: a zombie waiting for
// its parent to reap it has.
func ProcessAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	f, err := statFields(pid)
	if err != nil || f[0] == "Z" || f[0] == "X" {
		return false
	}
	got, err := strconv.ParseUint(f[19], 10, 64)
	return err == nil && got == start
}

// Running reports whether pid is a process that has not exited (a zombie
// has).
func Running(pid int) bool {
	f, err := statFields(pid)
	return err == nil && f[0] != "Z" && f[0] != "X"
}

// WaitExited waits, up to timeout, until the process pid that started at
// start has ended with all its threads. It reads as a zombie once its
// first thread has exited, while the others may still be closing its
// files, and letting go of the locks it held with them.
func WaitExited(pid int, start uint64, timeout time.Duration) {
	task := "/proc/" + strconv.Itoa(pid) + "/task"
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got, err := StartTime(pid); err != nil || got != start {
			return
		}
		if threads, err := os.ReadDir(task); err != nil || len(threads) <= 1 {
			return
		}
	}
}

// StartTime is field 22 of /proc/PID/stat: when the process started, in
// clock ticks since boot.
func StartTime(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// SelfStartTime is this process's own StartTime, read once: rl run names
// itself twice, as an --rm container's creator and as its supervisor.
var SelfStartTime = sync.OnceValues(func() (uint64, error) { return StartTime(os.Getpid()) })

// statFields are the fields of /proc/PID/stat from the third (state) on.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	// The command (field 2) may hold spaces and parentheses: count the
	// fields after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}
