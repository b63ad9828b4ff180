package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/rlcontainers/rl/container"
	"github.com/rlcontainers/rl/rootfs"
	"github.com/rlcontainers/rl/userns"
	"go.podman.io/storage"
	"golang.org/x/term"
)

// Globals are the flags every command takes.
type Globals struct {
	Root          string `help:"Store root (default: ~/.local/share/rl/storage)." placeholder:"DIR"`
	RunRoot       string `name:"runroot" help:"Run-state directory (default: $XDG_RUNTIME_DIR/rl, else /tmp/rl-UID)." placeholder:"DIR"`
	StorageDriver string `name:"storage-driver" help:"Storage driver: overlay or vfs (default: chosen by probing)." enum:",overlay,vfs" default:""`
}

// session is an open store inside rl's user namespace.
type session struct {
	store  storage.Store
	driver rootfs.Driver
	paths  rootfs.Paths
	child  *userns.Child
	// ctx is cancelled when the user interrupts rl (signals the parent
	// forwards: SIGINT, SIGTERM, SIGHUP).
	ctx    context.Context
	cancel context.CancelFunc
}

// enter puts rl in its user namespace. On the host side it re-executes rl
// there, waits and returns the child's exit code as an exitCode error; in
// the child it returns the joined namespace.
func enter() (*userns.Child, error) {
	if !userns.Inside() {
		plan := userns.MakePlan(userns.CurrentIdentity())
		for _, w := range plan.Warnings {
			fmt.Fprintln(os.Stderr, "rl: warning:", w)
		}
		// The child may set the terminal raw; restore it whatever
		// happens to the child.
		if st, err := term.GetState(int(os.Stdin.Fd())); err == nil {
			defer term.Restore(int(os.Stdin.Fd()), st)
		}
		code, err := userns.Run(userns.Options{
			Plan: plan, Args: os.Args, Env: os.Environ(),
			Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		})
		if err != nil {
			return nil, err
		}
		return nil, exitCode(code)
	}
	child, err := userns.Join()
	if err != nil {
		if errors.Is(err, userns.ErrParentFailed) {
			return nil, exitCode(container.ExitRlError)
		}
		return nil, err
	}
	// The child prints the notice: only it knows the final plan (a helper
	// that fails turns a full map into a single one).
	if n := child.Plan.Notice(); n != "" {
		fmt.Fprintln(os.Stderr, n)
	}
	return child, nil
}

// open enters the user namespace and opens the store.
func (g *Globals) open() (*session, error) {
	child, err := enter()
	if err != nil {
		return nil, err
	}
	paths, err := rootfs.DefaultPaths()
	if err != nil {
		return nil, err
	}
	if g.Root != "" {
		paths.Root = g.Root
	}
	if g.RunRoot != "" {
		paths.RunRoot, paths.RunRootReason = g.RunRoot, "set by --runroot"
	}
	store, driver, err := rootfs.OpenStore(rootfs.StoreConfig{
		Paths: paths, Driver: g.StorageDriver, SingleID: child.Plan.Mode != "full",
	})
	if err != nil {
		return nil, err
	}
	s := &session{store: store, driver: driver, paths: paths, child: child}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// interruptible cancels the session's context on a forwarded SIGINT,
// SIGTERM or SIGHUP (for commands with no workload to forward them to).
func (s *session) interruptible() {
	go func() {
		for sig := range s.child.Signals {
			if sig == syscall.SIGINT || sig == syscall.SIGTERM || sig == syscall.SIGHUP {
				s.cancel()
			}
		}
	}()
}

func (s *session) close() {
	s.cancel()
	_, _ = s.store.Shutdown(false)
}

func (s *session) runtime() *container.Runtime {
	return &container.Runtime{
		Store:    s.store,
		SingleID: s.child.Plan.Mode != "full",
		Signals:  s.child.Signals,
		Stdio:    container.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr},
		Warn:     func(msg string) { fmt.Fprintln(os.Stderr, "rl: warning:", msg) },
	}
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
