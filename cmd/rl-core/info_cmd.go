package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/config"
	"github.com/rlcontainers/rl/hostcheck"
	"github.com/rlcontainers/rl/rootfs/paths"
	"github.com/rlcontainers/rl/userns"
)

// infoReport is rl info: what rl found on this machine and what it chose,
// with why. --format json prints it as is.
type infoReport struct {
	Host       infoHost       `json:"host"`
	IDMappings infoIDMappings `json:"idMappings"`
	Store      infoStore      `json:"store"`
	Config     infoConfig     `json:"config"`
}

type infoHost struct {
	RlVersion string `json:"rlVersion"`
	hostcheck.Host
}

type infoIDMappings struct {
	Mode      string           `json:"mode"`
	Source    string           `json:"source"`
	Reason    string           `json:"reason,omitempty"`
	Fix       string           `json:"fix,omitempty"`
	UIDMap    []infoMapping    `json:"uidMap"`
	GIDMap    []infoMapping    `json:"gidMap"`
	Warnings  []string         `json:"warnings,omitempty"`
	NewUIDMap hostcheck.Helper `json:"newuidmap"`
	NewGIDMap hostcheck.Helper `json:"newgidmap"`
	// KeeperPid is the keeper whose user namespace this command is in
	// (userns/keeper.go), 0 when it made one of its own.
	KeeperPid int `json:"keeperPid"`
}

// infoMapping is one line of uid_map or gid_map.
type infoMapping struct {
	ContainerID uint32 `json:"containerID"`
	HostID      uint32 `json:"hostID"`
	Size        uint32 `json:"size"`
}

func infoMappings(ms []userns.Mapping) []infoMapping {
	out := []infoMapping{}
	for _, m := range ms {
		out = append(out, infoMapping(m))
	}
	return out
}

type infoStore struct {
	Driver        string   `json:"driver"`
	DriverReason  string   `json:"driverReason"`
	DriverOptions []string `json:"driverOptions"`
	Root          string   `json:"root"`
	RootReason    string   `json:"rootReason"`
	RootFS        string   `json:"rootFilesystem"`
	RunRoot       string   `json:"runRoot"`
	RunRootReason string   `json:"runRootReason"`
	DataDir       string   `json:"dataDir"`
	RunDir        string   `json:"runDir"`
}

type infoConfig struct {
	File   string            `json:"file"`
	Error  string            `json:"error,omitempty"`
	Values []infoConfigValue `json:"values"`
}

type infoConfigValue struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

func runInfo(c *cli.CLI, s *session.Session) error {
	if s.Plan == nil {
		return fmt.Errorf("rl info must be run through rl")
	}
	r := gatherInfo(c, s)
	if c.Info.Format == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printInfo(os.Stdout, r)
	return nil
}

func gatherInfo(c *cli.CLI, s *session.Session) infoReport {
	var r infoReport
	r.Host = infoHost{RlVersion: cli.Version, Host: hostcheck.Gather()}

	p := *s.Plan
	r.IDMappings = infoIDMappings{Mode: p.Mode, Source: p.Source, Reason: p.Reason, Fix: p.Fix,
		UIDMap: infoMappings(p.UIDs), GIDMap: infoMappings(p.GIDs), Warnings: p.Warnings,
		NewUIDMap: hostcheck.CheckHelper("newuidmap", p.NewUIDMap),
		NewGIDMap: hostcheck.CheckHelper("newgidmap", p.NewGIDMap)}
	if d, err := paths.Default(); err == nil {
		r.IDMappings.KeeperPid, _ = userns.KeeperPid(d.RunRoot)
	}

	st := infoStore{Driver: s.Driver.Name, DriverReason: s.Driver.Reason, DriverOptions: s.Driver.Options,
		Root: s.Paths.Root, RunRoot: s.Paths.RunRoot, RunRootReason: s.Paths.RunRootReason, RunDir: s.Paths.RunRoot}
	if st.DriverOptions == nil {
		st.DriverOptions = []string{}
	}
	st.RootFS, _ = hostcheck.FSType(s.Paths.Root)
	st.RootReason = "default: $XDG_DATA_HOME/rl/storage (~/.local/share/rl/storage)"
	if c.Root != "" {
		st.RootReason = "set by --root"
	}
	if def, err := paths.Default(); err == nil {
		st.DataDir = filepath.Dir(def.Root)
	}
	r.Store = st

	cfg, src, err := config.Load()
	r.Config.File = config.Path()
	if err != nil {
		r.Config.Error = err.Error()
	}
	// The global --storage-driver is the only rl.conf key rl info takes as
	// a flag: it wins over the file.
	if c.StorageDriver != "" && (src[config.KeyStorageDriver] == config.SourceDefault || c.StorageDriver != cfg.StorageDriver) {
		cfg.StorageDriver = c.StorageDriver
		src.Flag(config.KeyStorageDriver, "--storage-driver")
	}
	for _, k := range config.Keys {
		v := cfg.Get(k)
		if k == config.KeyStorageDriver && v == "" {
			v = "(probe)"
		}
		r.Config.Values = append(r.Config.Values, infoConfigValue{Key: k, Value: v, Source: src[k]})
	}
	return r
}

// printInfo prints r as podman info does: YAML-like sections.
func printInfo(w io.Writer, r infoReport) {
	h := r.Host
	fmt.Fprintf(w, "host:\n")
	fmt.Fprintf(w, "  rlVersion: %s\n  kernel: %s\n  distro: %s\n", h.RlVersion, h.Kernel, h.Distro)
	fmt.Fprintf(w, "  seccomp: %s", h.Seccomp.ModeName)
	if h.Seccomp.Mode == 2 {
		fmt.Fprintf(w, " (%d filters; likely %s)", h.Seccomp.Filters, h.Seccomp.LikelySource)
	}
	fmt.Fprintln(w)
	if h.Proc.Masked {
		fmt.Fprintf(w, "  procMasked: true (mounts over %s: a fresh proc mount is refused)\n", strings.Join(h.Proc.Paths, ", "))
	} else {
		fmt.Fprintf(w, "  procMasked: false\n")
	}
	cg := h.Cgroup
	fmt.Fprintf(w, "  cgroup:\n    version: %s\n", orNone(cg.Version))
	if cg.Version == "v2" {
		fmt.Fprintf(w, "    path: %s\n    controllers: %s\n    subtreeControl: %s\n    delegated: %t\n",
			cg.Path, orNone(strings.Join(cg.Controllers, " ")), orNone(strings.Join(cg.SubtreeControl, " ")), cg.Delegated)
	} else {
		fmt.Fprintf(w, "    delegated: false\n")
	}
	fmt.Fprintf(w, "  userNamespaceSysctls:\n")
	for _, s := range h.Sysctls {
		v := s.Value
		if !s.Present {
			v = "(not in this kernel)"
		} else if s.Blocks {
			v += " (blocks unprivileged user namespaces; fix: " + s.Fix + ")"
		}
		fmt.Fprintf(w, "    %s: %s\n", s.Name, v)
	}
	fmt.Fprintf(w, "  devices:\n")
	for _, d := range h.Devices {
		switch {
		case !d.Exists:
			fmt.Fprintf(w, "    %s: missing\n", d.Path)
		case d.Openable:
			fmt.Fprintf(w, "    %s: %s, openable\n", d.Path, d.Mode)
		default:
			fmt.Fprintf(w, "    %s: %s, not openable: %s\n", d.Path, d.Mode, d.Error)
		}
	}

	m := r.IDMappings
	fmt.Fprintf(w, "idMappings:\n  mode: %s\n  source: %s\n", m.Mode, m.Source)
	if m.Reason != "" {
		fmt.Fprintf(w, "  reason: %s\n  fix: %s\n", m.Reason, m.Fix)
	}
	for _, x := range m.UIDMap {
		fmt.Fprintf(w, "  uid: %d -> %d (%d)\n", x.ContainerID, x.HostID, x.Size)
	}
	for _, x := range m.GIDMap {
		fmt.Fprintf(w, "  gid: %d -> %d (%d)\n", x.ContainerID, x.HostID, x.Size)
	}
	for _, x := range m.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", x)
	}
	if m.KeeperPid > 0 {
		fmt.Fprintf(w, "  keeper: pid %d holds this user namespace between commands (rl system migrate stops it)\n", m.KeeperPid)
	} else {
		fmt.Fprintf(w, "  keeper: none (this command made a user namespace of its own)\n")
	}
	for _, hp := range []hostcheck.Helper{m.NewUIDMap, m.NewGIDMap} {
		switch {
		case !hp.Found:
			fmt.Fprintf(w, "  %s: missing (%s)\n", hp.Name, hp.Error)
		default:
			var how []string
			if hp.Setuid {
				how = append(how, "setuid root")
			}
			if hp.FileCaps != "" {
				how = append(how, "file caps "+hp.FileCaps)
			}
			if !hp.Usable {
				how = append(how, "NOT usable: "+hp.Error)
			}
			fmt.Fprintf(w, "  %s: %s (%s)\n", hp.Name, hp.Path, strings.Join(how, ", "))
		}
	}

	s := r.Store
	fmt.Fprintf(w, "store:\n  driver: %s\n  driverReason: %s\n", s.Driver, s.DriverReason)
	if len(s.DriverOptions) > 0 {
		fmt.Fprintf(w, "  driverOptions: %s\n", strings.Join(s.DriverOptions, ", "))
	}
	fmt.Fprintf(w, "  root: %s (%s; on %s)\n  runRoot: %s (%s)\n  dataDir: %s\n  runDir: %s\n",
		s.Root, s.RootReason, orNone(s.RootFS), s.RunRoot, s.RunRootReason, s.DataDir, s.RunDir)

	fmt.Fprintf(w, "config:\n  file: %s\n", orNone(r.Config.File))
	if r.Config.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Config.Error)
	}
	for _, v := range r.Config.Values {
		fmt.Fprintf(w, "  %s: %s (%s)\n", v.Key, v.Value, v.Source)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
