package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/container"
	"github.com/rlcontainers/rl/rootfs"
	"github.com/rlcontainers/rl/userns"
	"golang.org/x/sys/unix"
)

func runRun(c *cli.CLI, s *session.Session) error {
	r := &c.Run
	rootfs.Lib = withImageConfig(rootfs.Lib, c)
	rt := runtime(c, s)
	mode := container.Mode{Attach: !r.Detach, Detached: s.Detach}
	preserved, err := preservedFiles(r.PreserveFDs)
	if err != nil {
		return err
	}
	mode.Preserved = preserved
	code, err := container.Run(s.Ctx, rt, container.RunOptions{
		Image: r.Image, Cmd: r.Args, Entrypoint: r.Entrypoint,
		Name: r.Name, Hostname: r.Hostname, Env: r.EnvList, ProxyEnv: proxyEnv(r.HTTPProxy), Workdir: r.Workdir, User: r.User,
		Volumes: r.Volumes, Tmpfs: r.TmpfsMounts, ReadOnly: r.ReadOnly,
		Interactive: r.Interactive, TTY: r.TTY, Remove: r.Rm,
		Pull: r.Pull, Init: r.Init, StopTimeout: r.StopTimeout,
		Namespaces: r.Namespaces(), UserNS: r.Userns,
		Caps: r.Caps, NoNewPrivs: r.NoNewPrivs, Privileged: r.Privileged, Unmask: r.Unmask, Seccomp: r.Seccomp,
		Ports: r.Publish, PublishAll: r.PublishAll, DNS: r.DNS, AddHosts: r.AddHost, NoHosts: r.NoHosts,
		DNSSearch: r.DNSSearch, DNSOptions: r.DNSOption, Expose: r.Expose,
	}, mode)
	if err != nil {
		return err
	}
	return cli.ExitCode(code)
}

// runtime is what the container package needs from this process.
func runtime(c *cli.CLI, s *session.Session) *container.Runtime {
	return &container.Runtime{
		Store:    s.Store,
		SingleID: s.SingleID,
		RunRoot:  s.Paths.RunRoot,
		Plan:     s.Plan,
		InitPath: os.Getenv(cli.EnvExe),
		Pull:     func(ctx context.Context, image string) error { return pullWithHelper(ctx, c, image) },
		Signals:  s.Signals,
		Stdio:    container.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr},
		Warn:     session.Warn,
	}
}

// pullWithHelper runs `rl-image pull` in this user namespace: the copy
// pipeline lives in rl-image so that rl-core starts fast. Its progress and
// its one-line error go to stderr; its exit code becomes ours.
func pullWithHelper(ctx context.Context, c *cli.CLI, image string) error {
	args := append(append([]string{"rl"}, c.Globals.Args()...), "pull")
	if c.Run.TLSVerify != nil {
		args = append(args, "--tls-verify="+strconv.FormatBool(*c.Run.TLSVerify))
	}
	if c.Run.Authfile != "" {
		args = append(args, "--authfile", c.Run.Authfile)
	}
	if c.Run.Quiet {
		args = append(args, "-q")
	}
	args = append(args, "--", image)
	cmd := exec.CommandContext(ctx, filepath.Join(os.Getenv(cli.EnvLibexec), cli.Image))
	cmd.Args = args
	cmd.Stdout = io.Discard // the image id: not the workload's output
	cmd.Stderr = os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	// A killed supervisor must not leave the pull running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return cli.ExitCode(ee.ExitCode())
		}
		return err
	}
	return nil
}

// preservedFiles are the --preserve-fds descriptors the host-side rl passed
// from userns.ExtraFD on (rl run's, or rl exec's when the exec came here);
// close-on-exec here, so only the container's init or the exec'd process
// gets them (not a pull helper).
func preservedFiles(n uint) ([]*os.File, error) {
	var files []*os.File
	for i := 0; i < int(n); i++ {
		fd := userns.ExtraFD + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("--preserve-fds %d: the descriptor for the container's fd %d did not arrive (rl-core's fd %d): run rl, not rl-core", n, 3+i, fd)
		}
		unix.CloseOnExec(fd)
		files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("preserved-fd-%d", 3+i)))
	}
	return files, nil
}

// proxyEnv is rl's proxy variables for --http-proxy (podman's default),
// read here rather than in the parse, which may be cached
// (cli.ParseCache) or recorded for the fast path.
func proxyEnv(on bool) []string {
	if !on {
		return nil
	}
	return cli.ProxyEnv()
}
