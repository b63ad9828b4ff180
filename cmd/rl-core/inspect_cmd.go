package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"strconv"
	"time"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/container"
	"github.com/rlcontainers/rl/netstack/netconf"
	"github.com/rlcontainers/rl/rootfs"
	"github.com/rlcontainers/rl/rootfs/mounts"
)

// inspectView is rl inspect's JSON: podman's field names where podman has
// them.
type inspectView struct {
	ID         string            `json:"Id"`
	Name       string            `json:"Name"`
	Created    time.Time         `json:"Created"`
	Path       string            `json:"Path"`
	Args       []string          `json:"Args"`
	Image      string            `json:"Image"`
	ImageName  string            `json:"ImageName"`
	State      inspectState      `json:"State"`
	Config     inspectConfig     `json:"Config"`
	HostConfig inspectHostConfig `json:"HostConfig"`
	Mounts     []mounts.Volume   `json:"Mounts"`
	Namespaces map[string]string `json:"Namespaces"`
	Driver     string            `json:"Driver"`
	LogPath    string            `json:"LogPath"`
	Network    inspectNetwork    `json:"NetworkSettings"`
	Tmpfs      []mounts.Tmpfs    `json:"Tmpfs,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

// inspectNetwork is NetworkSettings: the mode (rl's) and the published
// ports as docker and podman key them ("80/tcp": [{HostIp, HostPort}]),
// the host ports -P and -p CTRPORT chose included; none while the
// container does not run. The address fields are podman's for a
// slirp4netns container, empty: the container's address is not one the
// host can reach (a template naming them prints "", not "<no value>").
// SandboxKey is the running container's network namespace, when it has
// one of its own.
type inspectNetwork struct {
	Mode                   string                       `json:"Mode"`
	EndpointID             string                       `json:"EndpointID"`
	Gateway                string                       `json:"Gateway"`
	IPAddress              string                       `json:"IPAddress"`
	IPPrefixLen            int                          `json:"IPPrefixLen"`
	IPv6Gateway            string                       `json:"IPv6Gateway"`
	GlobalIPv6Address      string                       `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen    int                          `json:"GlobalIPv6PrefixLen"`
	MacAddress             string                       `json:"MacAddress"`
	Bridge                 string                       `json:"Bridge"`
	SandboxID              string                       `json:"SandboxID"`
	HairpinMode            bool                         `json:"HairpinMode"`
	LinkLocalIPv6Address   string                       `json:"LinkLocalIPv6Address"`
	LinkLocalIPv6PrefixLen int                          `json:"LinkLocalIPv6PrefixLen"`
	Ports                  map[string][]inspectHostPort `json:"Ports"`
	SandboxKey             string                       `json:"SandboxKey"`
}

type inspectHostPort struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

type inspectState struct {
	Status     string    `json:"Status"`
	Running    bool      `json:"Running"`
	Pid        int       `json:"Pid"`
	Supervisor int       `json:"ConmonPid"`
	ExitCode   int       `json:"ExitCode"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
}

type inspectConfig struct {
	Hostname    string   `json:"Hostname"`
	User        string   `json:"User"`
	Env         []string `json:"Env"`
	Cmd         []string `json:"Cmd"`
	WorkingDir  string   `json:"WorkingDir"`
	Tty         bool     `json:"Tty"`
	OpenStdin   bool     `json:"OpenStdin"`
	StopSignal  int      `json:"StopSignal"`
	StopTimeout int      `json:"StopTimeout"`
}

type inspectHostConfig struct {
	AutoRemove     bool     `json:"AutoRemove"`
	Init           bool     `json:"Init"`
	ReadonlyRootfs bool     `json:"ReadonlyRootfs"`
	NetworkMode    string   `json:"NetworkMode"`
	ExtraHosts     []string `json:"ExtraHosts"`
	// PortBindings are the ports asked for (-p, -P's EXPOSE), with the
	// host ports chosen while the container runs; Dns* are its flags.
	PortBindings    map[string][]inspectHostPort `json:"PortBindings"`
	PublishAllPorts bool                         `json:"PublishAllPorts"`
	DNS             []string                     `json:"Dns"`
	DNSSearch       []string                     `json:"DnsSearch"`
	DNSOptions      []string                     `json:"DnsOptions"`
	Privileged      bool                         `json:"Privileged"`
	EffectiveCaps   []string                     `json:"EffectiveCaps"`
	NoNewPrivs      bool                         `json:"NoNewPrivileges"`
	Unmask          []string                     `json:"Unmask,omitempty"`
	Seccomp         string                       `json:"SeccompProfilePath"`
	Namespaces      map[string]string            `json:"NamespaceModes"`
	UsernsMode      string                       `json:"UsernsMode"`
}

func runInspect(all *cli.CLI, s *session.Session) error {
	var views []inspectView
	err := cli.Each(all.Inspect.Containers, all.Inspect.Containers, func(ref, _ string) error {
		c, err := rootfs.LookupContainer(s.Store, ref)
		if err != nil {
			return err
		}
		rec := rootfs.ReadRecord(c)
		st := rootfs.ReadState(s.Store, c.ID)
		logPath, _ := container.LogPath(s.Store, c.ID)
		v := inspectView{
			ID: c.ID, Name: rec.Name, Created: c.Created, Args: rec.Command,
			Image: rec.ImageID, ImageName: rec.Image,
			State: inspectState{
				Status: st.Status, Running: st.Status == "running", Pid: st.Pid, Supervisor: st.Supervisor,
				ExitCode: st.ExitCode, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt,
			},
			Config: inspectConfig{
				Hostname: rec.Hostname, User: rec.User, Env: rec.Env, Cmd: rec.Command, WorkingDir: rec.Workdir,
				Tty: rec.TTY, OpenStdin: rec.Interactive, StopSignal: rec.StopSignal, StopTimeout: rec.StopTimeout,
			},
			HostConfig: inspectHostConfig{
				AutoRemove: rec.AutoRm, Init: rec.Init, ReadonlyRootfs: rec.ReadOnly,
				NetworkMode: mode(rec.Namespaces["net"]), ExtraHosts: append([]string{}, rec.AddHosts...), Namespaces: rec.Namespaces, UsernsMode: rec.UserNS,
				Privileged: rec.Privileged, EffectiveCaps: rec.Caps, NoNewPrivs: rec.NoNewPrivs, Unmask: rec.Unmask,
				Seccomp:      seccompName(rec),
				PortBindings: map[string][]inspectHostPort{}, PublishAllPorts: rec.PublishAll,
				DNS: nonNil(rec.DNS), DNSSearch: nonNil(rec.DNSSearch), DNSOptions: nonNil(rec.DNSOptions),
			},
			Mounts: rec.Volumes, Tmpfs: rec.Tmpfs, Driver: s.Driver.Name, LogPath: logPath,
			Namespaces: map[string]string{},
		}
		if len(rec.Command) > 0 {
			v.Path = rec.Command[0]
		}
		if v.Config.Hostname == "" {
			v.Config.Hostname = c.ID[:12]
		}
		for ns, link := range st.Namespaces {
			v.Namespaces[ns] = fmt.Sprintf("/proc/%d/ns/%s (%s)", st.Pid, ns, link)
		}
		v.Network = inspectNetwork{Mode: v.HostConfig.NetworkMode, Ports: map[string][]inspectHostPort{}}
		if _, ok := st.Namespaces["net"]; ok && v.Network.Mode != "host" {
			v.Network.SandboxKey = fmt.Sprintf("/proc/%d/ns/net", st.Pid)
		}
		for _, m := range published(st.Ports) {
			k := m.Container()
			v.Network.Ports[k] = append(v.Network.Ports[k], inspectHostPort{HostIP: m.HostAddr().String(), HostPort: strconv.Itoa(int(m.HostPort))})
		}
		maps.Copy(v.HostConfig.PortBindings, v.Network.Ports)
		if len(st.Ports) == 0 {
			// Not running: the ports as asked for (0: a port chosen at start).
			asked, _ := netconf.ParsePorts(rec.Ports)
			for _, m := range asked {
				port := ""
				if m.HostPort != 0 {
					port = strconv.Itoa(int(m.HostPort))
				}
				k := m.Container()
				v.HostConfig.PortBindings[k] = append(v.HostConfig.PortBindings[k], inspectHostPort{HostIP: m.HostAddr().String(), HostPort: port})
			}
		}
		views = append(views, v)
		return nil
	})
	if all.Inspect.Format != "" {
		if perr := printTemplate(all.Inspect.Format, views, true); perr != nil {
			return perr
		}
		return err
	}
	if views == nil {
		views = []inspectView{}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "    ")
	if eerr := enc.Encode(views); eerr != nil {
		return eerr
	}
	return err
}

// nonNil is s, or an empty list for none (JSON [] as podman shows it).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func mode(m string) string {
	if m == "" {
		return "private"
	}
	return m
}

// seccompName is the profile as podman's inspect names it.
func seccompName(rec rootfs.Record) string {
	switch {
	case rec.Privileged || rec.Seccomp == "unconfined":
		return "unconfined"
	case rec.Seccomp == "":
		return "default"
	}
	return rec.Seccomp
}
