package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/config"
	"github.com/rlcontainers/rl/hostcheck"
	"github.com/rlcontainers/rl/rootfs/paths"
)

// runDoctor tries each ingredient rl needs (hostcheck.Doctor) and prints
// one line per check; it exits 1 when rl run cannot work at all.
//
// It runs in rl-core, so creating a user namespace and opening the store
// have worked already: when they fail, the host-side rl reports them
// (userns.Error with its fix) and exits 125 before any check runs.
func runDoctor(c *cli.CLI, s *session.Session) error {
	uid := paths.HostUID()
	name := os.Getenv("USER")
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		name = u.Username
	}
	cfgPath := config.Path()
	if cfgPath == "" {
		cfgPath = "~/.config/rl/rl.conf"
	}
	checks := hostcheck.Doctor(hostcheck.DoctorInput{
		Plan: s.Plan, User: name, UID: uid,
		StoreRoot: s.Paths.Root, Driver: s.Driver.Name, DriverReason: s.Driver.Reason,
		RunRoot: s.Paths.RunRoot, RunRootReason: s.Paths.RunRootReason,
		ConfigPath: cfgPath,
	})
	if _, _, err := config.Load(); err != nil {
		checks = append(checks, hostcheck.Check{Name: "config", Status: hostcheck.Degraded,
			Detail: "rl.conf is ignored", Cause: err.Error(), Fix: "fix or remove " + cfgPath})
	}
	if c.Doctor.Format == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(checks); err != nil {
			return err
		}
	} else {
		for _, ch := range checks {
			line := fmt.Sprintf("%-8s  %-13s  %s", ch.Status, ch.Name, ch.Detail)
			if ch.Cause != "" {
				line += "; cause: " + ch.Cause
			}
			if ch.Fix != "" {
				line += "; fix: " + ch.Fix
			}
			fmt.Println(line)
		}
	}
	if hostcheck.AnyBroken(checks) {
		return cli.ExitCode(1)
	}
	return nil
}
