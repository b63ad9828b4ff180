// Command rl runs rootless containers. This binary is the host side (it
// checks the command line, maps the user namespace and waits) and the
// container's init; the store lives in rl-core and rl-image, which it starts
// inside the namespace. It links neither storage nor the image library, so
// it starts in about 2 ms.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/alecthomas/kong"
	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/container/ctl"
	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/internal/fds"
	"github.com/rlcontainers/rl/internal/trace"
	"github.com/rlcontainers/rl/rootfs/paths"
	"github.com/rlcontainers/rl/userns"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

func main() {
	trace.Start(os.Stderr)
	if initproc.IsInit() {
		trace.Mark("init: main")
		os.Exit(initproc.Init())
	}
	if len(os.Args) == 3 && os.Args[1] == userns.KeeperArg {
		os.Exit(userns.Keep(os.Args[2]))
	}
	if initproc.IsReaper() {
		code, err := initproc.Reap()
		if err != nil {
			fmt.Fprintln(os.Stderr, "rl:", err)
		}
		os.Exit(code)
	}
	trace.Mark("host: main")
	// --preserve-fds may pass on what our caller left open from fd 3 up:
	// counted now, before the close-on-exec below hides which they are.
	inheritedFDs = openFrom3()
	// Descriptors our caller left open without close-on-exec are not ours
	// to pass on: not to rl-core, and so not to a container.
	_ = fds.CloseOnExecFrom(3)
	os.Exit(cli.Report(os.Stderr, run(os.Args[1:])))
}

func run(args []string) error {
	var (
		c             *cli.CLI
		kctx          *kong.Context
		self, libexec string
		err           error
	)
	if cli.PreScan(args) == "run" {
		if self, libexec, err = helpers(); err != nil {
			return err
		}
		var handled bool
		if handled, c, kctx, err = runEarly(self, libexec, args); handled {
			return err
		}
	}
	if c == nil {
		if c, kctx, err = cli.Parse(args, os.Exit); err != nil {
			return err
		}
		trace.Mark("host: parsed")
		if self, libexec, err = helpers(); err != nil {
			return err
		}
	}
	if kctx.Command() == "system migrate" {
		return stopKeeper()
	}
	fallback := func(args ...string) error { return runInside(self, libexec, cli.Command(kctx), args) }
	if handled, err := fastPath(c, kctx, fallback); handled {
		return err
	}
	if target := c.Run.JoinTarget(); cli.Command(kctx) == "run" && target != "" {
		if c.Run.PreserveFDs > 0 {
			return fmt.Errorf("--preserve-fds does not go with a container:%s namespace (that container's supervisor starts this one): drop one of them", target)
		}
		return spawnIn(c, target, args, self, libexec)
	}
	if cli.Command(kctx) == "restart" {
		return restart(c, self, libexec)
	}
	if cli.Command(kctx) == "start" && len(c.Start.Containers) > 1 {
		// Each started container gets a supervisor process of its own.
		return cli.Each(c.Start.Containers, c.Start.Containers, func(ref, _ string) error {
			one := append(c.Globals.Args(), "start")
			if c.Start.Attach {
				one = append(one, "-a")
			}
			return runInside(self, libexec, cli.Command(kctx), append(one, "--", ref))
		})
	}
	parsed, err := cli.Parsed{Command: cli.Command(kctx), Given: cli.Given(kctx), CLI: c}.Encode()
	if err != nil {
		return err
	}
	var files []*os.File
	switch cli.Command(kctx) {
	case "run":
		files, err = preservedFiles(c.Run.PreserveFDs)
	case "exec":
		files, err = preservedFiles(c.Exec.PreserveFDs)
	}
	if err != nil {
		return err
	}
	return inside(self, libexec, cli.Command(kctx), args, nil, files, nil, false, cli.EnvParsed+"="+parsed)
}

// errNotEarly: the command line is not a plain rl run after all.
var errNotEarly = errors.New("not an early start")

// runEarly is rl run's hot path: rl-core is started (and the maps written)
// first, while this process parses the command line; the parse reaches
// rl-core with the release (userns Options.Payload). Where rl-core may run
// in this process's place (mayExec, and the keeper running), the parse
// comes first and reaches it in the environment. rl run with a
// container:NAME namespace or --preserve-fds, and anything the pre-scan
// took for rl run that is not, are not handled (false): the caller goes
// the usual way with the parse made here.
func runEarly(self, libexec string, args []string) (handled bool, c *cli.CLI, kctx *kong.Context, err error) {
	// A command line parsed before, whose flags depend on nothing else,
	// is not parsed again (cli.ParseCache). One that may run in place of
	// this process (userns.Options.Exec) is parsed before that exec, the
	// others while rl-core starts.
	cache := cli.NewParseCache(keeperDir(), self, args)
	// pure: the parse depends on the words alone (it was or may be
	// cached), so the fast path may take them.
	var pure bool
	parse := func() ([]byte, error) {
		if cached, hit := cache.Get(); hit {
			trace.Mark("host: parsed (cached)")
			pure = true
			return cached, nil
		}
		var err error
		c, kctx, err = cli.ParseRun(args, os.Exit)
		trace.Mark("host: parsed")
		if err != nil {
			return nil, err
		}
		if cli.Command(kctx) != "run" || c.Run.JoinTarget() != "" || c.Run.PreserveFDs > 0 {
			return nil, errNotEarly
		}
		given := cli.Given(kctx)
		p, err := cli.Parsed{Command: "run", Given: given, CLI: c}.Encode()
		if err == nil {
			cache.Put([]byte(p), given)
			pure = cli.Pure(given)
		}
		return []byte(p), err
	}
	exec := mayExec(args)
	var fast func() string
	if exec && args[0] == "run" { // the words rl's entry point takes
		fast = func() string {
			if !pure {
				return ""
			}
			return fastDir()
		}
	}
	err = inside(self, libexec, "run", args, parse, nil, fast, exec)
	if errors.Is(err, errNotEarly) {
		return false, c, kctx, nil
	}
	return true, nil, nil, err
}

// mayExec says whether rl run's command line may be run by rl-core in
// place of this process (userns.Options.Exec): not with a terminal (we
// restore it whatever becomes of rl-core) or detached (we are the
// process that returns). It looks at every word, the container's command
// too: a -t there only costs the exec.
func mayExec(args []string) bool {
	for _, a := range args {
		switch {
		case a == "--":
			continue
		case strings.HasPrefix(a, "--detach"), strings.HasPrefix(a, "--tty"):
			return false
		case len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.ContainsAny(a, "dt"):
			return false
		}
	}
	return true
}

// helpers are rl's own path and where rl-core and rl-image are.
func helpers() (self, libexec string, err error) {
	if self, err = os.Executable(); err != nil {
		return "", "", fmt.Errorf("finding rl's own path: %w", err)
	}
	libexec, err = helperDir(self)
	return self, libexec, err
}

// runInside runs the command in rl's user namespace, in rl-core or
// rl-image, and returns its exit code as an error.
func runInside(self, libexec, command string, args []string, env ...string) error {
	return inside(self, libexec, command, args, nil, nil, nil, false, env...)
}

// inside is runInside, with a payload for the child made while it starts.
//
// files become rl-core's fds userns.ExtraFD, ... (--preserve-fds). With
// exec, the child may run in place of this process (userns.Options.Exec).
func inside(self, libexec, command string, args []string, payload func() ([]byte, error), files []*os.File, fast func() string, exec bool, env ...string) error {
	plan := userns.MakePlan(userns.CurrentIdentity())
	trace.Mark("host: planned")
	for _, w := range plan.Warnings {
		fmt.Fprintln(os.Stderr, "rl: warning:", w)
	}
	if len(plan.Warnings) > 0 {
		// Printed by this process only: a run that has any does not
		// skip it (the entry point prints nothing).
		fast = nil
	}
	// The child may set the terminal raw; restore it whatever happens to it.
	if st, err := term.GetState(int(os.Stdin.Fd())); err == nil {
		defer term.Restore(int(os.Stdin.Fd()), st)
	}
	code, err := userns.Run(userns.Options{
		Plan:  plan,
		Path:  filepath.Join(libexec, cli.BinaryFor(command)),
		Args:  append([]string{"rl"}, args...),
		Env:   append(append(os.Environ(), cli.EnvExe+"="+self, cli.EnvLibexec+"="+libexec), env...),
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Mark:       trace.Mark,
		Payload:    payload,
		ExtraFiles: files,
		KeeperDir:  keeperDir(),
		Keeper:     self,
		Exec:       exec,
		PayloadEnv: cli.EnvParsed,
		FastDir:    fast,
	})
	if err != nil || code == 0 {
		return err
	}
	return cli.ExitCode(code)
}

// keeperDir is where the user's keeper is recorded (userns.Options) and
// parses are cached (cli.ParseCache): the user's run dir, whatever --root
// or --runroot say, since the user namespace is the user's, not a store's.
// Empty (no keeper, no cache) when there is none, or it is not the user's
// own. Made and checked once per process.
var keeperDir = sync.OnceValue(func() string {
	p, err := paths.Default()
	if err != nil || paths.EnsurePrivateDir(p.RunRoot) != nil {
		return ""
	}
	return p.RunRoot
})

// fastDir is where rl run's fast path is recorded (userns.FastDir): only
// in $XDG_RUNTIME_DIR/rl, where rl's entry point looks, and only for an
// environment without rl's own variables. Empty: not recorded.
func fastDir() string {
	xdg := os.Getenv("XDG_RUNTIME_DIR")
	dir := keeperDir()
	if xdg == "" || dir == "" || dir != filepath.Join(xdg, "rl") || !userns.FastEnvOK(os.Environ()) {
		return ""
	}
	return filepath.Join(dir, "fast")
}

// stopKeeper is rl system migrate.
func stopKeeper() error {
	dir := keeperDir()
	if dir == "" {
		return nil
	}
	if err := userns.StopKeeper(dir); err != nil {
		return fmt.Errorf("stopping rl's keeper process (recorded in %s): %w: end it by hand (pkill -f %s)", dir, err, userns.KeeperArg)
	}
	return nil
}

// helperDir finds rl-core and rl-image: beside rl (a build tree), or in
// ../libexec/rl (an install, as podman keeps its helpers).
func helperDir(self string) (string, error) {
	dir := filepath.Dir(self)
	candidates := []string{dir, filepath.Join(dir, "..", "libexec", "rl")}
	for _, d := range candidates {
		if _, err := os.Stat(filepath.Join(d, cli.Core)); err == nil {
			return filepath.Clean(d), nil
		}
	}
	return "", fmt.Errorf("%s not found beside %s or in %s: reinstall rl (make install)", cli.Core, self, candidates[1])
}

// spawnIn runs the command in the user namespace of the running container
// target, whose supervisor starts rl-core for it: joining a container's
// namespaces (container:NAME) needs the capabilities of the user namespace
// that owns them.
func spawnIn(c *cli.CLI, target string, args []string, self, libexec string) error {
	p, err := c.Globals.Paths()
	if err == nil {
		err = paths.CheckRunRoot(p)
	}
	if err != nil {
		return err
	}
	id, err := ctl.Resolve(p.RunRoot, target)
	if errors.Is(err, ctl.ErrNotRunning) {
		return fmt.Errorf("container %s is not running (or does not exist): container:%s needs it running; start it first (rl start %s)", target, target, target)
	}
	if err != nil {
		return err
	}
	env := append(os.Environ(), cli.EnvExe+"="+self, cli.EnvLibexec+"="+libexec)
	if st, err := term.GetState(int(os.Stdin.Fd())); err == nil {
		defer term.Restore(int(os.Stdin.Fd()), st)
	}
	code, err := ctl.Spawn(p.RunRoot, id, append([]string{"rl"}, args...), env, os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, ctl.ErrNotRunning) {
		return fmt.Errorf("container %s stopped while starting this one", target)
	}
	if err != nil || code == 0 {
		return err
	}
	return cli.ExitCode(code)
}

// inheritedFDs is how many descriptors from 3 up our caller left open.
var inheritedFDs int

// openFrom3 counts the descriptors 3, 4, ... our caller left open, up to
// the first that is closed or close-on-exec: an inherited descriptor is
// never close-on-exec (it would not have survived the exec), while the
// ones Go's runtime opens before main (the cgroup's CPU quota file, for
// GOMAXPROCS) are.
func openFrom3() int {
	n := 0
	for {
		flags, err := unix.FcntlInt(uintptr(3+n), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			return n
		}
		n++
	}
}

// preservedFiles are the fds 3 to 3+n-1 that --preserve-fds passes on; our
// caller must have left each open.
func preservedFiles(n uint) ([]*os.File, error) {
	if int(n) > inheritedFDs {
		return nil, fmt.Errorf("--preserve-fds %d: fd %d is not open in rl (or is close-on-exec): open fds 3 to %d for rl, or pass fewer", n, 3+inheritedFDs, 2+n)
	}
	var files []*os.File
	for fd := 3; fd < 3+int(n); fd++ {
		files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("preserved-fd-%d", fd)))
	}
	return files, nil
}
