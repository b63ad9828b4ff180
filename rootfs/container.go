package rootfs

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/ioutils"
	"golang.org/x/sys/unix"
)

// Record is what rl keeps about a container in the store's metadata.
type Record struct {
	Name     string    `json:"name"`
	Image    string    `json:"image"` // as the user named it
	ImageID  string    `json:"imageId"`
	Command  []string  `json:"command"`
	Created  time.Time `json:"created"`
	Hostname string    `json:"hostname"`
	AutoRm   bool      `json:"autoRemove,omitempty"`
}

// State is a container's run state, kept in its directory in the store so
// it survives the run dir (`rl ps -a` after a reboot).
type State struct {
	Status     string    `json:"status"` // created, running, exited
	Pid        int       `json:"pid,omitempty"`
	ExitCode   int       `json:"exitCode"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

// ImageConfig reads an image's OCI config (Env, Entrypoint, Cmd, ...).
func ImageConfig(ctx context.Context, store storage.Store, img *storage.Image) (*imgspecv1.Image, error) {
	ref, err := istorage.Transport.NewStoreReference(store, nil, img.ID)
	if err != nil {
		return nil, err
	}
	image, err := ref.NewImage(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", img.ID[:12], err)
	}
	defer image.Close()
	cfg, err := image.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the config of image %s: %w", img.ID[:12], err)
	}
	return cfg, nil
}

// CreateContainer creates the container's record and its writable layer on
// top of the image.
func CreateContainer(store storage.Store, img *storage.Image, rec Record) (*storage.Container, error) {
	if rec.Name == "" {
		rec.Name = generateName(store)
	}
	meta, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	// An --rm container is volatile, as podman makes it: its records skip
	// fsync and its overlay mounts with "volatile", so unmounting does not
	// syncfs the upper dir (13 ms tails under I/O).
	c, err := store.CreateContainer("", []string{rec.Name}, img.ID, "", string(meta), &storage.ContainerOptions{Volatile: rec.AutoRm})
	if errors.Is(err, storage.ErrDuplicateName) {
		return nil, fmt.Errorf("the container name %q is already in use: choose another --name or remove that container (rl rm %s)", rec.Name, rec.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the container: %w", err)
	}
	return c, nil
}

// ReadRecord decodes a container's record.
func ReadRecord(c *storage.Container) Record {
	var r Record
	_ = json.Unmarshal([]byte(c.Metadata), &r)
	if r.Name == "" && len(c.Names) > 0 {
		r.Name = c.Names[0]
	}
	return r
}

func statePath(store storage.Store, id string) (string, error) {
	dir, err := store.ContainerDirectory(id)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "state.json"), nil
}

// WriteState replaces the container's state atomically.
func WriteState(store storage.Store, id string, st State) error {
	p, err := statePath(store, id)
	if err != nil {
		return err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return ioutils.AtomicWriteFileWithOpts(p, b, 0o600, &ioutils.AtomicFileWriterOptions{NoSync: true})
}

// ReadState reads the container's state; a container that was never
// started is "created". A "running" container whose process is gone (its
// supervisor was killed, or the machine rebooted) reads as exited.
func ReadState(store storage.Store, id string) State {
	st := State{Status: "created"}
	p, err := statePath(store, id)
	if err != nil {
		return st
	}
	if b, err := os.ReadFile(p); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	if st.Status == "running" && !alive(st.Pid, st.StartedAt) {
		st.Status = "exited"
		st.ExitCode = -1
	}
	return st
}

// alive reports whether pid still is the process started at startedAt
// (pids are reused).
func alive(pid int, startedAt time.Time) bool {
	if pid <= 0 {
		return false
	}
	if err := unix.Kill(pid, 0); err != nil && !errors.Is(err, unix.EPERM) {
		return false
	}
	fi, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	if err != nil {
		return false
	}
	// /proc/PID appears when the process starts; allow for clock granularity.
	return !fi.ModTime().After(startedAt.Add(2 * time.Second))
}

// LookupContainer finds a container by name, full id or unique id prefix.
func LookupContainer(store storage.Store, ref string) (*storage.Container, error) {
	if ref == "" {
		return nil, errors.New("no container named: give a name or id")
	}
	if c, err := store.Container(ref); err == nil {
		return c, nil
	}
	all, err := store.Containers()
	if err != nil {
		return nil, err
	}
	var found []*storage.Container
	for i := range all {
		if strings.HasPrefix(all[i].ID, ref) {
			found = append(found, &all[i])
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no such container %q: see rl ps -a", ref)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("container id prefix %q is ambiguous (%d matches): give more characters", ref, len(found))
}

var (
	adjectives = []string{"brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty", "proud", "quiet", "rapid", "sharp", "tender", "vivid", "witty", "zen", "bold"}
	nouns      = []string{"babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "kepler", "lovelace", "meitner", "newton", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "volta", "wiles", "yonath"}
)

// generateName makes a docker-style name that is not taken yet.
func generateName(store storage.Store) string {
	pick := func(list []string) string {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
		return list[n.Int64()]
	}
	for i := 0; ; i++ {
		name := pick(adjectives) + "_" + pick(nouns)
		if i > 10 {
			n, _ := rand.Int(rand.Reader, big.NewInt(1000))
			name = fmt.Sprintf("%s%d", name, n.Int64())
		}
		if _, err := store.Container(name); err != nil {
			return name
		}
	}
}

// RemoveContainer deletes a container (by name, id or prefix) and its
// layer, and returns its id. A running one is refused unless force, which
// kills it first.
func RemoveContainer(store storage.Store, ref string, force bool) (string, error) {
	c, err := LookupContainer(store, ref)
	if err != nil {
		return "", err
	}
	if st := ReadState(store, c.ID); st.Status == "running" {
		if !force {
			return "", fmt.Errorf("container %s is running: stop it first, or use rl rm -f", ref)
		}
		_ = unix.Kill(st.Pid, unix.SIGKILL)
	}
	if _, err := store.Unmount(c.ID, true); err != nil {
		return "", fmt.Errorf("unmounting %s: %w", ref, err)
	}
	if err := store.DeleteContainer(c.ID); err != nil {
		return "", fmt.Errorf("removing %s: %w", ref, err)
	}
	return c.ID, nil
}
