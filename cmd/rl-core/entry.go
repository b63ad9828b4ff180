package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/userns"
)

// What joinEntry (entry_amd64.s) did before Go's runtime started. Where
// it is not linked in (another architecture, a build without the
// Makefile's -E), nothing sets them.
var joinState, joinErrno int64

const (
	joinNotRun        = 0 // not asked, or no entry point of ours
	joinDone          = 1
	joinSetnsFailed   = 2
	joinUnshareFailed = 3
)

// checkExecJoin: when the host rl exec'd us in place to enter its user
// namespace (userns.ExecJoinAsked) and the entry point could not, rl runs
// again the usual way (userns.ExecJoinFallback), which reports what stops
// it. It returns only when that exec failed, or when the namespace was
// entered but no mount namespace of our own could be made (then we are no
// longer where rl can start over).
func checkExecJoin() error {
	if !userns.ExecJoinAsked() || joinState == joinDone {
		return nil
	}
	why := "rl-core was built without its entry point (build it with make)"
	switch joinState {
	case joinSetnsFailed:
		why = "setns(CLONE_NEWUSER): " + syscall.Errno(joinErrno).Error()
	case joinUnshareFailed:
		return fmt.Errorf("entering rl's user namespace: unshare(CLONE_NEWNS): %v: a seccomp filter or the kernel refuses new mount namespaces; rl doctor names the cause", syscall.Errno(joinErrno))
	}
	return userns.ExecJoinFallback(os.Getenv(cli.EnvExe), why, cli.EnvParsed)
}
