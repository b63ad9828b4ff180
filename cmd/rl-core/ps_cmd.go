package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/rootfs"
)

func runPs(all *cli.CLI, s *session.Session) error {
	c := &all.Ps
	list, err := s.Store.Containers()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
	if !c.Quiet {
		fmt.Fprintln(w, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAMES")
	}
	for _, ctr := range list {
		rec := rootfs.ReadRecord(&ctr)
		st := rootfs.ReadState(s.Store, ctr.ID)
		if !c.All && st.Status != "running" {
			continue
		}
		if c.Quiet {
			fmt.Fprintln(w, ctr.ID[:12])
			continue
		}
		cmd := strings.Join(rec.Command, " ")
		if len(cmd) > 30 {
			cmd = cmd[:27] + "..."
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", ctr.ID[:12], rec.Image, cmd, ago(ctr.Created), status(st), rec.Name)
	}
	return w.Flush()
}

func status(st rootfs.State) string {
	switch st.Status {
	case "running":
		return "Up " + strings.TrimSuffix(ago(st.StartedAt), " ago")
	case "exited":
		if st.ExitCode < 0 {
			return "Exited (unknown)"
		}
		return fmt.Sprintf("Exited (%d) %s", st.ExitCode, ago(st.FinishedAt))
	}
	return "Created"
}
