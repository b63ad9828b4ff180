// Package initproc is the container's init: executed in the container's new
// namespaces, it sets up the mounts, pivots into the rootfs and execs the
// workload, so no rl process is left inside the container. It runs in the
// small rl binary (rl __rl-container-init), which must start in about a
// millisecond: it must not import storage or the image library.
package initproc

import (
	"github.com/rlcontainers/rl/netstack/link"
	"github.com/rlcontainers/rl/rootfs/mounts"
)

// NetworkSpec is the first message the supervisor sends the init, at once
// after the clone: what its network namespace needs. The init sets that up
// while it waits for the Spec, which comes once the container is created
// and mounted.
type NetworkSpec struct {
	// Link, when set, is the TAP to create for user-mode networking; nil
	// leaves the new network namespace with lo only.
	Link *link.Config `json:"link,omitempty"`
	// Shared: the container joined a network namespace that is not its
	// own (--network host, container:NAME): configure nothing.
	Shared bool `json:"shared,omitempty"`
}

// Spec is what the supervisor sends the container's init: everything it
// needs, decided on the supervisor's side.
type Spec struct {
	Rootfs   string      `json:"rootfs"`
	Hostname string      `json:"hostname"`
	Mounts   []mounts.Op `json:"mounts"`
	Args     []string    `json:"args"`
	Env      []string    `json:"env"`
	Cwd      string      `json:"cwd"`
	// User is a docker --user spec (name|uid[:group|gid]), resolved
	// against the container's /etc/passwd and /etc/group after pivot_root.
	User     string `json:"user"`
	Terminal bool   `json:"terminal"`
	// Reaper, when not 0, is the init's fd of a sealed copy of rl to exec
	// as PID 1 (--init) before the workload.
	Reaper int `json:"reaper,omitempty"`
	// Preserve fds of the init from PreserveFrom on become the workload's
	// fds 3, 4, ... (--preserve-fds).
	Preserve     int `json:"preserve,omitempty"`
	PreserveFrom int `json:"preserve_from,omitempty"`
	// Caps are the capabilities the workload keeps (container/caps).
	Caps []string `json:"caps"`
	// NoNewPrivs sets no_new_privs: setuid binaries and file capabilities
	// grant nothing (--security-opt no-new-privileges).
	NoNewPrivs bool `json:"noNewPrivs,omitempty"`
	// Seccomp is the workload's seccomp filter; empty: none (unconfined,
	// --privileged).
	Seccomp Program `json:"seccomp,omitempty"`
	// ConnectNotify has the workload's connect(2) calls answered by the
	// supervisor (netstack/bypass): the init sends it the listener
	// (MsgConnect), or a warning (MsgWarn) when it cannot install it.
	ConnectNotify bool `json:"connectNotify,omitempty"`
	// AcceptNotify adds accept(2) and accept4(2) to those calls: published
	// ports' connections are handed to the workload as host sockets.
	AcceptNotify bool `json:"acceptNotify,omitempty"`
}

// Files the init sends the supervisor, named by the datagram they ride on.
const (
	MsgPty = "pty" // the pty master (-t)
	MsgTap = "tap" // the TAP device (user-mode networking)
	// MsgConnect is the seccomp listener of the workload's connect(2)
	// calls (Spec.ConnectNotify).
	MsgConnect = "connect"
	// MsgWarn starts a datagram without a file: a warning for the user,
	// the rest of the datagram (the container runs on).
	MsgWarn = "warn: "
)

// Exit codes as docker and podman use them.
const (
	ExitRlError       = 125 // rl itself failed
	ExitCannotExecute = 126 // the command was found but cannot be run
	ExitNotFound      = 127 // the command was not found
)

// InitError is the one message the init sends when it fails; an exec that
// succeeds closes the socket (close-on-exec) instead.
type InitError struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
}

// Arg is argv[1] of the rl binary re-executed as the container's init,
// when rl was built without the embedded rl-init.
const Arg = "__rl-container-init"

// ReaperArg is argv[1] of rl running as a container's --init reaper.
const ReaperArg = "__rl-reaper"

// SocketFd is where the supervisor puts the init's end of the
// SOCK_SEQPACKET socketpair (exec.Cmd.ExtraFiles[0]).
const SocketFd = 3
