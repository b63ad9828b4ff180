package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/netstack/netconf"
	"github.com/rlcontainers/rl/rootfs"
)

// psRow is one container as rl ps shows it; its fields are what --format
// templates name (podman's names).
type psRow struct {
	ID        string    `json:"Id"`
	Image     string    `json:"Image"`
	ImageID   string    `json:"ImageID"`
	Command   string    `json:"Command"`
	Created   time.Time `json:"Created"`
	CreatedAt string    `json:"CreatedAt"`
	Status    string    `json:"Status"`
	State     string    `json:"State"`
	ExitCode  int       `json:"ExitCode"`
	Pid       int       `json:"Pid"`
	Ports     string    `json:"Ports"`
	Names     string    `json:"Names"`

	fullCommand []string
}

// psJSON is podman ps --format json's shape: Names and Command are lists.
type psJSON struct {
	ID       string    `json:"Id"`
	Image    string    `json:"Image"`
	ImageID  string    `json:"ImageID"`
	Command  []string  `json:"Command"`
	Created  time.Time `json:"Created"`
	Status   string    `json:"Status"`
	State    string    `json:"State"`
	ExitCode int       `json:"ExitCode"`
	Pid      int       `json:"Pid"`
	Ports    []string  `json:"Ports"`
	Names    []string  `json:"Names"`
}

func (r psRow) json() psJSON {
	ports := []string{}
	if r.Ports != "" {
		ports = strings.Split(r.Ports, ", ")
	}
	return psJSON{
		ID: r.ID, Image: r.Image, ImageID: r.ImageID, Command: r.fullCommand, Created: r.Created,
		Status: r.Status, State: r.State, ExitCode: r.ExitCode, Pid: r.Pid, Ports: ports, Names: []string{r.Names},
	}
}

func runPs(all *cli.CLI, s *session.Session) error {
	c := &all.Ps
	list, err := s.Store.Containers()
	if err != nil {
		return err
	}
	var rows []psRow
	for _, ctr := range list {
		rec := rootfs.ReadRecord(&ctr)
		st := rootfs.ReadState(s.Store, ctr.ID)
		if rec.AutoRm && (st.SupervisorGone || st.Status == "created" && rootfs.CreatorGone(s.Store, ctr.ID)) && removeOrphan(s, ctr.ID) {
			continue
		}
		if !c.All && st.Status != "running" {
			continue
		}
		id := ctr.ID
		cmd := strings.Join(rec.Command, " ")
		if !c.NoTrunc {
			id = id[:12]
			if len(cmd) > 30 {
				cmd = cmd[:27] + "..."
			}
		}
		rows = append(rows, psRow{
			ID: id, Image: rec.Image, ImageID: rec.ImageID, Command: cmd,
			Created: ctr.Created, CreatedAt: cli.Ago(ctr.Created), Status: status(st), State: st.Status,
			ExitCode: st.ExitCode, Pid: st.Pid, Names: rec.Name, Ports: portsSummary(st.Ports),
			fullCommand: rec.Command,
		})
	}
	switch {
	case c.Quiet:
		for _, r := range rows {
			fmt.Println(r.ID)
		}
		return nil
	case c.Format == "json":
		out := []psJSON{}
		for _, r := range rows {
			out = append(out, r.json())
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "    ")
		return enc.Encode(out)
	case c.Format != "":
		return printTemplate(c.Format, rows, false)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Image, r.Command, r.CreatedAt, r.Status, r.Ports, r.Names)
	}
	return w.Flush()
}

// removeOrphan removes an --rm container whose supervisor is gone without
// removing it (killed: a foreground rl run is its supervisor, and may be
// killed before it started the container too), as --rm asked; it says
// whether it did. Not when another rl holds the container (rl rm of it, or
// it runs after all).
func removeOrphan(s *session.Session, id string) bool {
	_, err := rootfs.RemoveContainer(s.Store, id, false)
	return err == nil
}

// printTemplate prints each item with a Go template, one per line, as
// podman's --format does ("table" prefixes are accepted and dropped).
// With jsonNames the template sees the item as its JSON (inspect's
// {{.State.Pid}}, {{.Id}}), as docker inspect does.
func printTemplate[T any](format string, items []T, jsonNames bool) error {
	format = strings.TrimPrefix(strings.TrimPrefix(format, "table "), "table")
	tmpl, err := template.New("format").Funcs(template.FuncMap{
		"json": func(v any) (string, error) { b, err := json.Marshal(v); return string(b), err },
		"join": strings.Join, "upper": strings.ToUpper, "lower": strings.ToLower,
	}).Parse(format)
	if err != nil {
		return fmt.Errorf("invalid --format template: %w", err)
	}
	for _, it := range items {
		var data any = it
		if jsonNames {
			raw, err := json.Marshal(it)
			if err != nil {
				return err
			}
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				return err
			}
			data = m
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, data); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Println(strings.TrimSuffix(b.String(), "\n"))
	}
	return nil
}

func status(st rootfs.State) string {
	switch st.Status {
	case "running":
		return "Up " + strings.TrimSuffix(cli.Ago(st.StartedAt), " ago")
	case "exited":
		if st.ExitCode < 0 {
			return "Exited (unknown)"
		}
		return fmt.Sprintf("Exited (%d) %s", st.ExitCode, cli.Ago(st.FinishedAt))
	}
	return "Created"
}

// portsSummary is rl ps's PORTS: the published ports by container port,
// a run of consecutive ports published alike as one range, as docker and
// podman show them ("0.0.0.0:8000-8002->80-82/tcp").
func portsSummary(ports []string) string {
	ms := published(ports)
	// Alike ones together, in port order, to find the runs.
	slices.SortFunc(ms, func(a, b netconf.PortMapping) int {
		return cmp.Or(strings.Compare(a.Proto, b.Proto), a.HostAddr().Compare(b.HostAddr()), cmp.Compare(a.GuestPort, b.GuestPort))
	})
	type entry struct {
		first netconf.PortMapping
		s     string
	}
	var out []entry
	for i := 0; i < len(ms); {
		j := i
		for j+1 < len(ms) && ms[j+1].Proto == ms[i].Proto && ms[j+1].HostAddr() == ms[i].HostAddr() &&
			ms[j+1].GuestPort == ms[j].GuestPort+1 && ms[j+1].HostPort == ms[j].HostPort+1 {
			j++
		}
		e := entry{ms[i], ms[i].String()}
		if j > i {
			e.s = fmt.Sprintf("%s-%d->%d-%d/%s", ms[i].Host(), ms[j].HostPort, ms[i].GuestPort, ms[j].GuestPort, ms[i].Proto)
		}
		out = append(out, e)
		i = j + 1
	}
	slices.SortStableFunc(out, func(a, b entry) int { return cmp.Compare(a.first.GuestPort, b.first.GuestPort) })
	var ss []string
	for _, e := range out {
		ss = append(ss, e.s)
	}
	return strings.Join(ss, ", ")
}
