package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

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
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", repo, tag, img.ID[:12], cli.Ago(img.Created), humanSize(size))
		}
	}
	return w.Flush()
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
