package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rlcontainers/rl/container/caps"
	"github.com/rlcontainers/rl/container/ctl"
	"github.com/rlcontainers/rl/rootfs/mounts"
)

// RunCmd is `rl run`: flags as docker and podman have them.
type RunCmd struct {
	Interactive bool     `short:"i" help:"Keep stdin open."`
	TTY         bool     `name:"tty" short:"t" help:"Allocate a pseudo-terminal."`
	Detach      bool     `short:"d" help:"Run in the background and print the container id."`
	Rm          bool     `help:"Remove the container when it exits."`
	Init        bool     `help:"Run a reaper as PID 1 that forwards signals and reaps zombies."`
	StopTimeout int      `name:"stop-timeout" help:"Seconds rl stop waits before SIGKILL." default:"10"`
	Name        string   `help:"Name the container."`
	Env         []string `short:"e" help:"Set an environment variable (KEY=VALUE, or KEY to copy it from rl's environment)." sep:"none"`
	EnvFile     []string `name:"env-file" help:"Read environment variables from a file." sep:"none" type:"path"`
	HTTPProxy   bool     `name:"http-proxy" help:"Pass rl's proxy variables (http_proxy, https_proxy, ftp_proxy, no_proxy; upper case too) to the container, under the image's Env and -e (--http-proxy=false: do not)." default:"true" negatable:""`
	Workdir     string   `short:"w" help:"Working directory inside the container."`
	User        string   `short:"u" help:"User to run as: name|uid[:group|gid]."`
	Entrypoint  *string  `help:"Override the image's entrypoint (\"\" clears it)."`
	Volume      []string `short:"v" help:"Bind-mount a host path: SRC:DST[:ro]." sep:"none"`
	Tmpfs       []string `help:"Mount a tmpfs: DST[:OPTIONS]." sep:"none"`
	ReadOnly    bool     `name:"read-only" help:"Mount the rootfs read-only (/tmp, /var/tmp and /run stay writable tmpfs)."`
	Hostname    string   `help:"Container hostname (default: the short container id)."`
	Pull        string   `help:"Pull the image: missing, always or never." enum:"missing,always,never,newer" default:"missing"`
	Network     string   `aliases:"net" help:"Network: slirp[:OPTIONS] (user-mode, the default, also named bridge, pasta, slirp4netns and private; options mtu=, allow_host_loopback=, enable_ipv6=, cidr=, outbound_addr=, outbound_addr6=, bypass=), none, host or container:NAME." default:"slirp"`
	Publish     []string `short:"p" help:"Publish a port: [IP:]HOSTPORT:CTRPORT[/tcp|/udp], ranges as 8000-8010:80-90." sep:"none"`
	PublishAll  bool     `short:"P" name:"publish-all" help:"Publish the image's EXPOSE ports on free host ports."`
	DNS         []string `name:"dns" help:"Nameserver for the container (default: rl's DNS relay to the host's resolvers; none: the image's /etc/resolv.conf stays)." sep:"none"`
	DNSSearch   []string `name:"dns-search" help:"Search domain for the container's /etc/resolv.conf (. for none; default: the host's)." sep:"none"`
	DNSOption   []string `name:"dns-option" aliases:"dns-opt" help:"Resolver option for the container's /etc/resolv.conf (default: the host's)." sep:"none"`
	Expose      []string `name:"expose" help:"Expose a port or range (PORT[-PORT][/tcp|/udp]), published with -P as the image's EXPOSE." sep:"none"`
	AddHost     []string `name:"add-host" help:"Add NAME[;NAME...]:IP to the container's /etc/hosts (IP host-gateway: the host, as host.containers.internal)." sep:"none"`
	NoHosts     bool     `name:"no-hosts" help:"Write no /etc/hosts for the container: the image's stays."`
	IP          string   `name:"ip" hidden:"" help:"Refused: rl has no bridge network."`
	IP6         string   `name:"ip6" hidden:"" help:"Refused: rl has no bridge network."`
	MACAddress  string   `name:"mac-address" hidden:"" help:"Refused: rl has no bridge network."`
	NetAlias    []string `name:"network-alias" hidden:"" help:"Refused: rl has no bridge network." sep:"none"`
	PID         string   `name:"pid" help:"PID namespace: private, host or container:NAME (default: private; host when an outer container masks /proc)."`
	IPC         string   `name:"ipc" help:"IPC namespace: private, shareable, host or container:NAME." default:"private"`
	UTS         string   `name:"uts" help:"UTS namespace: private, host or container:NAME." default:"private"`
	Cgroupns    string   `name:"cgroupns" help:"Cgroup namespace: private, host or container:NAME." default:"private"`
	Userns      string   `name:"userns" help:"User namespace: \"\" (you are root inside) or keep-id (your uid and gid are the same inside)."`
	CapAdd      []string `name:"cap-add" help:"Add a capability (e.g. NET_ADMIN, ALL)." sep:","`
	CapDrop     []string `name:"cap-drop" help:"Drop a capability (e.g. CHOWN, ALL)." sep:","`
	Privileged  bool     `help:"All capabilities of the user namespace, no masked or read-only paths."`
	PreserveFDs uint     `name:"preserve-fds" help:"Pass N more open file descriptors to the workload, as its fds 3 to 3+N-1." placeholder:"N"`
	SecurityOpt []string `name:"security-opt" help:"no-new-privileges, unmask=PATH[:PATH...]|ALL, seccomp=unconfined." sep:"none"`
	TLSVerify   *bool    `name:"tls-verify" help:"Require HTTPS and verify certificates when pulling."`
	Authfile    string   `help:"Path of the registry auth file." type:"path"`
	Quiet       bool     `short:"q" help:"Pull without progress output."`

	Image string   `arg:"" help:"Image to run."`
	Cmd   []string `arg:"" optional:"" passthrough:"" help:"Command and arguments."`

	// Checked values, set by Validate.
	Caps        []string        `kong:"-"`
	NoNewPrivs  bool            `kong:"-"`
	Unmask      []string        `kong:"-"`
	Seccomp     string          `kong:"-"`
	Args        []string        `kong:"-"`
	EnvList     []string        `kong:"-"`
	Volumes     []mounts.Volume `kong:"-"`
	TmpfsMounts []mounts.Tmpfs  `kong:"-"`
}

// Validate checks everything that can be checked before any namespace
// exists.
func (c *RunCmd) Validate() error {
	c.Args = c.Cmd
	if len(c.Args) > 0 && c.Args[0] == "--" {
		c.Args = c.Args[1:]
	}
	var err error
	if c.EnvList, err = ParseEnv(c.Env, c.EnvFile); err != nil {
		return err
	}
	if c.Volumes, err = ParseVolumes(c.Volume); err != nil {
		return err
	}
	if c.TmpfsMounts, err = ParseTmpfs(c.Tmpfs); err != nil {
		return err
	}
	if err := ValidateNetwork(c.Network); err != nil {
		return err
	}
	for _, f := range []struct{ name, val string }{{"ip", c.IP}, {"ip6", c.IP6}, {"mac-address", c.MACAddress}, {"network-alias", strings.Join(c.NetAlias, ",")}} {
		if f.val != "" {
			// As podman refuses them with slirp4netns and pasta.
			return fmt.Errorf("--%s %s: only a bridge network takes a static address or alias, and rl has none (a container is always the .100 of its subnet); drop --%s", f.name, f.val, f.name)
		}
	}
	for _, ns := range []struct{ flag, mode string }{{"pid", c.PID}, {"ipc", c.IPC}, {"uts", c.UTS}, {"cgroupns", c.Cgroupns}} {
		if err := ValidateNamespace(ns.flag, ns.mode); err != nil {
			return err
		}
	}
	if c.Caps, err = caps.Resolve(c.CapAdd, c.CapDrop, c.Privileged); err != nil {
		return err
	}
	for _, o := range c.SecurityOpt {
		k, v, _ := strings.Cut(o, "=")
		switch {
		case o == "no-new-privileges" || (k == "no-new-privileges" && v == "true"):
			c.NoNewPrivs = true
		case k == "no-new-privileges" && v == "false":
		case k == "unmask" && v != "":
			c.Unmask = append(c.Unmask, strings.Split(v, ":")...)
		case k == "seccomp" && v != "":
			if v != "unconfined" {
				if _, err := os.Stat(v); err != nil {
					return fmt.Errorf("--security-opt %s: %v: give a seccomp profile (JSON) or unconfined", o, unwrapPathError(err))
				}
				if abs, err := filepath.Abs(v); err == nil {
					v = abs
				}
			}
			c.Seccomp = v
		case o == "label=disable" || o == "apparmor=unconfined":
			// rl has no SELinux or AppArmor labels to undo.
		default:
			return fmt.Errorf("unknown --security-opt %q: use no-new-privileges, unmask=PATH or ALL, seccomp=unconfined or seccomp=PROFILE.json", o)
		}
	}
	switch c.Userns {
	case "", "keep-id":
	case "host":
		return fmt.Errorf("--userns host is not possible rootless: the kernel lets an unprivileged user create namespaces only inside a user namespace of their own; drop --userns (you are root inside, yourself outside) or use --userns keep-id")
	default:
		return fmt.Errorf("invalid --userns %q: use keep-id, or leave it out", c.Userns)
	}
	if c.Hostname != "" && !ValidHostname(c.Hostname) {
		return fmt.Errorf("invalid --hostname %q: use letters, digits, '-' and '.', at most 64 characters", c.Hostname)
	}
	if c.Workdir != "" && c.Workdir[0] != '/' {
		return fmt.Errorf("invalid --workdir %q: it must be an absolute path", c.Workdir)
	}
	if u, g, hasGroup := strings.Cut(c.User, ":"); c.User != "" && (u == "" || (hasGroup && g == "")) {
		return fmt.Errorf("invalid --user %q: use name|uid[:group|gid]", c.User)
	}
	if c.Name != "" && !validName().MatchString(c.Name) {
		return fmt.Errorf("invalid --name %q: use letters, digits and _.- (starting with a letter or digit)", c.Name)
	}
	return nil
}

// The package's regexps are compiled on first use: every rl process links
// this package, the container's init too, and most never use them.
var validName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) })

// Namespaces are the run's namespace modes, by kind.
func (c *RunCmd) Namespaces() map[string]string {
	return map[string]string{"net": c.Network, "pid": c.PID, "ipc": c.IPC, "uts": c.UTS, "cgroup": c.Cgroupns}
}

// JoinTarget is the container whose namespaces this run joins (the first
// container:NAME mode), or "".
func (c *RunCmd) JoinTarget() string {
	for _, mode := range []string{c.Network, c.PID, c.IPC, c.UTS, c.Cgroupns} {
		if t, ok := strings.CutPrefix(mode, "container:"); ok {
			return t
		}
	}
	return ""
}

// ExecCmd is `rl exec`.
type ExecCmd struct {
	Interactive bool     `short:"i" help:"Keep stdin open."`
	TTY         bool     `name:"tty" short:"t" help:"Allocate a pseudo-terminal."`
	Detach      bool     `short:"d" help:"Run in the background."`
	Env         []string `short:"e" help:"Set an environment variable." sep:"none"`
	Workdir     string   `short:"w" help:"Working directory inside the container."`
	User        string   `short:"u" help:"User to run as: name|uid[:group|gid]."`
	PreserveFDs uint     `name:"preserve-fds" help:"Pass N more open file descriptors to the process, as its fds 3 to 3+N-1." placeholder:"N"`
	Container   string   `arg:"" help:"Container (name, id or id prefix)."`
	Cmd         []string `arg:"" passthrough:"" help:"Command and arguments."`

	EnvList []string `kong:"-"`
	Args    []string `kong:"-"`
}

// Validate checks the command line before anything runs.
func (c *ExecCmd) Validate() error {
	c.Args = c.Cmd
	if len(c.Args) > 0 && c.Args[0] == "--" {
		c.Args = c.Args[1:]
	}
	if len(c.Args) == 0 {
		return fmt.Errorf("no command: give one after the container, e.g. rl exec %s sh", c.Container)
	}
	if c.Workdir != "" && c.Workdir[0] != '/' {
		return fmt.Errorf("invalid --workdir %q: it must be an absolute path", c.Workdir)
	}
	var err error
	c.EnvList, err = ParseEnv(c.Env, nil)
	return err
}

// StartCmd is `rl start`.
type StartCmd struct {
	Attach     bool     `short:"a" help:"Attach to the container's output and wait for it."`
	Containers []string `arg:"" help:"Containers to start."`
}

// StopCmd is `rl stop`.
type StopCmd struct {
	Time       *int     `short:"t" name:"time" help:"Seconds to wait before SIGKILL (default: the container's --stop-timeout, 10)."`
	Containers []string `arg:"" help:"Containers to stop."`
}

// RestartCmd is `rl restart`: rl stop, then rl start, of each container.
type RestartCmd struct {
	Time       *int     `short:"t" name:"time" help:"Seconds to wait before SIGKILL (default: the container's --stop-timeout, 10)."`
	Containers []string `arg:"" help:"Containers to restart."`
}

// KillCmd is `rl kill`.
type KillCmd struct {
	Signal     string   `short:"s" help:"Signal to send (name or number)." default:"KILL"`
	Containers []string `arg:"" help:"Containers to signal."`
}

// Validate checks the signal.
func (c *KillCmd) Validate() error {
	_, err := ctl.ParseSignal(c.Signal)
	return err
}

// WaitCmd is `rl wait`.
type WaitCmd struct {
	Containers []string `arg:"" help:"Containers to wait for."`
}

// LogsCmd is `rl logs`.
type LogsCmd struct {
	Follow     bool   `short:"f" help:"Follow the output until the container exits."`
	Tail       int    `help:"Show only the last N lines (-1: all)." default:"-1"`
	Timestamps bool   `short:"t" help:"Show timestamps."`
	Container  string `arg:"" help:"Container."`
}

// AttachCmd is `rl attach`.
type AttachCmd struct {
	Container string `arg:"" help:"Container."`
}

// InspectCmd is `rl inspect`.
type InspectCmd struct {
	Format     string   `short:"f" help:"Go template to format each container."`
	Containers []string `arg:"" help:"Containers to inspect."`
}

// PortCmd is `rl port`.
type PortCmd struct {
	All       bool   `short:"a" help:"List the published ports of every running container."`
	Container string `arg:"" optional:"" help:"Container."`
	Port      string `arg:"" optional:"" help:"Only this container port: PORT or PORT/tcp|udp."`
}

// Validate checks the arguments before any namespace does.
func (c *PortCmd) Validate() error {
	switch {
	case c.All && c.Container != "":
		return fmt.Errorf("-a lists every running container: give no container with it")
	case !c.All && c.Container == "":
		return fmt.Errorf("give a container, or -a for every running container")
	}
	if c.Port != "" {
		if _, _, err := ContainerPort(c.Port); err != nil {
			return err
		}
	}
	return nil
}

// ContainerPort reads rl port's PORT[/tcp|udp] (tcp when no protocol is
// given).
func ContainerPort(s string) (uint16, string, error) {
	port, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || (proto != "tcp" && proto != "udp") {
		return 0, "", fmt.Errorf("%q is not a container port: give PORT, PORT/tcp or PORT/udp (e.g. 80/tcp)", s)
	}
	return uint16(n), proto, nil
}

// PullCmd is `rl pull`.
type PullCmd struct {
	TLSVerify *bool  `name:"tls-verify" help:"Require HTTPS and verify certificates."`
	Authfile  string `help:"Path of the registry auth file." type:"path"`
	Quiet     bool   `short:"q" help:"No progress output."`
	Image     string `arg:"" help:"Image reference, e.g. busybox or quay.io/org/name:tag."`
}

// LoadCmd is `rl load`.
type LoadCmd struct {
	Input string `short:"i" required:"" help:"docker-archive or oci-archive file." type:"path"`
	Quiet bool   `short:"q" help:"No progress output."`
}

// Validate checks the archive exists before any namespace does.
func (c *LoadCmd) Validate() error {
	if _, err := os.Stat(c.Input); err != nil {
		return fmt.Errorf("rl load -i %s: %v: give an existing archive file", c.Input, unwrapPathError(err))
	}
	return nil
}

// ImagesCmd is `rl images`.
type ImagesCmd struct {
	Quiet bool `short:"q" help:"Only show image ids."`
}

// RmiCmd is `rl rmi`.
type RmiCmd struct {
	Force  bool     `short:"f" help:"Also remove containers using the image."`
	Images []string `arg:"" help:"Images to remove."`
}

// ImageConfigCmd is rl-core's question to rl-image for the OCI config of
// an image whose manifest rl-core does not read itself (rootfs.Library):
// not a user's command.
type ImageConfigCmd struct {
	ID string `arg:"" help:"Image id."`
}

// PsCmd is `rl ps`.
type PsCmd struct {
	All     bool   `short:"a" help:"Show all containers, not only running ones."`
	Quiet   bool   `short:"q" help:"Only show container ids."`
	Format  string `help:"json, or a Go template (e.g. '{{.Names}} {{.Status}}')."`
	NoTrunc bool   `name:"no-trunc" help:"Do not truncate output."`
}

// RmCmd is `rl rm`.
type RmCmd struct {
	Force      bool     `short:"f" help:"Kill running containers first."`
	Containers []string `arg:"" help:"Containers to remove (names, ids or id prefixes)."`
}

// InfoCmd is `rl info`.
type InfoCmd struct {
	Format string `help:"Output format: json (default: text)." enum:",json" default:""`
}

// DoctorCmd is `rl doctor`.
type DoctorCmd struct {
	Format string `help:"Output format: json (default: text)." enum:",json" default:""`
}

// SystemCmd is `rl system`.
type SystemCmd struct {
	Check   SystemCheckCmd   `cmd:"" help:"Check the store for damage (and repair it)."`
	Migrate SystemMigrateCmd `cmd:"" help:"Stop rl's keeper process: the next command maps the user namespace anew (after a change to /etc/subuid or /etc/subgid)."`
}

// SystemMigrateCmd is `rl system migrate`: as podman's restarts its pause
// process, it stops rl's keeper (userns.StopKeeper).
type SystemMigrateCmd struct{}

// SystemCheckCmd is `rl system check`, as podman's.
type SystemCheckCmd struct {
	Quick  bool          `help:"Skip the slow checks of layer contents."`
	Repair bool          `short:"r" help:"Remove damaged layers and images."`
	Force  bool          `short:"f" help:"With --repair, remove damaged containers too."`
	Max    time.Duration `short:"m" help:"Unreferenced layers older than this are damage." default:"24h"`
}
