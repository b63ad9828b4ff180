package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/container/seccomp"
)

// compileSeccomp is `rl-image __seccomp [--profile] CAP...`
// (initproc.CompileSeccompArg), by which a supervisor has its seccomp filter
// compiled here: it writes the program as JSON on stdout, from moby's
// default profile or, with --profile, the profile JSON on stdin.
func compileSeccomp(args []string) int {
	var body []byte
	if len(args) > 0 && args[0] == "--profile" {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rl: reading the seccomp profile:", err)
			return initproc.ExitRlError
		}
		body, args = b, args[1:]
	}
	prog, err := seccomp.CompileProfile(body, args)
	if err != nil && body != nil {
		// The user's file: what to do about it (rl-core names the file).
		err = fmt.Errorf("%w: correct the profile (docker's seccomp JSON), or use --security-opt seccomp=unconfined", err)
	}
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(initproc.Program(prog))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rl:", err)
		return initproc.ExitRlError
	}
	return 0
}
