package rootfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.podman.io/storage"
	"golang.org/x/sys/unix"
)

// CheckOptions are rl system check's flags (podman's).
type CheckOptions struct {
	Quick  bool          // skip reading every layer's contents
	Repair bool          // remove what is damaged
	Force  bool          // with Repair: also remove damaged containers
	MaxAge time.Duration // unreferenced layers older than this are damage (0: 24h)
	// RunRoot is checked for control directories of containers that no
	// longer run.
	RunRoot string
}

// Problem is one thing found wrong.
type Problem struct {
	Kind, ID, What string
	Repaired       bool
}

// Check looks the store over with containers/storage's own check (layers
// whose contents no longer match their digests, unreferenced layers left by
// an interrupted pull, images and containers missing their layers or data)
// and rl's (run-dir entries of containers that no longer run, records that
// say running with no supervisor left), and repairs when asked.
func Check(store storage.Store, o CheckOptions) ([]Problem, error) {
	opts := storage.CheckEverything()
	if o.Quick {
		opts = storage.CheckMost()
	}
	age := o.MaxAge
	if age == 0 {
		age = 24 * time.Hour
	}
	opts.LayerUnreferencedMaximumAge = &age
	report, err := store.Check(opts)
	if err != nil {
		return nil, fmt.Errorf("checking the store: %w", err)
	}
	var out []Problem
	add := func(kind string, m map[string][]error) {
		for id, errs := range m {
			for _, e := range errs {
				out = append(out, Problem{Kind: kind, ID: id, What: e.Error()})
			}
		}
	}
	add("layer", report.Layers)
	add("layer", report.ROLayers)
	add("image", report.Images)
	add("image", report.ROImages)
	add("container", report.Containers)
	if o.Repair && len(out) > 0 {
		errs := store.Repair(report, &storage.RepairOptions{RemoveContainers: o.Force})
		if len(errs) == 0 {
			for i := range out {
				out[i].Repaired = o.Force || out[i].Kind != "container"
			}
		} else {
			return out, fmt.Errorf("repairing the store: %v", errs)
		}
	}
	out = append(out, checkRunDir(store, o)...)
	if s, ok := store.(*Store); ok {
		left, err := s.checkLeftovers(o.Repair)
		if err != nil {
			return out, err
		}
		out = append(out, left...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind+out[i].ID < out[j].Kind+out[j].ID })
	return out, nil
}

// isShortID says whether name is a container's short id (12 lowercase hex
// digits), the name of its control directory.
func isShortID(name string) bool {
	return len(name) == 12 && strings.Trim(name, "0123456789abcdef") == ""
}

// checkRunDir finds run-dir entries (control sockets) of containers that
// do not run, and records left "running" by a supervisor that died.
func checkRunDir(store storage.Store, o CheckOptions) []Problem {
	var out []Problem
	dir := filepath.Join(o.RunRoot, "rl")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		// Control directories are named by a container's short id; the
		// rest is the run dir's own (names/, the store record, caches).
		if !e.IsDir() || !isShortID(e.Name()) {
			continue
		}
		// A supervisor that answers runs its container, whichever store
		// it belongs to (stores with another --root share the run dir).
		if answers(filepath.Join(dir, e.Name(), "ctl.sock")) || inUse(store, filepath.Join(dir, e.Name())) {
			continue
		}
		p := Problem{Kind: "run-dir", ID: e.Name(), What: "control directory of a container that does not run"}
		if o.Repair {
			p.Repaired = os.RemoveAll(filepath.Join(dir, e.Name())) == nil
		}
		out = append(out, p)
	}
	if names, err := os.ReadDir(filepath.Join(dir, "names")); err == nil {
		for _, n := range names {
			link := filepath.Join(dir, "names", n.Name())
			if _, err := os.Stat(link); err != nil {
				p := Problem{Kind: "run-dir", ID: n.Name(), What: "name of a container that does not run"}
				if o.Repair {
					p.Repaired = os.Remove(link) == nil
				}
				out = append(out, p)
			}
		}
	}
	containers, _ := store.Containers()
	for _, c := range containers {
		p, err := statePath(store, c.ID)
		if err != nil {
			continue
		}
		raw := State{}
		if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &raw) == nil && raw.Status == "running" &&
			ReadState(store, c.ID).Status != "running" {
			pr := Problem{Kind: "container", ID: c.ID, What: "recorded as running, but its supervisor is gone (exit code unknown)"}
			if o.Repair {
				pr.Repaired = WriteState(store, c.ID, ReadState(store, c.ID)) == nil
			}
			out = append(out, pr)
		}
	}
	return out
}

// inUse says whether the container of the control directory ctl (named by
// its short id) is held by an rl process: one starting it, before its
// socket listens, or ending it, after the socket is closed and before the
// directory is removed (its supervisor holds the container's lock from
// before it makes the directory to after it removes it). So a directory
// that outlives a free lock, or its container, is gone by the time we look
// again, unless it is stale.
func inUse(store storage.Store, ctl string) bool {
	if c, err := LookupContainer(store, filepath.Base(ctl)); err == nil {
		f, err := Lock(store, c.ID, false)
		if errors.Is(err, ErrLocked) {
			return true
		}
		if err == nil {
			f.Close()
		}
	}
	_, err := os.Stat(ctl)
	return err != nil
}

// answers reports whether a control socket accepts a connection.
func answers(socket string) bool {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrUnix{Name: socket}) == nil
}

// checkLeftovers finds what killed rl processes left of --rm containers
// being made or deleted (which only the next --rm container's creation
// removes otherwise), under the lock that creation holds.
func (s *Store) checkLeftovers(repair bool) ([]Problem, error) {
	if _, err := os.Stat(s.rm); err != nil {
		return nil, nil // no --rm container was ever made
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	_, gone := s.scan()
	var out []Problem
	for _, g := range s.leftovers(gone) {
		what := "directory of an --rm container whose deletion was interrupted"
		if strings.HasPrefix(g, newDir) {
			what = "directory of an --rm container whose creation was interrupted"
		}
		p := Problem{Kind: "container", ID: leftoverID(g), What: what}
		if repair {
			p.Repaired = s.removeLeftover(g) == nil
		}
		out = append(out, p)
	}
	return out, nil
}
