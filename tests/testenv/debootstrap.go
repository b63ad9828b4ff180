package testenv

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// DebianSuite is the release BuildDebian bootstraps.
const DebianSuite = "bookworm"

// DefaultDebianMirror is used when apt's own configuration names no Debian
// archive.
const DefaultDebianMirror = "http://deb.debian.org/debian"

// DebianLayoutName is the directory BuildDebian writes its OCI layout to,
// under the directory it is given.
const DebianLayoutName = "debian-" + DebianSuite

// BuildDebian, run as root, bootstraps a minimal Debian (`debootstrap
// --variant=minbase bookworm ROOTFS MIRROR`, MIRROR being the archive apt on
// this machine uses, see DebianMirror) and writes it as a one-layer OCI
// image layout to dir/debian-bookworm, tagged BusyboxTag inside the layout
// like BuildBusybox's (so Push, SaveArchive and Digests take it), with Cmd
// ["bash"] and a PATH. The layer keeps numeric owners, modes (setuid and
// setgid bits included), symlinks and hard links; device nodes stay as tar
// entries (an unprivileged store skips them). The downloaded .deb files are
// left out.
//
// The layout is written beside its final place and renamed into it, so an
// existing dir/debian-bookworm is always a complete one: callers may keep it
// as a cache. It returns the layout's directory.
func BuildDebian(dir string) (string, error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("BuildDebian: debootstrap must run as root")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("%w (install Debian's debootstrap)", err)
	}
	mirror, err := DebianMirror()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(dir, ".debian-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	rootfs := filepath.Join(work, "rootfs")
	cmd := exec.Command("debootstrap", "--variant=minbase", DebianSuite, rootfs, mirror)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("debootstrap --variant=minbase %s %s %s: %w\n%s", DebianSuite, rootfs, mirror, err, tail(out.String(), 3000))
	}
	debs, _ := filepath.Glob(filepath.Join(rootfs, "var/cache/apt/archives/*.deb"))
	for _, d := range debs {
		if err := os.Remove(d); err != nil {
			return "", err
		}
	}

	layout, err := writeTarLayout(filepath.Join(work, "layout"), imageConfig{
		Cmd: []string{"bash"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}, "rl testenv: debootstrap --variant=minbase "+DebianSuite+" "+mirror, func(tw *tar.Writer) error {
		return tarTree(tw, rootfs)
	})
	if err != nil {
		return "", err
	}
	final := filepath.Join(dir, DebianLayoutName)
	if err := os.RemoveAll(final); err != nil {
		return "", err
	}
	if err := os.Rename(layout, final); err != nil {
		return "", err
	}
	return final, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// tarTree writes the tree under root to tw, names relative to root, in
// lexical order: numeric owners only (no names: the host's /etc/passwd is
// not the image's), a file's second and later links as hard links to its
// first, sockets left out. mtimes are kept; access and change times are not.
func tarTree(tw *tar.Writer, root string) error {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		name, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSocket != 0 {
			return nil
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return fmt.Errorf("tar %s: %w", name, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		h.Name = filepath.ToSlash(name)
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid = int(st.Uid), int(st.Gid)
		h.Uname, h.Gname = "", ""
		h.ModTime = fi.ModTime().Truncate(time.Second)
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		h.Format = tar.FormatPAX
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			key := inode{uint64(st.Dev), st.Ino}
			if first, ok := seen[key]; ok {
				h.Typeflag = tar.TypeLink
				h.Linkname = first
				h.Size = 0
			} else {
				seen[key] = h.Name
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar %s: %w", name, err)
		}
		if h.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(tw, f); err != nil {
			return fmt.Errorf("tar %s: %w", name, err)
		}
		return nil
	})
}

// DebianMirror is the Debian archive apt on this machine uses: the first
// enabled "deb" source whose URI ends in /debian, in
// /etc/apt/sources.list.d/*.sources (deb822), /etc/apt/sources.list.d/*.list
// and /etc/apt/sources.list; DefaultDebianMirror when none does.
func DebianMirror() (string, error) {
	var files []string
	for _, pat := range []string{"/etc/apt/sources.list.d/*.sources", "/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			return "", err
		}
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return "", err
		}
		var uris []string
		if strings.HasSuffix(f, ".sources") {
			uris = deb822URIs(b)
		} else {
			uris = oneLineURIs(b)
		}
		for _, u := range uris {
			if strings.HasSuffix(strings.TrimRight(u, "/"), "/debian") {
				return strings.TrimRight(u, "/"), nil
			}
		}
	}
	return DefaultDebianMirror, nil
}

// deb822URIs are the URIs of the enabled stanzas of Types "deb".
func deb822URIs(b []byte) []string {
	var uris []string
	for _, stanza := range strings.Split(string(b), "\n\n") {
		fields := map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(stanza))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if ok {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if strings.EqualFold(fields["enabled"], "no") || !slices.Contains(strings.Fields(fields["types"]), "deb") {
			continue
		}
		uris = append(uris, strings.Fields(fields["uris"])...)
	}
	return uris
}

// oneLineURIs are the URIs of the "deb [options] URI suite ..." lines.
func oneLineURIs(b []byte) []string {
	var uris []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) > 0 {
			uris = append(uris, f[0])
		}
	}
	return uris
}
