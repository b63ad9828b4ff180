// Command rl-testenv serves rl's test image from a local registry, for
// humans and scripts (`make demo`) that want `rl run busybox sh` on a machine
// with no route to Docker Hub:
//
//	rl-testenv serve --dir D [--user NAME] [--home H] [--create-user]
//
// builds the busybox image from busybox-static, starts docker-registry on
// 127.0.0.1, pushes the image as library/busybox:latest, writes the user's
// registries.conf (docker.io mirrored by the registry) and policy.json,
// prints RL_TEST_REGISTRY=127.0.0.1:PORT and serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/rlcontainers/rl/tests/testenv"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: rl-testenv serve --dir DIR [--user NAME] [--home DIR] [--create-user]")
		os.Exit(2)
	}
	if err := serve(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "rl-testenv:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dir := fs.String("dir", "", "working directory for the image and the registry's storage (required)")
	name := fs.String("user", "", "user whose containers config points at the registry (default: the caller)")
	home := fs.String("home", "", "that user's HOME, created if missing (default: from /etc/passwd)")
	create := fs.Bool("create-user", false, "as root, create the user with subordinate ids 200000:65536 if needed")
	fs.Parse(args)
	if *dir == "" {
		return errors.New("--dir is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	u, err := lookupUser(*name, *create)
	if err != nil {
		return err
	}
	if *home == "" {
		*home = u.HomeDir
	}
	if err := ensureHome(*home, u); err != nil {
		return err
	}

	layout, err := testenv.BuildBusybox(*dir)
	if err != nil {
		return err
	}
	reg, err := testenv.StartRegistry(filepath.Join(*dir, "registry"))
	if err != nil {
		return err
	}
	defer reg.Stop()
	if err := testenv.Push(ctx, layout, reg.Addr()+"/library/busybox:latest"); err != nil {
		return err
	}
	if err := testenv.WriteUserConfig(*home, reg.Addr()); err != nil {
		return err
	}
	fmt.Printf("RL_TEST_REGISTRY=%s\n", reg.Addr())
	fmt.Fprintf(os.Stderr, "rl-testenv: serving busybox as docker.io/library/busybox:latest for %s (HOME=%s); Ctrl-C stops\n", u.Username, *home)
	<-ctx.Done()
	return nil
}

func lookupUser(name string, create bool) (*user.User, error) {
	if name == "" {
		return user.Current()
	}
	if create {
		if _, _, err := testenv.EnsureUser(name, true, 200000); err != nil {
			return nil, err
		}
	}
	return user.Lookup(name)
}

// ensureHome creates home for u when missing; as root, gives it to u.
func ensureHome(home string, u *user.User) error {
	if _, err := os.Stat(home); err == nil {
		return nil
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if os.Geteuid() != 0 {
		return os.MkdirAll(home, 0o700)
	}
	return testenv.MakeHome(home, uid, gid)
}
