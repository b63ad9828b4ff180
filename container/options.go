package container

import (
	"context"
	"fmt"
	"syscall"

	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/rootfs/mounts"
	"github.com/rlcontainers/rl/userns"
	"go.podman.io/storage"
)

// RunOptions is `rl run` after its flags were checked.
type RunOptions struct {
	Image       string
	Cmd         []string
	Entrypoint  *string // nil: the image's; "" clears it
	Name        string
	Hostname    string
	Env         []string // KEY=VALUE, after --env-file and -e
	ProxyEnv    []string // KEY=VALUE, under the image's Env (--http-proxy)
	Workdir     string
	User        string
	Volumes     []mounts.Volume
	Tmpfs       []mounts.Tmpfs
	ReadOnly    bool
	Interactive bool
	TTY         bool
	Remove      bool
	Pull        string // missing, always, never, newer
	Init        bool
	StopTimeout int               // seconds; 0: 10
	Namespaces  map[string]string // see rootfs.Record; "net" is the --network mode
	UserNS      string
	Ports       []string // -p
	PublishAll  bool     // -P
	DNS         []string // --dns
	AddHosts    []string // --add-host NAME[;NAME...]:IP
	NoHosts     bool     // --no-hosts: the image's /etc/hosts stays
	DNSSearch   []string // --dns-search
	DNSOptions  []string // --dns-option
	Expose      []string // --expose: ports -P publishes besides the image's EXPOSE
	Caps        []string // resolved --cap-add/--cap-drop/--privileged (container/caps)
	NoNewPrivs  bool
	Privileged  bool
	Unmask      []string // --security-opt unmask=PATH (ALL for all)
	Seccomp     string   // --security-opt seccomp=unconfined|FILE; "" the default profile
}

// Runtime is what running a container needs from the session: it lives in
// rl's user namespace.
type Runtime struct {
	Store    storage.Store
	SingleID bool
	// RunRoot is the run dir: control sockets live there (container/ctl).
	RunRoot string
	// Plan is the user namespace's id mapping, for the supervisors this
	// one spawns (container:NAME modes).
	Plan *userns.Plan
	// InitPath is the binary exec'd as the container's init (rl itself,
	// which starts in ~2 ms: it links neither storage nor the image library).
	InitPath string
	// Pull brings a missing image into the store (rl-image pull).
	Pull func(ctx context.Context, image string) error
	// Signals the user sent rl (forwarded by the host-side parent).
	Signals <-chan syscall.Signal
	// Stdio is the user's terminal or pipes: the workload's stdio.
	Stdio Stdio
	// Warn reports a problem that does not stop the command.
	Warn func(string)
}

// ExitRlError is the exit code of rl's own failures (docker's and podman's 125).
const ExitRlError = initproc.ExitRlError

func (rt *Runtime) warn(format string, a ...any) {
	if rt.Warn != nil {
		rt.Warn(fmt.Sprintf(format, a...))
	}
}
