// Package testenv builds the fixtures rl's integration tests and demo need:
// a busybox image made offline from Debian's busybox-static, a local
// docker-registry to pull it from, archives for `rl load`, the containers
// config files of a test user and the test users themselves.
//
// It drives nothing of rl's own: only the image library, the standard library
// and Debian's tools.
package testenv

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// BusyboxPath is where Debian's busybox-static installs its binary.
const BusyboxPath = "/bin/busybox"

// BusyboxTag is the tag the OCI layout built by BuildBusybox carries.
const BusyboxTag = "latest"

// epoch is the mtime of every file in the image and its creation date, so
// that two builds from the same busybox give the same digests.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// BuildBusybox writes an OCI image layout to dir/busybox, tagged "latest":
// one gzip layer with /bin/busybox from busybox-static, a /bin symlink per
// applet, /etc/passwd and /etc/group (root, tester 1000, nobody/nogroup
// 65534) and the usual top-level directories. It returns the layout's
// directory; refer to the image as layout:DIR:latest.
func BuildBusybox(dir string) (string, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return "", fmt.Errorf("read busybox: %w (install Debian's busybox-static)", err)
	}
	if err := checkStatic(BusyboxPath); err != nil {
		return "", err
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return "", fmt.Errorf("%s --list: %w", BusyboxPath, err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)

	layer, err := busyboxLayer(bin, applets)
	if err != nil {
		return "", err
	}
	return writeLayout(filepath.Join(dir, "busybox"), layer, imageConfig{
		Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	})
}

// checkStatic refuses a dynamically linked busybox (Debian's plain busybox
// package): it would not run in an image with no libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked: install Debian's busybox-static", path)
		}
	}
	return nil
}

// entry is one file of a layer; Body is set for regular files, Link for
// symlinks, neither for directories.
type entry struct {
	Name     string
	Mode     int64
	UID, GID int
	Body     []byte
	Link     string
}

func busyboxLayer(bin []byte, applets []string) ([]entry, error) {
	dirs := []entry{
		{Name: "bin", Mode: 0o755},
		{Name: "dev", Mode: 0o755},
		{Name: "etc", Mode: 0o755},
		{Name: "home", Mode: 0o755},
		{Name: "home/tester", Mode: 0o755, UID: 1000, GID: 1000},
		{Name: "proc", Mode: 0o555},
		{Name: "root", Mode: 0o700},
		{Name: "sys", Mode: 0o555},
		{Name: "tmp", Mode: 0o1777},
		{Name: "var", Mode: 0o755},
	}
	files := []entry{
		{Name: "bin/busybox", Mode: 0o755, Body: bin},
		{Name: "etc/passwd", Mode: 0o644, Body: []byte(
			"root:x:0:0:root:/root:/bin/sh\n" +
				"tester:x:1000:1000::/home/tester:/bin/sh\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Name: "etc/group", Mode: 0o644, Body: []byte(
			"root:x:0:\n" +
				"tester:x:1000:\n" +
				"nogroup:x:65534:\n")},
	}
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		files = append(files, entry{Name: "bin/" + a, Mode: 0o777, Link: "busybox"})
	}
	return append(dirs, files...), nil
}

type imageConfig struct {
	Cmd []string `json:"Cmd,omitempty"`
	Env []string `json:"Env,omitempty"`
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// writeLayout writes a one-layer image of files as an OCI layout in dir
// (replacing what was there) and returns dir.
func writeLayout(dir string, files []entry, cfg imageConfig) (string, error) {
	return writeTarLayout(dir, cfg, "rl testenv: busybox-static", func(tw *tar.Writer) error {
		return writeEntries(tw, files)
	})
}

// writeTarLayout writes a one-layer image as an OCI layout in dir (replacing
// what was there) and returns dir: fill writes the layer's entries (the tar
// writer is closed after it), which is stored gzip-compressed; the image is
// tagged BusyboxTag in the layout, its config holds cfg and its history says
// createdBy. The layer is streamed to disk, never held in memory.
func writeTarLayout(dir string, cfg imageConfig, createdBy string, fill func(*tar.Writer) error) (string, error) {
	return writeLayersLayout(dir, cfg, []string{createdBy}, []func(*tar.Writer) error{fill})
}

// writeLayersLayout writes an OCI layout in dir with one layer per fill
// (bottom first; createdBy[i] is layer i's history entry) and the image
// config cfg, tagged BusyboxTag.
func writeLayersLayout(dir string, cfg any, createdBy []string, fills []func(*tar.Writer) error) (string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return "", err
	}
	var layers []descriptor
	var diffIDs []string
	var history []map[string]any
	for i, fill := range fills {
		d, diffID, err := writeLayerBlob(dir, fill)
		if err != nil {
			return "", err
		}
		layers = append(layers, d)
		diffIDs = append(diffIDs, diffID)
		history = append(history, map[string]any{"created": epoch.Format(time.RFC3339), "created_by": createdBy[i]})
	}
	config, err := json.Marshal(map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": "amd64",
		"os":           "linux",
		"config":       cfg,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history":      history,
	})
	if err != nil {
		return "", err
	}
	configDesc, err := writeBlob(dir, "application/vnd.oci.image.config.v1+json", config)
	if err != nil {
		return "", err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        configDesc,
		"layers":        layers,
	})
	if err != nil {
		return "", err
	}
	manifestDesc, err := writeBlob(dir, "application/vnd.oci.image.manifest.v1+json", manifest)
	if err != nil {
		return "", err
	}
	manifestDesc.Annotations = map[string]string{"org.opencontainers.image.ref.name": BusyboxTag}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []descriptor{manifestDesc},
	})
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// writeLayerBlob writes the tar stream fill produces, gzip-compressed, as a
// blob of the layout in dir; it returns the blob's descriptor and the
// digest of the uncompressed tar (the layer's diff ID).
func writeLayerBlob(dir string, fill func(*tar.Writer) error) (descriptor, string, error) {
	tmp, err := os.CreateTemp(filepath.Join(dir, "blobs", "sha256"), ".layer-")
	if err != nil {
		return descriptor{}, "", err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	defer tmp.Close()
	compressed := sha256.New()
	counter := &countingWriter{w: io.MultiWriter(tmp, compressed)}
	zw, err := gzip.NewWriterLevel(counter, gzip.BestCompression)
	if err != nil {
		return descriptor{}, "", err
	}
	raw := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, raw))
	if err := fill(tw); err != nil {
		return descriptor{}, "", err
	}
	if err := tw.Close(); err != nil {
		return descriptor{}, "", err
	}
	if err := zw.Close(); err != nil {
		return descriptor{}, "", err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return descriptor{}, "", err
	}
	if err := tmp.Close(); err != nil {
		return descriptor{}, "", err
	}
	hexDigest := hex.EncodeToString(compressed.Sum(nil))
	if err := os.Rename(tmp.Name(), filepath.Join(dir, "blobs", "sha256", hexDigest)); err != nil {
		return descriptor{}, "", err
	}
	return descriptor{
		MediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
		Digest:    "sha256:" + hexDigest,
		Size:      counter.n,
	}, "sha256:" + hex.EncodeToString(raw.Sum(nil)), nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeEntries writes files to tw, each with mtime epoch.
func writeEntries(tw *tar.Writer, files []entry) error {
	for _, f := range files {
		h := &tar.Header{
			Name:    f.Name,
			Mode:    f.Mode,
			Uid:     f.UID,
			Gid:     f.GID,
			ModTime: epoch,
			Format:  tar.FormatPAX,
		}
		switch {
		case f.Link != "":
			h.Typeflag = tar.TypeSymlink
			h.Linkname = f.Link
		case f.Body != nil:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.Body))
		default:
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar %s: %w", f.Name, err)
		}
		if f.Body != nil {
			if _, err := tw.Write(f.Body); err != nil {
				return fmt.Errorf("tar %s: %w", f.Name, err)
			}
		}
	}
	return nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func writeBlob(dir, mediaType string, b []byte) (descriptor, error) {
	d := digestOf(b)
	path := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}, nil
}

// Digests reads an OCI layout written by BuildBusybox and returns the
// digest of its manifest and of its config; the config digest is the image
// ID podman-like tools print (`rl images` shows its first 12 hex digits).
func Digests(ociLayoutDir string) (manifest, config string, err error) {
	var index struct{ Manifests []descriptor }
	if err := readJSON(filepath.Join(ociLayoutDir, "index.json"), &index); err != nil {
		return "", "", err
	}
	if len(index.Manifests) != 1 {
		return "", "", fmt.Errorf("%s: want one manifest in index.json, have %d", ociLayoutDir, len(index.Manifests))
	}
	manifest = index.Manifests[0].Digest
	var m struct{ Config descriptor }
	if err := readJSON(filepath.Join(ociLayoutDir, "blobs", "sha256", strings.TrimPrefix(manifest, "sha256:")), &m); err != nil {
		return "", "", err
	}
	if m.Config.Digest == "" {
		return "", "", errors.New("manifest has no config")
	}
	return manifest, m.Config.Digest, nil
}

func readJSON(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// StripManifestMediaType writes to dst a copy of the OCI layout src whose
// manifest has no "mediaType" (which the OCI spec only recommends, and
// which some tools leave out): a reader must tell it from its config's
// media type. src's other blobs are shared by hard link.
func StripManifestMediaType(src, dst string) error {
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dst, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	blobs, err := os.ReadDir(filepath.Join(src, "blobs", "sha256"))
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if err := os.Link(filepath.Join(src, "blobs", "sha256", b.Name()), filepath.Join(dst, "blobs", "sha256", b.Name())); err != nil {
			return err
		}
	}
	for _, f := range []string{"index.json", "oci-layout"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, f), b, 0o644)
		}
		if err != nil {
			return err
		}
	}
	var index struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}
	ib, err := os.ReadFile(filepath.Join(dst, "index.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(ib, &index); err != nil || len(index.Manifests) != 1 {
		return fmt.Errorf("the layout's index: %d manifests, %v", len(index.Manifests), err)
	}
	mb, err := os.ReadFile(filepath.Join(dst, "blobs", "sha256", strings.TrimPrefix(index.Manifests[0].Digest, "sha256:")))
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(mb, &m); err != nil {
		return err
	}
	delete(m, "mediaType")
	if mb, err = json.Marshal(m); err != nil {
		return err
	}
	d, err := writeBlob(dst, "application/vnd.oci.image.manifest.v1+json", mb)
	if err != nil {
		return err
	}
	d.Annotations = index.Manifests[0].Annotations
	index.Manifests[0] = d
	if ib, err = json.Marshal(index); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dst, "index.json"), ib, 0o644)
}
