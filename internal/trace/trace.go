// Package trace marks the phases of rl's start-up when RL_TRACE is set in
// the environment: one line "rl-trace NANOS PID PHASE" per mark, on the
// writer each binary's main hands to Start (stderr), for a per-phase
// breakdown (bench/trace). Unset, a mark costs one branch.
package trace

import (
	"io"
	"os"
	"strconv"
	"time"
)

var out io.Writer

// Start prints marks on w from now on, if RL_TRACE is set.
func Start(w io.Writer) {
	if os.Getenv("RL_TRACE") != "" {
		out = w
	}
}

// On reports whether marks are printed (children are given RL_TRACE too).
func On() bool { return out != nil }

// Mark prints one mark.
func Mark(phase string) {
	if out == nil {
		return
	}
	b := make([]byte, 0, 64)
	b = append(b, "rl-trace "...)
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(os.Getpid()), 10)
	b = append(b, ' ')
	b = append(b, phase...)
	b = append(b, '\n')
	out.Write(b)
}
