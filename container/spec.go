// Package container starts a container from a mounted rootfs: the
// supervisor side (parent.go) clones the container's init with new pid,
// uts, ipc, net, cgroup and mount namespaces; the init side (child.go) sets
// up the mounts, pivots into the rootfs and execs the workload, so no rl
// process is left inside the container.
package container

import (
	"github.com/rlcontainers/rl/rootfs"
)

// Spec is what the supervisor sends the container's init: everything it
// needs, decided on the supervisor's side.
type Spec struct {
	Rootfs   string      `json:"rootfs"`
	Hostname string      `json:"hostname"`
	Mounts   []rootfs.Op `json:"mounts"`
	Args     []string    `json:"args"`
	Env      []string    `json:"env"`
	Cwd      string      `json:"cwd"`
	// User is a docker --user spec (name|uid[:group|gid]), resolved
	// against the container's /etc/passwd and /etc/group after pivot_root.
	User     string `json:"user"`
	Terminal bool   `json:"terminal"`
}

// Exit codes as docker and podman use them.
const (
	ExitRlError       = 125 // rl itself failed
	ExitCannotExecute = 126 // the command was found but cannot be run
	ExitNotFound      = 127 // the command was not found
)

// initError is the one message the init sends when it fails; an exec that
// succeeds closes the socket (close-on-exec) instead.
type initError struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
}

// initArg is argv[1] of the re-executed binary that becomes the container's init.
const initArg = "__rl-container-init"
