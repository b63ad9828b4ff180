// Package pull copies images into the store: from registries (short names
// resolved through registries.conf) and from docker-archive and oci-archive
// files. It is the only package that links the image library's copy
// pipeline, so that the binaries on the hot path of rl run start fast.
package pull

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/rlcontainers/rl/rootfs/paths"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	ociarchive "go.podman.io/image/v5/oci/archive"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"
)

// Options mirror podman pull's flags.
type Options struct {
	// TLSVerify: nil keeps registries.conf's choice.
	TLSVerify *bool
	// AuthFile overrides the auth.json search.
	AuthFile string
	// Progress receives progress bars (a terminal) or lines; nil is quiet.
	Progress io.Writer
}

// SystemContext builds the image library's context from the options. The
// standard per-user files (~/.config/containers/registries.conf,
// policy.json, auth.json) are found by the library itself because the
// parent put _CONTAINERS_ROOTLESS_UID in our environment.
func (o Options) SystemContext() *types.SystemContext {
	sys := &types.SystemContext{AuthFilePath: o.AuthFile}
	if o.AuthFile == "" && os.Getenv("XDG_RUNTIME_DIR") == "" {
		sys.AuthFilePath = defaultAuthFile()
	}
	if _, err := os.Stat("/var/tmp"); err != nil {
		// The library stages layers in /var/tmp, which minimal images
		// (rl nested in busybox) lack.
		sys.BigFilesTemporaryDir = os.TempDir()
	}
	if o.TLSVerify != nil {
		sys.DockerInsecureSkipTLSVerify = types.NewOptionalBool(!*o.TLSVerify)
	}
	return sys
}

// defaultAuthFile is the user's auth file when XDG_RUNTIME_DIR is unset.
// The library would then read /run/containers/$UID/auth.json with
// os.Getuid(), which is 0 in rl's user namespace: root's file (unreadable,
// failing every pull, or worse, readable). So rl picks the first file of the
// library's own search list that exists, with the host uid. Unlike the
// library, it reads that one file only.
func defaultAuthFile() string {
	home := os.Getenv("HOME")
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if cfg == "" {
		cfg = filepath.Join(home, ".config")
	}
	docker := os.Getenv("DOCKER_CONFIG")
	if docker == "" {
		docker = filepath.Join(home, ".docker")
	}
	first := fmt.Sprintf("/run/containers/%d/auth.json", paths.HostUID())
	own := filepath.Join(cfg, "containers", "auth.json")
	for _, p := range []string{first, own, filepath.Join(docker, "config.json")} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	// None exists: name the user's own (missing) file in ~/.config, so
	// the library reads no credentials rather than root's; not the one in
	// /run/containers, which root's podman leaves unreadable (0700): the
	// library fails on EACCES where it passes over a missing file.
	return own
}

// policyContext loads policy.json; a machine without one (no
// containers-common installed) gets the same accept-anything default the
// distributions ship.
func policyContext(sys *types.SystemContext) (*signature.PolicyContext, error) {
	policy, err := signature.DefaultPolicy(sys)
	if errors.Is(err, fs.ErrNotExist) {
		policy = &signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}}
	} else if err != nil {
		return nil, fmt.Errorf("reading policy.json: %w", err)
	}
	return signature.NewPolicyContext(policy)
}

// Pull copies name from a registry into the store, resolving short names
// through registries.conf (aliases, unqualified-search registries; docker.io
// when none are configured, as docker does). The error names every
// candidate tried.
func Pull(ctx context.Context, store storage.Store, name string, o Options) (*storage.Image, error) {
	sys := o.SystemContext()
	if name == "" || strings.ContainsAny(name, " \t\n") {
		return nil, fmt.Errorf("invalid image name %q", name)
	}
	if shortnames.IsShortName(name) {
		if usr, err := sysregistriesv2.UnqualifiedSearchRegistries(sys); err != nil {
			return nil, fmt.Errorf("reading registries.conf: %w", err)
		} else if len(usr) == 0 {
			sys.PodmanOnlyShortNamesIgnoreRegistriesConfAndForceDockerHub = true
		}
	}
	resolved, err := shortnames.Resolve(sys, name)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %w", name, err)
	}
	pc, err := policyContext(sys)
	if err != nil {
		return nil, err
	}
	defer pc.Destroy()

	var tried []string
	var cause error
	for _, cand := range resolved.PullCandidates {
		img, err := copyIn(ctx, store, pc, sys, docker.NewReference, cand.Value, o.Progress)
		if err == nil {
			_ = cand.Record()
			return img, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pulling %s: interrupted", cand.Value)
		}
		if errors.Is(err, ErrStalled) || storeFull(store, err) != nil {
			if full := storeFull(store, err); full != nil {
				err = full
			}
			return nil, fmt.Errorf("pulling %s: %w", cand.Value, err)
		}
		tried = append(tried, fmt.Sprintf("%s (%s)", cand.Value, oneLine(err)))
		if cause == nil {
			cause = explain(cand.Value, err)
		}
	}
	if cause != nil {
		return nil, fmt.Errorf("pulling %q: %w", name, cause)
	}
	return nil, fmt.Errorf("pulling %q: no registry had it; tried %s: check the name, or the registries in registries.conf", name, strings.Join(tried, ", "))
}

// storeFull names a full store as the cause of a failed copy: the layer
// unpacker (a child process) reports ENOSPC only as its exit status.
func storeFull(store storage.Store, err error) error {
	var st unix.Statfs_t
	full := errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "no space left on device")
	if !full && unix.Statfs(store.GraphRoot(), &st) == nil {
		full = uint64(st.Bavail)*uint64(st.Bsize) < 16<<20
	}
	if !full {
		return nil
	}
	return fmt.Errorf("no space left in the store (%s): free some space (rl rmi, rl rm), or give --root on a larger filesystem", store.GraphRoot())
}

// explain names the cause and the fix of a pull failure that is not "the
// registry does not have it": credentials, certificates, or anything else
// the registry answered; nil when the image is simply not there.
func explain(ref reference.Named, err error) error {
	host := reference.Domain(ref)
	var unauth docker.ErrUnauthorizedForCredentials
	var x509Unknown x509.UnknownAuthorityError
	var x509Host x509.HostnameError
	var x509Invalid x509.CertificateInvalidError
	msg := err.Error()
	switch {
	case errors.As(err, &unauth) || strings.Contains(msg, "authentication required") || strings.Contains(msg, "unauthorized"):
		return fmt.Errorf("authentication to %s failed (unauthorized: no or wrong credentials): log in with podman login %s, or give --authfile FILE", host, host)
	case errors.As(err, &x509Unknown) || errors.As(err, &x509Host) || errors.As(err, &x509Invalid) || strings.Contains(msg, "x509: "):
		return fmt.Errorf("the TLS certificate of %s is not trusted: put its CA in /etc/containers/certs.d/%s/ or ~/.config/containers/certs.d/%s/, or pass --tls-verify=false", host, host, host)
	case notFound(msg):
		return nil
	case strings.Contains(msg, "unpacking failed") || strings.Contains(msg, "adding layer"):
		return fmt.Errorf("a layer of %s cannot be unpacked (%s): the image is malformed or hostile; nothing of it is kept", ref, unpackCause(msg))
	}
	return fmt.Errorf("%s answered, but the download failed (%s): try again, or check the registry", host, oneLine(err))
}

// unpackCause is the unpacker's own words from a storage error ("output:
// ..."), or the whole message.
func unpackCause(msg string) string {
	if i := strings.LastIndex(msg, "output: "); i >= 0 {
		out := strings.TrimRight(msg[i+len("output: "):], ")")
		if out != "" {
			return out
		}
	}
	return oneLine(errors.New(msg))
}

// notFound: the registry (or every mirror) does not have the image.
func notFound(msg string) bool {
	for _, s := range []string{"manifest unknown", "name unknown", "not found", "no such host", "connection refused", "no route to host", "dial tcp"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	// An HTTP 404 ("404 Not Found", "StatusCode: 404"), not the digits of
	// a temporary file's name ("container_images_storage4240496287") or of
	// a digest ("sha256:d8bd798a25c404e69f...").
	return http404.MatchString(msg)
}

var http404 = regexp.MustCompile(`(^|[^0-9A-Za-z])404([^0-9A-Za-z]|$)`)

func copyIn(ctx context.Context, store storage.Store, pc *signature.PolicyContext, sys *types.SystemContext,
	newRef func(reference.Named) (types.ImageReference, error), named reference.Named, progress io.Writer) (*storage.Image, error) {
	src, err := newRef(named)
	if err != nil {
		return nil, err
	}
	return copyRef(ctx, store, pc, sys, src, named, progress)
}

func copyRef(ctx context.Context, store storage.Store, pc *signature.PolicyContext, sys *types.SystemContext,
	src types.ImageReference, named reference.Named, progress io.Writer) (*storage.Image, error) {
	id := ""
	if named == nil {
		// An unnamed image (an oci-archive without a ref.name) is stored
		// under its id, which is its config's digest, as podman does.
		img, err := src.NewImage(ctx, sys)
		if err != nil {
			return nil, err
		}
		id = img.ConfigInfo().Digest.Encoded()
		img.Close()
	}
	dest, err := istorage.Transport.NewStoreReference(store, named, id)
	if err != nil {
		return nil, err
	}
	before := layerIDs(store)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	events := make(chan types.ProgressProperties, 16)
	copied := make(chan struct{})
	go watchStall(cancel, events, copied, StallTimeout)
	_, err = copy.Image(ctx, pc, dest, src, &copy.Options{
		ReportWriter:     progress,
		SourceCtx:        sys,
		DestinationCtx:   sys,
		Progress:         events,
		ProgressInterval: time.Second,
	})
	close(copied)
	if err != nil {
		dropOrphanLayers(store, before)
	}
	if cause := context.Cause(ctx); errors.Is(cause, ErrStalled) {
		return nil, cause
	}
	if err != nil {
		return nil, err
	}
	img, err := istorage.Transport.GetStoreImage(store, dest)
	if err != nil {
		return nil, fmt.Errorf("finding the copied image: %w", err)
	}
	return img, nil
}

func layerIDs(store storage.Store) map[string]bool {
	ids := map[string]bool{}
	layers, _ := store.Layers()
	for _, l := range layers {
		ids[l.ID] = true
	}
	return ids
}

// dropOrphanLayers removes the layers a failed copy committed (the ones
// before it went wrong) that no image or container uses: a refused image
// leaves nothing behind. A concurrent pull of an image sharing those
// layers commits its image only after its own layers; at worst it finds a
// layer gone and fails, and a retry fetches it again.
func dropOrphanLayers(store storage.Store, before map[string]bool) {
	layers, err := store.Layers()
	if err != nil {
		return
	}
	used := map[string]bool{}
	if imgs, err := store.Images(); err == nil {
		for _, img := range imgs {
			used[img.TopLayer] = true
		}
	}
	if ctrs, err := store.Containers(); err == nil {
		for _, c := range ctrs {
			used[c.LayerID] = true
		}
	}
	// Parents of used layers are used too.
	parent := map[string]string{}
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	for id := range used {
		for p := parent[id]; p != "" && !used[p]; p = parent[p] {
			used[p] = true
		}
	}
	// Children first: a layer with a child cannot go.
	for changed := true; changed; {
		changed = false
		for _, l := range layers {
			if before[l.ID] || used[l.ID] {
				continue
			}
			if store.DeleteLayer(l.ID) == nil {
				before[l.ID] = true
				changed = true
			}
		}
	}
}

// StallTimeout is how long a blob download may make no progress before
// the pull gives up (a registry that stops sending mid-blob would otherwise
// hold rl forever: HTTP has no read deadline of its own).
var StallTimeout = 30 * time.Second

// ErrStalled is the cause of a pull given up for lack of progress.
var ErrStalled = errors.New("the registry stopped sending")

// watchStall cancels ctx when a blob being read makes no progress for
// timeout. It is armed only while a blob is read (from its first event to
// its done event), so time spent extracting a layer does not count.
// It keeps reading events until copied is closed, so the copy never
// blocks on a report.
func watchStall(cancel context.CancelCauseFunc, events <-chan types.ProgressProperties, copied <-chan struct{}, timeout time.Duration) {
	active := map[string]uint64{} // blob digest -> bytes read
	last := time.Now()
	tick := time.NewTicker(timeout / 10)
	defer tick.Stop()
	stalled := false
	for {
		select {
		case <-copied:
			return
		case ev := <-events:
			d := ev.Artifact.Digest.String()
			switch ev.Event {
			case types.ProgressEventNewArtifact:
				active[d] = 0
				last = time.Now()
			case types.ProgressEventRead:
				if ev.Offset > active[d] {
					active[d] = ev.Offset
					last = time.Now()
				}
			case types.ProgressEventDone, types.ProgressEventSkipped:
				delete(active, d)
				last = time.Now()
			}
		case <-tick.C:
			if !stalled && len(active) > 0 && time.Since(last) > timeout {
				stalled = true
				cancel(fmt.Errorf("%w: no data for %v while downloading a layer: check the registry or the network, and pull again", ErrStalled, timeout))
			}
		}
	}
}

// Load copies every image of a docker-archive or oci-archive file into the
// store and returns their names (or ids when untagged).
func Load(ctx context.Context, store storage.Store, file string, progress io.Writer) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", file, err)
	}
	f.Close()
	sys := &types.SystemContext{}
	pc, err := policyContext(sys)
	if err != nil {
		return nil, err
	}
	defer pc.Destroy()

	names, derr := loadDockerArchive(ctx, store, pc, sys, file, progress)
	if derr == nil {
		return names, nil
	}
	names, oerr := loadOCIArchive(ctx, store, pc, sys, file, progress)
	if oerr == nil {
		return names, nil
	}
	return nil, fmt.Errorf("loading %s: not a readable docker-archive (%s) nor oci-archive (%s): is the file complete?", file, oneLine(derr), oneLine(oerr))
}

func loadDockerArchive(ctx context.Context, store storage.Store, pc *signature.PolicyContext, sys *types.SystemContext, file string, progress io.Writer) ([]string, error) {
	r, err := dockerarchive.NewReader(sys, file)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	lists, err := r.List()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, refs := range lists {
		for _, ref := range refs {
			named := ref.DockerReference()
			img, err := copyRef(ctx, store, pc, sys, ref, named, progress)
			if err != nil {
				return names, err
			}
			if named != nil {
				names = append(names, named.String())
			} else {
				names = append(names, img.ID)
			}
		}
	}
	return names, nil
}

func loadOCIArchive(ctx context.Context, store storage.Store, pc *signature.PolicyContext, sys *types.SystemContext, file string, progress io.Writer) ([]string, error) {
	ref, err := ociarchive.NewReference(file, "")
	if err != nil {
		return nil, err
	}
	desc, err := ociarchive.LoadManifestDescriptorWithContext(sys, ref)
	if err != nil {
		return nil, err
	}
	var named reference.Named
	if n := desc.Annotations["org.opencontainers.image.ref.name"]; n != "" {
		if parsed, err := reference.ParseNormalizedNamed(n); err == nil {
			named = reference.TagNameOnly(parsed)
		} else if parsed, err := reference.ParseNormalizedNamed("localhost/" + n); err == nil {
			named = reference.TagNameOnly(parsed)
		}
	}
	img, err := copyRef(ctx, store, pc, sys, ref, named, progress)
	if err != nil {
		return nil, err
	}
	if named != nil {
		return []string{named.String()}, nil
	}
	return []string{img.ID}, nil
}

// oneLine keeps the first line of a (possibly multi-line) library error.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
