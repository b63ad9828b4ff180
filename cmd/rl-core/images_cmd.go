package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"go.podman.io/image/v5/docker/reference"
)

func runImages(all *cli.CLI, s *session.Session) error {
	c := &all.Images
	imgs, err := s.Store.Images()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
	if !c.Quiet {
		fmt.Fprintln(w, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	}
	for _, img := range imgs {
		if c.Quiet {
			fmt.Fprintln(w, img.ID[:12])
			continue
		}
		size, _ := s.Store.ImageSize(img.ID)
		names := img.Names
		if len(names) == 0 {
			names = []string{"<none>:<none>"}
		}
		for _, n := range names {
			repo, tag := n, "<none>"
			if named, err := reference.ParseNormalizedNamed(n); err == nil {
				repo = named.Name()
				if t, ok := named.(reference.Tagged); ok {
					tag = t.Tag()
				}
			} else if i := strings.LastIndex(n, ":"); i > 0 {
				repo, tag = n[:i], n[i+1:]
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", repo, tag, img.ID[:12], ago(img.Created), humanSize(size))
		}
	}
	return w.Flush()
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := time.Since(t)
	switch {
	case d < 2*time.Second:
		return "1 second ago"
	case d < time.Minute:
		return fmt.Sprintf("%d seconds ago", int(d.Seconds()))
	case d < 2*time.Minute:
		return "1 minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 2*time.Hour:
		return "1 hour ago"
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func humanSize(n int64) string {
	switch {
	case n < 0:
		return "unknown"
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1000)
	case n < 1000*1000*1000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.2f GB", float64(n)/1e9)
}
