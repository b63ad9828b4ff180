package ctl

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

var signalNames = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "ILL": syscall.SIGILL,
	"TRAP": syscall.SIGTRAP, "ABRT": syscall.SIGABRT, "BUS": syscall.SIGBUS, "FPE": syscall.SIGFPE,
	"KILL": syscall.SIGKILL, "USR1": syscall.SIGUSR1, "SEGV": syscall.SIGSEGV, "USR2": syscall.SIGUSR2,
	"PIPE": syscall.SIGPIPE, "ALRM": syscall.SIGALRM, "TERM": syscall.SIGTERM, "CHLD": syscall.SIGCHLD,
	"CONT": syscall.SIGCONT, "STOP": syscall.SIGSTOP, "TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN,
	"TTOU": syscall.SIGTTOU, "URG": syscall.SIGURG, "XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ,
	"VTALRM": syscall.SIGVTALRM, "PROF": syscall.SIGPROF, "WINCH": syscall.SIGWINCH, "IO": syscall.SIGIO,
	"PWR": syscall.SIGPWR, "SYS": syscall.SIGSYS,
}

// ParseSignal reads a signal as docker does: a number, or a name with or
// without SIG ("TERM", "SIGTERM", "term").
func ParseSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return 0, errors.New("empty signal")
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q: numbers run from 1 to 64", s)
		}
		return syscall.Signal(n), nil
	}
	name := s
	if len(name) > 3 && (name[:3] == "SIG" || name[:3] == "sig") {
		name = name[3:]
	}
	if v, ok := signalNames[strings.ToUpper(name)]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("invalid signal %q: use a name such as TERM or KILL, or a number", s)
}
