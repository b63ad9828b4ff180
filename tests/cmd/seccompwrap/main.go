// Command seccompwrap runs a program under one of the seccomp filters of
// tests/testenv (seccomp.go), each standing for an environment rl must
// meet:
//
//	seccompwrap PROFILE PROGRAM [ARGS...]
//
// docker-userns refuses user namespaces as Docker's default profile does;
// linux-4.18 refuses, with ENOSYS, every system call newer than Linux 4.18,
// old-profile the same calls with EPERM.
// Run by a user, it sets no_new_privs (setuid helpers then run without
// their privileges); run by root, it does not, so that root can install the
// filter and switch to the user after (setpriv). The environment tests run
// rl under it (tests/environments_test.go).
package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/rlcontainers/rl/tests/testenv"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 3 || testenv.Filters[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: seccompwrap docker-userns|linux-4.18|old-profile PROGRAM [ARGS...]")
		os.Exit(2)
	}
	prog, err := exec.LookPath(os.Args[2])
	var filter []unix.SockFilter
	if err == nil {
		filter, err = testenv.Filters[os.Args[1]]()
	}
	if err == nil {
		err = testenv.Install(filter)
	}
	if err == nil {
		err = testenv.CheckInstalled(os.Args[1])
	}
	if err == nil {
		err = unix.Exec(prog, os.Args[2:], os.Environ())
	}
	fmt.Fprintln(os.Stderr, "seccompwrap:", err)
	os.Exit(126)
}
