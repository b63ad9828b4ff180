// Command denyuserns runs a program under a seccomp filter that refuses
// user namespaces the way Docker's default profile does (EPERM for unshare
// and clone with CLONE_NEWUSER, ENOSYS for clone3), with no_new_privs set:
//
//	denyuserns PROGRAM [ARGS...]
//
// The environment tests run rl under it (tests/environments_test.go).
package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/rlcontainers/rl/tests/testenv"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: denyuserns PROGRAM [ARGS...]")
		os.Exit(2)
	}
	prog, err := exec.LookPath(os.Args[1])
	if err == nil {
		err = testenv.InstallDenyUserNS()
	}
	if err == nil {
		err = unix.Exec(prog, os.Args[1:], os.Environ())
	}
	fmt.Fprintln(os.Stderr, "denyuserns:", err)
	os.Exit(126)
}
