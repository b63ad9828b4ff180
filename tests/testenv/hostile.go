package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file builds what the hostile-input tests attack rl with: images whose
// layers and configs a malicious publisher wrote (BuildHostile), and a small
// registry that misbehaves on purpose (StartHostileRegistry).

// LayerEntry is one tar entry of a hostile layer, written exactly as given:
// the name is not cleaned ("../../x", "/tmp/x" and ".wh.." go in verbatim).
type LayerEntry struct {
	Name string
	// Type is the tar type flag; 0 means a regular file when Body is set,
	// a symlink when Link is set, a directory otherwise.
	Type     byte
	Mode     int64
	UID, GID int
	Body     []byte
	// Link is the target of a symlink or a hardlink.
	Link         string
	Major, Minor int64
}

// HostileConfig is the part of an image's config the attacks set.
type HostileConfig struct {
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	Env        []string `json:"Env,omitempty"`
	User       string   `json:"User,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
	// ExposedPorts is the image's EXPOSE ("80/tcp": {}).
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
}

// BuildHostile writes an OCI layout to dir (replacing it), tagged
// BusyboxTag: the busybox layer of BuildBusybox first (so the image can run
// a shell), then one layer per element of layers. An empty Env gets
// busybox's PATH.
func BuildHostile(dir string, layers [][]LayerEntry, cfg HostileConfig) (string, error) {
	base, err := busyboxEntries()
	if err != nil {
		return "", err
	}
	if len(cfg.Env) == 0 {
		cfg.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	fills := []func(*tar.Writer) error{func(tw *tar.Writer) error { return writeEntries(tw, base) }}
	for _, l := range layers {
		l := l
		fills = append(fills, func(tw *tar.Writer) error { return writeRawEntries(tw, l) })
	}
	createdBy := make([]string, len(fills))
	for i := range fills {
		createdBy[i] = fmt.Sprintf("rl testenv: hostile layer %d", i)
	}
	return writeLayersLayout(dir, cfg, createdBy, fills)
}

func busyboxEntries() ([]entry, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w (install Debian's busybox-static)", err)
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", BusyboxPath, err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)
	return busyboxLayer(bin, applets)
}

func writeRawEntries(tw *tar.Writer, es []LayerEntry) error {
	for _, e := range es {
		h := &tar.Header{
			Name:     e.Name,
			Mode:     e.Mode,
			Uid:      e.UID,
			Gid:      e.GID,
			ModTime:  epoch,
			Format:   tar.FormatPAX,
			Typeflag: e.Type,
			Linkname: e.Link,
			Devmajor: e.Major,
			Devminor: e.Minor,
		}
		if h.Typeflag == 0 {
			switch {
			case e.Body != nil:
				h.Typeflag = tar.TypeReg
			case e.Link != "":
				h.Typeflag = tar.TypeSymlink
			default:
				h.Typeflag = tar.TypeDir
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar %q: %w", e.Name, err)
		}
		if h.Size > 0 {
			if _, err := tw.Write(e.Body); err != nil {
				return fmt.Errorf("tar %q: %w", e.Name, err)
			}
		}
	}
	return nil
}

// Fault is how the hostile registry misbehaves for one repository. It
// applies to the layer blobs of the image (not its config) unless named
// otherwise.
type Fault string

const (
	// FaultNone serves the image as it is.
	FaultNone Fault = ""
	// Fault500Manifest answers 500 to every manifest request.
	Fault500Manifest Fault = "500-manifest"
	// Fault500Blob answers 500 to layer requests.
	Fault500Blob Fault = "500-blob"
	// FaultTruncate declares the full Content-Length, sends half the layer
	// and closes the connection.
	FaultTruncate Fault = "truncate"
	// FaultStall sends half the layer, then sends nothing more and keeps
	// the connection open until the client gives up or the registry stops.
	FaultStall Fault = "stall"
	// FaultRedirectLoop redirects each layer request to itself (with a new
	// query), forever.
	FaultRedirectLoop Fault = "redirect-loop"
	// FaultHugeLength declares a Content-Length of 10 GB for the layer,
	// sends the layer and then zeros until HugeLimit bytes, then closes.
	FaultHugeLength Fault = "huge-length"
	// FaultCorrupt serves the layer with bytes in its middle changed: its
	// content no longer matches the digest the manifest names.
	FaultCorrupt Fault = "corrupt"
)

// HugeLimit is how many bytes FaultHugeLength sends at most.
const HugeLimit = 256 << 20

// HostileRegistry is an HTTP registry (API v2, read-only) on 127.0.0.1
// serving OCI layouts, each repository with its Fault.
type HostileRegistry struct {
	l    net.Listener
	srv  *http.Server
	stop chan struct{}
	once sync.Once

	mu    sync.Mutex
	repos map[string]hostileRepo
	// Hits counts requests per repository and kind ("manifest", "blob").
	hits map[string]int
	// stalled is closed by the first stalled request.
	stalled chan struct{}
}

type hostileRepo struct {
	layout string
	fault  Fault
}

// StartHostileRegistry serves on a free port of 127.0.0.1.
func StartHostileRegistry() (*HostileRegistry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &HostileRegistry{l: l, stop: make(chan struct{}), repos: map[string]hostileRepo{}, hits: map[string]int{}, stalled: make(chan struct{})}
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(l)
	return r, nil
}

// Addr is host:port.
func (r *HostileRegistry) Addr() string { return r.l.Addr().String() }

// Serve makes repo (e.g. "hostile/dotdot") serve the image of the OCI
// layout (tag BusyboxTag) with fault.
func (r *HostileRegistry) Serve(repo, layout string, fault Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.repos[repo] = hostileRepo{layout: layout, fault: fault}
}

// Hits is the number of requests repo had of kind "manifest" or "blob".
func (r *HostileRegistry) Hits(repo, kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits[repo+" "+kind]
}

// Stalled is closed once a FaultStall request has stopped sending.
func (r *HostileRegistry) Stalled() <-chan struct{} { return r.stalled }

// Close stops the registry, releasing stalled requests.
func (r *HostileRegistry) Close() {
	r.once.Do(func() {
		close(r.stop)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r.srv.Shutdown(ctx)
		r.srv.Close()
	})
}

func (r *HostileRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/v2/" || req.URL.Path == "/v2" {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
		return
	}
	p := strings.TrimPrefix(req.URL.Path, "/v2/")
	var repo, kind, ref string
	if i := strings.LastIndex(p, "/manifests/"); i > 0 {
		repo, kind, ref = p[:i], "manifest", p[i+len("/manifests/"):]
	} else if i := strings.LastIndex(p, "/blobs/"); i > 0 {
		repo, kind, ref = p[:i], "blob", p[i+len("/blobs/"):]
	}
	r.mu.Lock()
	rp, ok := r.repos[repo]
	if ok {
		r.hits[repo+" "+kind]++
	}
	r.mu.Unlock()
	if !ok {
		registryError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
		return
	}
	switch kind {
	case "manifest":
		r.serveManifest(w, req, rp, ref)
	case "blob":
		r.serveBlob(w, req, rp, ref)
	default:
		registryError(w, http.StatusNotFound, "UNSUPPORTED", "not served here")
	}
}

func registryError(w http.ResponseWriter, code int, errCode, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": errCode, "message": msg}}})
}

func (r *HostileRegistry) serveManifest(w http.ResponseWriter, req *http.Request, rp hostileRepo, ref string) {
	if rp.fault == Fault500Manifest {
		registryError(w, http.StatusInternalServerError, "UNKNOWN", "hostile registry: internal error")
		return
	}
	digest := ref
	if !strings.HasPrefix(ref, "sha256:") {
		if ref != BusyboxTag {
			registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		var index struct{ Manifests []descriptor }
		if err := readJSON(filepath.Join(rp.layout, "index.json"), &index); err != nil || len(index.Manifests) == 0 {
			registryError(w, http.StatusInternalServerError, "UNKNOWN", fmt.Sprint(err))
			return
		}
		digest = index.Manifests[0].Digest
	}
	b, err := os.ReadFile(blobPath(rp.layout, digest))
	if err != nil {
		registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
		return
	}
	w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if req.Method == http.MethodHead {
		return
	}
	w.Write(b)
}

func blobPath(layout, digest string) string {
	return filepath.Join(layout, "blobs", "sha256", filepath.Base(strings.TrimPrefix(digest, "sha256:")))
}

// isLayer tells whether digest is a layer of the layout's (first) manifest.
func isLayer(layout, digest string) bool {
	var index struct{ Manifests []descriptor }
	if readJSON(filepath.Join(layout, "index.json"), &index) != nil || len(index.Manifests) == 0 {
		return false
	}
	var m struct{ Layers []descriptor }
	if readJSON(blobPath(layout, index.Manifests[0].Digest), &m) != nil {
		return false
	}
	for _, l := range m.Layers {
		if l.Digest == digest {
			return true
		}
	}
	return false
}

func (r *HostileRegistry) serveBlob(w http.ResponseWriter, req *http.Request, rp hostileRepo, digest string) {
	b, err := os.ReadFile(blobPath(rp.layout, digest))
	if err != nil {
		registryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
		return
	}
	fault := rp.fault
	if !isLayer(rp.layout, digest) {
		fault = FaultNone
	}
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Type", "application/octet-stream")
	switch fault {
	case Fault500Blob:
		registryError(w, http.StatusInternalServerError, "UNKNOWN", "hostile registry: internal error")
		return
	case FaultRedirectLoop:
		n, _ := strconv.Atoi(req.URL.Query().Get("loop"))
		http.Redirect(w, req, fmt.Sprintf("%s?loop=%d", req.URL.Path, n+1), http.StatusTemporaryRedirect)
		return
	case FaultHugeLength:
		w.Header().Set("Content-Length", strconv.FormatInt(10<<30, 10))
		if req.Method == http.MethodHead {
			return
		}
		w.Write(b)
		zeros := make([]byte, 1<<20)
		for sent := len(b); sent < HugeLimit; sent += len(zeros) {
			if _, err := w.Write(zeros); err != nil {
				return
			}
		}
		// Returning short of the declared length closes the connection.
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if req.Method == http.MethodHead {
		return
	}
	switch fault {
	case FaultTruncate:
		w.Write(b[:len(b)/2])
		// Short of Content-Length: net/http closes the connection.
	case FaultStall:
		w.Write(b[:len(b)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		r.mu.Lock()
		select {
		case <-r.stalled:
		default:
			close(r.stalled)
		}
		r.mu.Unlock()
		select {
		case <-req.Context().Done():
		case <-r.stop:
		}
	case FaultCorrupt:
		c := bytes.Clone(b)
		for i := len(c) / 2; i < len(c)/2+64 && i < len(c); i++ {
			c[i] ^= 0xff
		}
		w.Write(c)
	default:
		w.Write(b)
	}
}

// ErrNoLayout is returned by LayoutLayers for a layout without manifest.
var ErrNoLayout = errors.New("no manifest in the layout")

// LayoutLayers returns the layer digests of an OCI layout's first manifest.
func LayoutLayers(layout string) ([]string, error) {
	var index struct{ Manifests []descriptor }
	if err := readJSON(filepath.Join(layout, "index.json"), &index); err != nil {
		return nil, err
	}
	if len(index.Manifests) == 0 {
		return nil, ErrNoLayout
	}
	var m struct{ Layers []descriptor }
	if err := readJSON(blobPath(layout, index.Manifests[0].Digest), &m); err != nil {
		return nil, err
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out, nil
}
