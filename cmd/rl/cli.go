package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/rlcontainers/rl/container"
)

var version = "0.1.0-dev"

// CLI is rl's command line, podman's names and flags where podman has them.
type CLI struct {
	Globals

	Run    RunCmd    `cmd:"" help:"Run a command in a new container."`
	Pull   PullCmd   `cmd:"" help:"Pull an image from a registry."`
	Load   LoadCmd   `cmd:"" help:"Load images from a docker-archive or oci-archive file."`
	Images ImagesCmd `cmd:"" help:"List images."`
	Rmi    RmiCmd    `cmd:"" help:"Remove images."`
	Ps     PsCmd     `cmd:"" help:"List containers."`
	Rm     RmCmd     `cmd:"" help:"Remove containers."`
	Info   InfoCmd   `cmd:"" help:"Show how rl runs on this machine."`

	Version kong.VersionFlag `help:"Print the version and exit."`
}

// exitCode is an error that only carries the code to exit with: the
// report was printed already (by the child, or by the workload).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run parses the command line and runs the command; it returns the exit
// code. rl's own failures exit 125 with one line on stderr.
func run(args []string) int {
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("rl"),
		kong.Description("Rootless containers: root inside, your own uid outside."),
		kong.UsageOnError(),
		kong.Vars{"version": version},
		kong.Exit(func(code int) { os.Exit(code) }),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rl: internal error:", err)
		return container.ExitRlError
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rl: %s: see rl --help\n", err)
		return container.ExitRlError
	}
	err = kctx.Run(&cli.Globals)
	return report(err)
}

func report(err error) int {
	if err == nil {
		return 0
	}
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec)
	}
	code := container.ExitRlError
	var ee *container.ExitError
	if errors.As(err, &ee) {
		code = ee.Code
	}
	fmt.Fprintln(os.Stderr, "rl: "+strings.ReplaceAll(err.Error(), "\n", " "))
	return code
}
