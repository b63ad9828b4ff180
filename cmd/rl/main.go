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

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/container/ctl"
	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/internal/trace"
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
	if initproc.IsReaper() {
		code, err := initproc.Reap()
		if err != nil {
			fmt.Fprintln(os.Stderr, "rl:", err)
		}
		os.Exit(code)
	}
	trace.Mark("host: main")
	// Descriptors our caller left open without close-on-exec are not ours
	// to pass on: not to rl-core, and so not to a container.
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	os.Exit(cli.Report(os.Stderr, run(os.Args[1:])))
}

func run(args []string) error {
	if cli.PreScan(args) == "run" {
		if handled, err := runEarly(args); handled {
			return err
		}
	}
	c, kctx, err := cli.Parse(args, os.Exit)
	if err != nil {
		return err
	}
	trace.Mark("host: parsed")
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding rl's own path: %w", err)
	}
	libexec, err := helperDir(self)
	if err != nil {
		return err
	}
	fallback := func(args ...string) error { return runInside(self, libexec, cli.Command(kctx), args) }
	if handled, err := fastPath(c, kctx, fallback); handled {
		return err
	}
	if target := c.Run.JoinTarget(); cli.Command(kctx) == "run" && target != "" {
		return spawnIn(c, target, args, self, libexec)
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
	return runInside(self, libexec, cli.Command(kctx), args, cli.EnvParsed+"="+parsed)
}

// errNotEarly: the command line is not a plain rl run after all.
var errNotEarly = errors.New("not an early start")

// runEarly is rl run's hot path: rl-core is started (and the maps written)
// first, while this process parses the command line; the parse reaches
// rl-core with the release (userns Options.Payload). rl run with a
// container:NAME namespace, and anything the pre-scan took for rl run that
// is not, are not handled (false): the caller goes the usual way.
func runEarly(args []string) (bool, error) {
	self, err := os.Executable()
	if err != nil {
		return true, fmt.Errorf("finding rl's own path: %w", err)
	}
	libexec, err := helperDir(self)
	if err != nil {
		return true, err
	}
	parse := func() ([]byte, error) {
		c, kctx, err := cli.Parse(args, os.Exit)
		trace.Mark("host: parsed")
		if err != nil {
			return nil, err
		}
		if cli.Command(kctx) != "run" || c.Run.JoinTarget() != "" {
			return nil, errNotEarly
		}
		p, err := cli.Parsed{Command: "run", Given: cli.Given(kctx), CLI: c}.Encode()
		return []byte(p), err
	}
	err = inside(self, libexec, "run", args, parse)
	if errors.Is(err, errNotEarly) {
		return false, nil
	}
	return true, err
}

// runInside runs the command in rl's user namespace, in rl-core or
// rl-image, and returns its exit code as an error.
func runInside(self, libexec, command string, args []string, env ...string) error {
	return inside(self, libexec, command, args, nil, env...)
}

// inside is runInside, with a payload for the child made while it starts.
func inside(self, libexec, command string, args []string, payload func() ([]byte, error), env ...string) error {
	plan := userns.MakePlan(userns.CurrentIdentity())
	trace.Mark("host: planned")
	for _, w := range plan.Warnings {
		fmt.Fprintln(os.Stderr, "rl: warning:", w)
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
		Mark:    traceMark(),
		Payload: payload,
	})
	if err != nil || code == 0 {
		return err
	}
	return cli.ExitCode(code)
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

// traceMark is trace.Mark when phase marks are on (RL_TRACE), else nil.
func traceMark() func(string) {
	if trace.On() {
		return trace.Mark
	}
	return nil
}
