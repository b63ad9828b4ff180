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

	"github.com/moby/sys/mountinfo"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rlcontainers/rl/container/ctl"
	"github.com/rlcontainers/rl/rootfs/mounts"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"
)

// Record is what rl keeps about a container in the store's metadata:
// everything needed to start it again (rl start) and to show it.
type Record struct {
	Name     string    `json:"name"`
	Image    string    `json:"image"` // as the user named it
	ImageID  string    `json:"imageId"`
	Command  []string  `json:"command"` // entrypoint + cmd, resolved
	Env      []string  `json:"env"`     // the image's, then the user's
	Workdir  string    `json:"workdir,omitempty"`
	User     string    `json:"user,omitempty"`
	Hostname string    `json:"hostname"`
	Created  time.Time `json:"created"`

	Volumes     []mounts.Volume `json:"volumes,omitempty"`
	Tmpfs       []mounts.Tmpfs  `json:"tmpfs,omitempty"`
	ReadOnly    bool            `json:"readOnly,omitempty"`
	TTY         bool            `json:"tty,omitempty"`
	Interactive bool            `json:"interactive,omitempty"`
	AutoRm      bool            `json:"autoRemove,omitempty"`
	Init        bool            `json:"init,omitempty"`
	StopSignal  int             `json:"stopSignal,omitempty"` // default SIGTERM
	StopTimeout int             `json:"stopTimeout,omitempty"`
	// Namespaces maps net, pid, ipc, uts, cgroup to "private" (default),
	// "host", "shareable" (ipc) or "container:ID".
	Namespaces map[string]string `json:"namespaces,omitempty"`
	UserNS     string            `json:"userns,omitempty"` // "" or keep-id
	// Network: -p specs as given, -P, the image's EXPOSE, --dns.
	Ports        []string `json:"ports,omitempty"`
	PublishAll   bool     `json:"publishAll,omitempty"`
	ExposedPorts []string `json:"exposedPorts,omitempty"`
	DNS          []string `json:"dns,omitempty"`
	AddHosts     []string `json:"addHosts,omitempty"` // --add-host NAME[;NAME...]:IP
	NoHosts      bool     `json:"noHosts,omitempty"`  // --no-hosts: the image's /etc/hosts stays
	DNSSearch    []string `json:"dnsSearch,omitempty"`
	DNSOptions   []string `json:"dnsOptions,omitempty"`
	// Security: the capabilities the workload keeps, no_new_privs, and
	// the paths not masked (unmask, or all with privileged).
	Caps       []string `json:"caps"`
	NoNewPrivs bool     `json:"noNewPrivileges,omitempty"`
	Privileged bool     `json:"privileged,omitempty"`
	Unmask     []string `json:"unmask,omitempty"`
	// Seccomp: "" moby's default profile, "unconfined", or a profile file.
	Seccomp string `json:"seccomp,omitempty"`
}

// ImageConfig reads an image's OCI config: what rl run takes from it (Env,
// Entrypoint, Cmd, WorkingDir, User, ExposedPorts, StopSignal) at least.
func ImageConfig(ctx context.Context, store storage.Store, img *storage.Image) (*imgspecv1.Image, error) {
	if cfg, ok := storedConfig(store, img); ok {
		return cfg, nil
	}
	if Lib.Config == nil {
		return nil, errNoLibrary
	}
	return Lib.Config(ctx, store, img)
}

// Manifest media types storedConfig reads (the image library's
// manifest.DockerV2Schema2MediaType and imgspecv1's).
const (
	dockerSchema2Manifest = "application/vnd.docker.distribution.manifest.v2+json"
	dockerSchema2Config   = "application/vnd.docker.container.image.v1+json"
)

// storedConfig reads the config of an OCI or docker schema2 image straight
// from the store: the manifest the image was committed with
// (storage.ImageDigestBigDataKey) names the config, which is kept under its
// digest. For these two formats that is all the image library's OCIConfig
// does (one json.Unmarshal of the config blob), without opening an image
// source, which also sums its layers' sizes (~0.6 ms of rl run's start).
// Only a manifest that says which of the two it is (its mediaType, and its
// config's) is read here; anything else (schema1, an artifact, a manifest
// without its media type, a digest that does not match) is the library's
// (false).
func storedConfig(store storage.Store, img *storage.Image) (*imgspecv1.Image, bool) {
	mb, err := store.ImageBigData(img.ID, storage.ImageDigestBigDataKey)
	if err != nil {
		return nil, false
	}
	var m struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		Config        imgspecv1.Descriptor `json:"config"`
	}
	if err := json.Unmarshal(mb, &m); err != nil || m.SchemaVersion != 2 {
		return nil, false
	}
	switch {
	case m.MediaType == imgspecv1.MediaTypeImageManifest && m.Config.MediaType == imgspecv1.MediaTypeImageConfig:
	case m.MediaType == dockerSchema2Manifest && m.Config.MediaType == dockerSchema2Config:
	default:
		return nil, false
	}
	d := m.Config.Digest
	if d.Validate() != nil {
		return nil, false
	}
	cb, err := store.ImageBigData(img.ID, d.String())
	if err != nil || d.Algorithm().FromBytes(cb) != d {
		return nil, false
	}
	// Only the fields rl run reads: encoding/json's first use of the whole
	// imgspecv1.Image (history, rootfs, platform, times) cost ~0.1 ms more.
	var cfg struct {
		Config struct {
			User                   string
			ExposedPorts           map[string]struct{}
			Env, Entrypoint, Cmd   []string
			WorkingDir, StopSignal string
		} `json:"config"`
	}
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return nil, false
	}
	c := cfg.Config
	return &imgspecv1.Image{Config: imgspecv1.ImageConfig{User: c.User, ExposedPorts: c.ExposedPorts,
		Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir, StopSignal: c.StopSignal}}, true
}

// CreateContainer creates the container's record and its writable layer on
// top of the image.
func CreateContainer(store storage.Store, img *storage.Image, rec Record) (*storage.Container, error) {
	generated := rec.Name == ""
	for try := 0; ; try++ {
		if generated {
			rec.Name = generateName(store)
		}
		meta, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		// An --rm container is volatile, as podman makes it: its records
		// skip fsync and its overlay mounts with "volatile", so unmounting
		// does not syncfs the upper dir (13 ms tails under I/O).
		c, err := store.CreateContainer("", []string{rec.Name}, img.ID, "", string(meta), &storage.ContainerOptions{Volatile: rec.AutoRm})
		if errors.Is(err, storage.ErrDuplicateName) {
			if generated && try < 10 {
				continue // another rl took the same generated name meanwhile
			}
			return nil, fmt.Errorf("the container name %q is already in use: choose another --name or remove that container (rl rm %s)", rec.Name, rec.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("creating the container: %w", err)
		}
		return c, nil
	}
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
// kills the workload and waits for its supervisor to let go of it.
func RemoveContainer(store storage.Store, ref string, force bool) (string, error) {
	c, err := LookupContainer(store, ref)
	if err != nil {
		return "", err
	}
	lock, err := Lock(store, c.ID, false)
	if errors.Is(err, ErrLocked) {
		if !force {
			return "", fmt.Errorf("container %s is running: stop it first (rl stop %s), or use rl rm -f", ref, ref)
		}
		if st := ReadState(store, c.ID); st.Pid > 0 {
			_ = unix.Kill(st.Pid, unix.SIGKILL)
		}
		lock, err = Lock(store, c.ID, true)
		if gone(store, c.ID) {
			// An --rm one: its supervisor removed it meanwhile.
			if lock != nil {
				lock.Close()
			}
			return c.ID, nil
		}
	}
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := UnmountContainer(store, c.ID); err != nil {
		return "", fmt.Errorf("unmounting %s: %w", ref, err)
	}
	// A supervisor that was killed left its control directory (one that
	// exits removes it before it lets go of the lock we hold): in the run
	// dir its state names, or, killed before it recorded a start, the
	// store's.
	runRoots := []string{store.RunRoot()}
	if st := ReadState(store, c.ID); st.RunRoot != "" && st.RunRoot != runRoots[0] {
		runRoots = append(runRoots, st.RunRoot)
	}
	if err := store.DeleteContainer(c.ID); err != nil && !errors.Is(err, storage.ErrContainerUnknown) {
		return "", fmt.Errorf("removing %s: %w", ref, err)
	}
	name := ""
	if len(c.Names) > 0 {
		name = c.Names[0]
	}
	for _, dir := range runRoots {
		ctl.Unregister(dir, c.ID, name)
	}
	return c.ID, nil
}

// gone reports whether the container id is no longer in the store.
func gone(store storage.Store, id string) bool {
	_, err := store.Container(id)
	return errors.Is(err, storage.ErrContainerUnknown)
}

// DeleteContainer deletes the container id and its layer, as the store
// does, clearing its mount point of strays if that is what stops it (see
// clearStaleMountpoint): an --rm container's supervisor deletes it so.
func DeleteContainer(store storage.Store, id string) error {
	return clearingStrays(store, id, func() error { return store.DeleteContainer(id) })
}

// UnmountContainer unmounts the container id's rootfs, as the store does,
// clearing its mount point of strays if that is what stops it: a kept
// container's supervisor unmounts it so when the workload exits.
func UnmountContainer(store storage.Store, id string) error {
	return clearingStrays(store, id, func() error {
		_, err := store.Unmount(id, true)
		return err
	})
}

// clearingStrays runs op, and once more after clearStaleMountpoint when it
// failed on a mount point that is not empty.
func clearingStrays(store storage.Store, id string, op func() error) error {
	err := op()
	if errors.Is(err, unix.ENOTEMPTY) {
		if c, cerr := store.Container(id); cerr == nil && clearStaleMountpoint(store, c.LayerID) == nil {
			err = op()
		}
	}
	return err
}

// clearStaleMountpoint empties the merged directory of an overlay layer
// that is not mounted here. Unmounting replaces that directory with an
// empty one, and the storage library refuses when it is not empty, so a
// container whose mount point got entries while nothing was mounted on it
// (they can only be strays: the container's files are in its upper
// directory) could not be removed at all. A mount point that is mounted in
// this process's namespace (rl-core's own: a container's rootfs is mounted
// only in its supervisor's) is left alone.
func clearStaleMountpoint(store storage.Store, layerID string) error {
	if store.GraphDriverName() != "overlay" {
		return errors.New("not overlay")
	}
	merged := filepath.Join(store.GraphRoot(), "overlay", layerID, "merged")
	if mounted, err := mountinfo.Mounted(merged); err != nil || mounted {
		return fmt.Errorf("%s is mounted (or cannot be told): %v", merged, err)
	}
	entries, err := os.ReadDir(merged)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(merged, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
