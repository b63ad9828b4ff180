package userns

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// An exec in place: where nothing needs the host-side rl once its child
// runs (Options.Exec), it does not fork a child that enters the keeper's
// user namespace (startJoined) and wait for it: it execs the child itself,
// with the namespace open at ExecJoinFD and _RL_USERNS=exec in the
// environment, and the child enters the namespace before Go's runtime
// starts (rl-core's entry point, cmd/rl-core/entry_amd64.s: a process
// with threads cannot enter a user namespace). The process the user's
// shell waits for is then the child: no fork of the host rl, no second
// process waiting, relaying and exiting. A child that could not enter
// (its entry point not linked in, or setns refused) runs the host rl
// again with _RL_NO_EXEC_JOIN set (ExecJoinFallback), which goes the
// usual way.
const (
	// ExecJoinFD is the child's fd of the keeper's user namespace.
	ExecJoinFD    = 100
	execJoinValue = "exec"
	envNoExec     = "_RL_NO_EXEC_JOIN"
)

// ExecJoinAsked reports whether this process was exec'd in place of the
// host rl to enter its user namespace at start (_RL_USERNS=exec).
func ExecJoinAsked() bool { return os.Getenv(envFD) == execJoinValue }

// execJoined replaces this process with path (argv, env) in the user
// namespace of nsFD, via the child's entry point. It returns only when
// the exec failed, with nothing changed.
func execJoined(path string, argv, env []string, nsFD int) error {
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	if _, err := unix.FcntlInt(uintptr(ExecJoinFD), unix.F_GETFD, 0); err != unix.EBADF {
		return fmt.Errorf("fd %d is in use", ExecJoinFD)
	}
	if err := unix.Dup3(nsFD, ExecJoinFD, 0); err != nil {
		return err
	}
	err := syscall.Exec(path, argv, env)
	unix.Close(ExecJoinFD)
	return err
}

// execEnv is the environment of a child exec'd in place: as childEnv's,
// with the payload in payloadEnv (the child has no pipe to read it from)
// and no status pipe.
func execEnv(env []string, planJSON string, plan Plan, payloadEnv string, payload []byte) []string {
	out := childEnv(env, planJSON, plan)
	n := 0
	for _, kv := range out {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case envFD:
			kv = envFD + "=" + execJoinValue
		case envStatusFD, payloadEnv:
			continue
		}
		out[n] = kv
		n++
	}
	out = out[:n]
	if payload != nil {
		out = append(out, payloadEnv+"="+string(payload))
	}
	return out
}

// ExecJoinFallback runs the host rl (host, with our argv) again when the
// entry point could not join (why), with _RL_NO_EXEC_JOIN set so that it
// goes the usual way, which also reports what stops the keeper's
// namespace. drop names more variables of ours to leave out. It returns
// only when that exec failed.
func ExecJoinFallback(host, why string, drop ...string) error {
	if host == "" {
		return errors.New("rl-core: exec'd to join rl's user namespace, which failed (" + why + "), and rl's own path is not known: run rl, not rl-core")
	}
	unix.Close(ExecJoinFD)
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !ourVariable(name) && !slices.Contains(drop, name) {
			env = append(env, kv)
		}
	}
	env = append(env, envNoExec+"="+why)
	err := syscall.Exec(host, os.Args, env)
	return fmt.Errorf("running rl (%s) again after joining its user namespace failed (%s): %w: reinstall rl (make install)", host, why, err)
}
