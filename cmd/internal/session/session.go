// Package session is what rl-core and rl-image do first: join the user
// namespace the host-side rl made for them, and open the store.
package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/config"
	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/internal/trace"
	"github.com/rlcontainers/rl/rootfs"
	"github.com/rlcontainers/rl/rootfs/paths"
	"github.com/rlcontainers/rl/userns"
	"github.com/sirupsen/logrus"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"
)

// Session is an open store inside rl's user namespace.
type Session struct {
	Store    storage.Store
	Driver   rootfs.Driver
	Paths    paths.Paths
	SingleID bool
	// Plan is the id mapping the host side wrote (nil in a helper started
	// by rl-core, which runs in rl-core's namespace).
	Plan *userns.Plan
	// Signals are the signals the user sent rl.
	Signals <-chan syscall.Signal
	child   *userns.Child
	// Ctx is cancelled by Interruptible on SIGINT, SIGTERM or SIGHUP.
	Ctx    context.Context
	cancel context.CancelFunc
}

// Join joins the user namespace: as the child of the host-side rl (the
// handshake in userns), or as a helper that rl-core started inside its own.
func Join() (*userns.Child, <-chan syscall.Signal, error) {
	if userns.Inside() {
		child, err := userns.Join()
		if err != nil {
			if errors.Is(err, userns.ErrParentFailed) {
				return nil, nil, cli.ExitCode(initproc.ExitRlError)
			}
			return nil, nil, err
		}
		// The child prints the notice: only it knows the final plan (a
		// helper that fails turns a full map into a single one).
		if n := child.Plan.Notice(); n != "" {
			fmt.Fprintln(os.Stderr, n)
		}
		return child, child.Signals, nil
	}
	if os.Getenv("_CONTAINERS_USERNS_CONFIGURED") == "" {
		return nil, nil, fmt.Errorf("%s is started by rl: run rl instead", filepath.Base(os.Args[0]))
	}
	return nil, userns.CatchSignals(), nil
}

// open opens the store, in the user namespace Join joined.
func open(g *cli.Globals, child *userns.Child, sigs <-chan syscall.Signal) (*Session, error) {
	p, err := g.Paths()
	if err != nil {
		return nil, err
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" && !paths.RuntimeDirUsable(rt) {
		// Not ours (after su) or not there: the libraries must not use it
		// either (storage stats it; the image library looks for auth.json there).
		os.Unsetenv("XDG_RUNTIME_DIR")
	}
	single := userns.SingleMapped()
	store, driver, err := rootfs.OpenStore(rootfs.StoreConfig{Paths: p, Driver: g.StorageDriver, SingleID: single})
	if err != nil {
		return nil, err
	}
	trace.Mark("core: store open")
	s := &Session{Store: store, Driver: driver, Paths: p, SingleID: single, Signals: sigs, child: child}
	if child != nil {
		s.Plan = &child.Plan
	}
	s.Ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Interruptible cancels the session's context on SIGINT, SIGTERM or SIGHUP
// (for commands with no workload to forward them to), and when the rl that
// started this one is gone (killed): a pull nobody waits for stops.
func (s *Session) Interruptible() {
	go func() {
		defer s.cancel()
		for sig := range s.Signals {
			if sig == syscall.SIGINT || sig == syscall.SIGTERM || sig == syscall.SIGHUP {
				return
			}
		}
	}()
}

// Close ends the session. The store is not shut down: Shutdown frees what
// its driver holds in the kernel (mounts), and this process's mount
// namespace, which holds them, ends with it (nothing else enters it); its
// locks are the process's fcntl locks. It was ~0.25 ms of every rl run's
// exit, spent reloading the layer store to find nothing mounted.
func (s *Session) Close() {
	s.cancel()
	trace.Mark("core: session closed")
}

// Warn prints a warning line.
func Warn(msg string) { fmt.Fprintln(os.Stderr, "rl: warning:", msg) }

// Command is one of rl's commands as a store binary runs it.
type Command func(*cli.CLI, *Session) error

// Main is the whole of rl-core's and rl-image's main: parse the command
// line the host-side rl checked already, open the session, run the command
// this binary owns. It returns the exit code.
func Main(binary string, commands map[string]Command) int {
	return cli.Report(os.Stderr, runMain(binary, commands))
}

func runMain(binary string, commands map[string]Command) error {
	// The image library logs retries and the like at info level; rl
	// reports failures itself, in one line.
	logrus.SetLevel(logrus.ErrorLevel)
	// The namespace first: the host's parse may come with the release
	// (it parses while the maps are written).
	child, sigs, err := Join()
	if err != nil {
		return err
	}
	trace.Mark("core: joined userns")
	var payload []byte
	if child != nil {
		payload = child.Payload
	}
	p, err := cli.ParseOrDecode(payload, os.Args[1:], os.Exit)
	if err != nil {
		return err
	}
	trace.Mark("core: parsed")
	c := p.CLI
	cfg, src, err := config.Load()
	if err != nil {
		return err
	}
	cli.ApplyConfig(c, p.Given, cfg, src)
	cmd, ok := commands[p.Command]
	if !ok {
		return cli.Unsupported(p.Command, binary)
	}
	s, err := open(&c.Globals, child, sigs)
	if err != nil {
		return err
	}
	defer s.Close()
	return cmd(c, s)
}

// Detach lets the host-side rl return while this process goes on (rl run
// -d, rl start): it prints the container id for the user, tells the parent
// to exit 0, and leaves the user's terminal (stdio to /dev/null, a session
// of its own), so closing the terminal does not touch the container.
func (s *Session) Detach(id string) error {
	fmt.Println(id)
	if s.child == nil {
		return errors.New("not started by rl: cannot detach")
	}
	if err := s.child.Detach(); err != nil {
		return err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup2(int(null.Fd()), fd); err != nil {
			return err
		}
	}
	_, err = unix.Setsid()
	return err
}
