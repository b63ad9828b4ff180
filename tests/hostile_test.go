package tests

// The hostile-input suite (issue 6): images built to attack rl, a registry
// that misbehaves, and bad flags and references of every kind. Each case is
// either rejected (exit 125, one line of error, the store as it was) or
// contained (nothing outside the user's store and the container's rootfs is
// written, read or deleted, as the host sees it). Each case logs a line
// "CASE <name>: rejected|contained: ..." for the report.

import (
	"archive/tar"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rlcontainers/rl/tests/testenv"
)

// hostileToken is in the name of every file an attack tries to create on
// the host, so a search for it finds an escape wherever it landed.
var hostileToken = func() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "rlhostile" + hex.EncodeToString(b)
}()

// up is enough "../" to leave any store.
const up = "../../../../../../../../../../../../../../../../"

// hostileSetup is a test's hostile registry and, for a user, a store of
// its own whose registries.conf trusts that registry (plain HTTP).
type hostileSetup struct {
	reg *testenv.HostileRegistry
	dir string // the layouts
	v   User
	env []string
}

func startHostile(t *testing.T) (*testenv.HostileRegistry, string) {
	t.Helper()
	reg, err := testenv.StartHostileRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return reg, t.TempDir()
}

func newHostileSetup(t *testing.T, reg *testenv.HostileRegistry, dir string, u User) *hostileSetup {
	t.Helper()
	v, env := otherHome(t, u, reg.Addr())
	return &hostileSetup{reg: reg, dir: dir, v: v, env: env}
}

// image builds the hostile image (busybox + layers, config cfg), serves it
// as repo with fault and returns its reference.
func (h *hostileSetup) image(t *testing.T, repo string, layers [][]testenv.LayerEntry, cfg testenv.HostileConfig, fault testenv.Fault) string {
	t.Helper()
	layout, err := testenv.BuildHostile(filepath.Join(h.dir, strings.ReplaceAll(repo, "/", "_")), layers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.reg.Serve(repo, layout, fault)
	return h.reg.Addr() + "/" + repo + ":latest"
}

// tokenFiles lists files whose names hold hostileToken under roots (to
// depth 4), skipping the paths in skip (stores, layouts).
func tokenFiles(roots []string, skip []string) []string {
	var found []string
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			for _, s := range skip {
				if p == s {
					return filepath.SkipDir
				}
			}
			if strings.Contains(d.Name(), hostileToken) && !strings.Contains(d.Name(), "victim") {
				found = append(found, p)
			}
			if d.IsDir() && p != root && strings.Count(strings.TrimPrefix(p, root), "/") >= 4 {
				return filepath.SkipDir
			}
			return nil
		})
	}
	return found
}

// checkHostClean fails t if a file named with the token exists on the host
// outside the store of h.v, the layouts and the run dir.
func (h *hostileSetup) checkHostClean(t *testing.T) {
	t.Helper()
	skip := []string{filepath.Join(h.v.Home, ".local", "share", "rl"), h.dir, filepath.Join(h.v.Home, "run")}
	roots := []string{"/tmp", "/var/tmp", h.v.Home, full.Home, baseDir, "/etc"}
	if single.Home != "" {
		roots = append(roots, single.Home)
	}
	if got := tokenFiles(roots, skip); len(got) > 0 {
		t.Errorf("ESCAPE: files written outside the store: %v", got)
		for _, p := range got {
			os.RemoveAll(p)
		}
	}
}

// outcome pulls ref as h.v: when rl refuses, it wants one line, exit 125 and
// the store unchanged and returns false; when rl pulls, it returns true (the
// caller then checks containment and removes the image).
func (h *hostileSetup) pull(t *testing.T, name, ref string) bool {
	t.Helper()
	before := snapshot(t, h.v, h.env)
	r := rlEnv(t, h.v, h.env, "pull", "-q", ref)
	h.checkHostClean(t)
	if r.Code == 0 {
		t.Logf("CASE %s: contained: rl pull accepted the image", name)
		return true
	}
	ls := errorLines(r.Stderr)
	t.Logf("CASE %s: rejected: exit %d: %s", name, r.Code, strings.Join(ls, " | "))
	if r.Code != 125 || len(ls) != 1 {
		t.Errorf("rejected, but want exit 125 and one line of error:\n%v", r)
	}
	wantNotBlamed(t, r)
	before.diff(t, snapshot(t, h.v, h.env))
	return false
}

// wantNotBlamed: the registry had the image (its manifest was served), so
// the error must not send the user to check the name or registries.conf.
func wantNotBlamed(t *testing.T, r Result) {
	t.Helper()
	if strings.Contains(r.Stderr, "no registry had it") || strings.Contains(r.Stderr, "check the name") {
		t.Errorf("misleading error: the registry served the image's manifest, yet rl says no registry had it and to check the name:\n%v", r)
	}
}

func (h *hostileSetup) rmi(t *testing.T, ref string) {
	t.Helper()
	if r := rlEnv(t, h.v, h.env, "rmi", "-f", ref); r.Code != 0 {
		t.Errorf("rl rmi of the hostile image:\n%v", r)
	}
}

func (h *hostileSetup) run(t *testing.T, args ...string) Result {
	t.Helper()
	return rlEnv(t, h.v, h.env, append([]string{"run", "--rm"}, args...)...)
}

// userFile writes body to path, owned by u: the victim of an attack.
func userFile(t *testing.T, u User, path, body string) {
	t.Helper()
	writeUserFile(t, u, path, body)
	t.Cleanup(func() { os.Remove(path) })
}

func wantFile(t *testing.T, path, body string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("ESCAPE: the victim %s: %v", path, err)
		return
	}
	if string(b) != body {
		t.Errorf("ESCAPE: the victim %s now holds %q, was %q", path, b, body)
	}
	if st, err := os.Stat(path); err == nil && st.Sys().(*syscall.Stat_t).Nlink != 1 {
		t.Errorf("ESCAPE: the victim %s has %d links: the store hardlinked it", path, st.Sys().(*syscall.Stat_t).Nlink)
	}
}

func reg(name string, body string) testenv.LayerEntry {
	return testenv.LayerEntry{Name: name, Mode: 0o644, Body: []byte(body)}
}

func symlink(name, target string) testenv.LayerEntry {
	return testenv.LayerEntry{Name: name, Mode: 0o777, Type: tar.TypeSymlink, Link: target}
}

func hardlink(name, target string) testenv.LayerEntry {
	return testenv.LayerEntry{Name: name, Mode: 0o644, Type: tar.TypeLink, Link: target}
}

func rel(abs string) string { return strings.TrimPrefix(abs, "/") }

// TestHostileLayers: layers with entries outside the layer, links to host
// files, devices, setuid files and whiteouts outside the layer.
func TestHostileLayers(t *testing.T) {
	reg0, dir := startHostile(t)
	suid := buildEuidProgram(t)
	forEachUser(t, func(t *testing.T, u User) {
		// A store per case (below); the attacks aim at this HOME.
		h := newHostileSetup(t, reg0, filepath.Join(dir, u.Name), u)
		home := h.v.Home
		tok := hostileToken + "-" + u.Name
		type layerCase struct {
			name   string
			layers [][]testenv.LayerEntry
			// victims are files the attack must leave as they are.
			victims map[string]string
			// check runs when rl pulled the image.
			check func(t *testing.T, ref string)
		}
		victim := func(name string) string { return filepath.Join(home, name+"-"+tok+"-victim") }
		tmpVictim := "/tmp/" + tok + "-victim"
		cases := []layerCase{
			{name: "dotdot-tmp", layers: [][]testenv.LayerEntry{{reg(up+"tmp/"+tok+"-dotdot", "pwned")}}},
			{name: "dotdot-home", layers: [][]testenv.LayerEntry{{reg(up+rel(home)+"/"+tok+"-dotdot", "pwned")}}},
			{name: "dotdot-in-middle", layers: [][]testenv.LayerEntry{{reg("etc/"+up+"tmp/"+tok+"-mid", "pwned")}}},
			{name: "dotdot-symlink-entry", layers: [][]testenv.LayerEntry{{symlink(up+"tmp/"+tok+"-dsym", "/")}}},
			{name: "dotdot-dir", layers: [][]testenv.LayerEntry{{{Name: up + "tmp/" + tok + "-ddir/", Mode: 0o755, Type: tar.TypeDir}}}},
			{name: "absolute-tmp", layers: [][]testenv.LayerEntry{{reg("/tmp/"+tok+"-abs", "pwned")}}},
			{name: "absolute-home", layers: [][]testenv.LayerEntry{{reg(home+"/"+tok+"-abs", "pwned")}}},
			{name: "symlink-tmp-then-write-later-layer", layers: [][]testenv.LayerEntry{
				{symlink("escape", "/tmp")},
				{reg("escape/"+tok+"-sym", "pwned")},
			}},
			{name: "symlink-home-then-write-later-layer", layers: [][]testenv.LayerEntry{
				{symlink("homelink", home)},
				{reg("homelink/"+tok+"-symhome", "pwned")},
			}, check: func(t *testing.T, ref string) {
				// At run time too: a write through the link stays inside.
				r := h.run(t, ref, "sh", "-c", "echo pwned > /homelink/"+tok+"-symrun; echo ok")
				t.Logf("write through the link at run time: exit %d %s", r.Code, strings.TrimSpace(r.Stdout+r.Stderr))
			}},
			{name: "symlink-then-write-same-layer", layers: [][]testenv.LayerEntry{
				{symlink("esc2", "/tmp"), reg("esc2/"+tok+"-same", "pwned")},
			}},
			{name: "symlink-relative-up-then-write", layers: [][]testenv.LayerEntry{
				{symlink("up", strings.TrimSuffix(up, "/"))},
				{reg("up/tmp/"+tok+"-relup", "pwned")},
			}},
			{name: "symlink-dir-then-mkdir-through", layers: [][]testenv.LayerEntry{
				{symlink("d", home)},
				{{Name: "d/" + tok + "-mkdir/", Mode: 0o755, Type: tar.TypeDir}},
			}},
			// The init's mount points through the image's symlinks: each
			// resolves inside the rootfs (openat2 RESOLVE_IN_ROOT), so the
			// mount lands there and nothing is created on the host.
			{name: "mount-points-through-symlinks", layers: [][]testenv.LayerEntry{{
				{Name: "srv/", Mode: 0o755, Type: tar.TypeDir},
				symlink("sys", up+"srv"),
				symlink("etc/hostname", up+"tmp/"+tok+"-mhostname"),
				symlink("etc/hosts", home+"/"+tok+"-mhosts"),
			}}, check: func(t *testing.T, ref string) {
				r := h.run(t, ref, "sh", "-c", "cat /etc/hostname; grep -c localhost /etc/hosts; ls -d /srv/kernel")
				if r.Code != 0 || !strings.Contains(r.Stdout, "/srv/kernel") {
					t.Errorf("the container's /etc files and /sys, mounted through the image's symlinks:\n%v", r)
				}
			}},
			{name: "hardlink-etc-passwd", layers: [][]testenv.LayerEntry{{hardlink("pw", "/etc/passwd")}},
				check: func(t *testing.T, ref string) {
					host, _ := os.ReadFile("/etc/passwd")
					r := h.run(t, ref, "cat", "/pw")
					if r.Code == 0 && r.Stdout == string(host) {
						t.Errorf("ESCAPE: /pw in the container is the host's /etc/passwd")
					}
				}},
			{name: "hardlink-dotdot-etc-passwd", layers: [][]testenv.LayerEntry{{hardlink("pw2", up+"etc/passwd")}},
				check: func(t *testing.T, ref string) {
					host, _ := os.ReadFile("/etc/passwd")
					r := h.run(t, ref, "cat", "/pw2")
					if r.Code == 0 && r.Stdout == string(host) {
						t.Errorf("ESCAPE: /pw2 in the container is the host's /etc/passwd")
					}
				}},
			{name: "hardlink-home-file-then-overwrite", layers: [][]testenv.LayerEntry{
				{hardlink("hl", victim("hl"))},
				{reg("hl", "pwned")},
			}, victims: map[string]string{victim("hl"): "precious"}},
			{name: "hardlink-dotdot-home-file-then-overwrite", layers: [][]testenv.LayerEntry{
				{hardlink("hl2", up+rel(victim("hl2")))},
				{reg("hl2", "pwned")},
			}, victims: map[string]string{victim("hl2"): "precious"}},
			{name: "device-nodes", layers: [][]testenv.LayerEntry{{
				{Name: "rl-zero", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 5},
				{Name: "rl-mem", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 1},
				{Name: "rl-kmsg", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 11},
				{Name: "rl-vda", Type: tar.TypeBlock, Mode: 0o666, Major: 253, Minor: 0},
				{Name: "rl-sda", Type: tar.TypeBlock, Mode: 0o666, Major: 8, Minor: 0},
			}}, check: func(t *testing.T, ref string) {
				r := h.run(t, ref, "sh", "-c", `for f in /rl-zero /rl-mem /rl-kmsg /rl-vda /rl-sda; do echo "$f $(head -c 1 $f 2>/dev/null | wc -c) $(stat -c %F $f)"; done`)
				t.Logf("devices in the container: exit %d:\n%s%s", r.Code, r.Stdout, r.Stderr)
				for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
					if f := strings.Fields(l); len(f) >= 2 && f[1] != "0" {
						t.Errorf("ESCAPE: read a byte from the image's device node %s (%s)", f[0], l)
					}
				}
				if n := storeDevices(h.v); len(n) > 0 {
					t.Errorf("device nodes in the store on the host: %v", n)
				}
			}},
			{name: "setuid-root", layers: [][]testenv.LayerEntry{{
				{Name: "rl-euid", Mode: 0o4755, Body: suid},
				{Name: "rl-egid", Mode: 0o2755, Body: suid},
			}}, check: func(t *testing.T, ref string) {
				if u.Name == single.Name {
					t.Logf("single-ID user: only uid 0 exists in the container, no setuid to test")
				} else {
					r := h.run(t, "-u", "1000:1000", ref, "sh", "-c", "/rl-euid; /rl-egid")
					t.Logf("setuid and setgid root files run as 1000 in the container: exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
					if r.Code != 0 || !strings.Contains(r.Stdout, "ruid=1000 euid=0") {
						t.Errorf("the setuid-root file does not work inside the user namespace (want ruid=1000 euid=0):\n%v", r)
					}
				}
				for _, p := range storeFiles(h.v, "rl-euid", "rl-egid") {
					st, _ := os.Lstat(p)
					sys := st.Sys().(*syscall.Stat_t)
					t.Logf("on the host: %s mode %v owner %d:%d", p, st.Mode(), sys.Uid, sys.Gid)
					if st.Mode()&os.ModeSetuid != 0 && sys.Uid == 0 {
						t.Errorf("ESCAPE: %s is setuid and owned by host root", p)
					}
					if st.Mode()&os.ModeSetgid != 0 && sys.Gid == 0 {
						t.Errorf("ESCAPE: %s is setgid and owned by host gid 0", p)
					}
					if sys.Uid != uint32(u.UID) {
						t.Errorf("%s: owner %d on the host, want the user %d (root in the container)", p, sys.Uid, u.UID)
					}
				}
			}},
			{name: "whiteout-dotdot", layers: [][]testenv.LayerEntry{{reg(".wh...", "")}},
				check: func(t *testing.T, ref string) {
					if r := h.run(t, ref, "ls", "/bin/busybox"); r.Code != 0 {
						t.Logf("the image's files after the .wh... whiteout: %v", r)
					}
				}},
			{name: "whiteout-parent-of-layer", layers: [][]testenv.LayerEntry{{reg("../.wh.x", "")}}},
			{name: "whiteout-dotdot-home-victim", layers: [][]testenv.LayerEntry{{reg(up+rel(home)+"/.wh."+filepath.Base(victim("wh")), "")}},
				victims: map[string]string{victim("wh"): "precious"}},
			{name: "whiteout-absolute-tmp-victim", layers: [][]testenv.LayerEntry{{reg("/tmp/.wh."+filepath.Base(tmpVictim), "")}},
				victims: map[string]string{tmpVictim: "precious"}},
			{name: "whiteout-dotdot-tmp-victim", layers: [][]testenv.LayerEntry{{reg(up+"tmp/.wh."+filepath.Base(tmpVictim), "")}},
				victims: map[string]string{tmpVictim: "precious"}},
			{name: "opaque-whiteout-dotdot-home-dir", layers: [][]testenv.LayerEntry{{reg(up+rel(home)+"/"+tok+"-victimdir/.wh..wh..opq", "")}},
				victims: map[string]string{filepath.Join(home, tok+"-victimdir", "f-victim"): "precious"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				// Each case in an empty store of its own, in h's HOME, so
				// that what one case leaves cannot hide another's.
				storage := filepath.Join(home, ".local", "share", "rl")
				os.RemoveAll(storage)
				defer os.RemoveAll(storage)
				for p, body := range c.victims {
					// Only a directory made here becomes the user's: a
					// victim in /tmp must not hand /tmp over to them.
					if _, err := os.Stat(filepath.Dir(p)); os.IsNotExist(err) {
						if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
							t.Fatal(err)
						}
						os.Chown(filepath.Dir(p), u.UID, u.GID)
					}
					userFile(t, u, p, body)
				}
				ref := h.image(t, "hostile/"+c.name, c.layers, testenv.HostileConfig{Cmd: []string{"sh"}}, testenv.FaultNone)
				if h.pull(t, c.name, ref) {
					r := h.run(t, ref, "true")
					if r.Code != 0 {
						t.Errorf("the contained image does not run:\n%v", r)
					}
					if c.check != nil {
						c.check(t, ref)
					}
					h.rmi(t, ref)
				}
				h.checkHostClean(t)
				for p, body := range c.victims {
					wantFile(t, p, body)
				}
			})
		}
	})
}

// buildEuidProgram builds a static program that prints its real and
// effective ids.
func buildEuidProgram(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(`package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("ruid=%d euid=%d rgid=%d egid=%d\n", os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid())
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "euid")
	cmd := exec.Command("go", "build", "-o", out, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the euid program: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storeFiles finds files named one of names in u's store.
func storeFiles(u User, names ...string) []string {
	var out []string
	filepath.WalkDir(filepath.Join(u.Home, ".local", "share", "rl"), func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			for _, n := range names {
				if d.Name() == n {
					out = append(out, p)
				}
			}
		}
		return nil
	})
	return out
}

// storeDevices lists device nodes in u's store.
func storeDevices(u User) []string {
	var out []string
	filepath.WalkDir(filepath.Join(u.Home, ".local", "share", "rl"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&(fs.ModeDevice|fs.ModeCharDevice) != 0 {
			if st, err := os.Lstat(p); err == nil {
				rdev := st.Sys().(*syscall.Stat_t).Rdev
				if rdev != 0 { // 0:0 char devices are overlay whiteouts
					out = append(out, fmt.Sprintf("%s (%d:%d)", p, rdev>>8, rdev&0xff))
				}
			}
		}
		return nil
	})
	return out
}

// TestHostileConfig: image configs with a bogus user, workdir or
// entrypoint, and ones that point through symlinks to host paths.
func TestHostileConfig(t *testing.T) {
	reg0, dir := startHostile(t)
	rlHash := fileHash(t, rlBin)
	forEachUser(t, func(t *testing.T, u User) {
		h := newHostileSetup(t, reg0, filepath.Join(dir, u.Name), u)
		tok := hostileToken + "-" + u.Name
		for _, c := range []struct {
			name   string
			layers [][]testenv.LayerEntry
			cfg    testenv.HostileConfig
			// code is the exit code wanted, with one line of error.
			code int
			// check, when set, replaces the exit code check.
			check func(t *testing.T, r Result)
		}{
			{name: "config-user-nosuch", cfg: testenv.HostileConfig{User: "nosuch", Cmd: []string{"true"}}, code: 125},
			{name: "config-user-nosuch-group", cfg: testenv.HostileConfig{User: "0:nosuchgroup", Cmd: []string{"true"}}, code: 125},
			{name: "config-workdir-under-file", cfg: testenv.HostileConfig{WorkingDir: "/etc/passwd/x", Cmd: []string{"true"}}, code: 125},
			{name: "config-entrypoint-missing", cfg: testenv.HostileConfig{Entrypoint: []string{"/nonexistent/" + tok}}, code: 127},
			{name: "config-entrypoint-not-executable", layers: [][]testenv.LayerEntry{{reg("notexec", "#!/bin/sh\necho ran\n")}},
				cfg: testenv.HostileConfig{Entrypoint: []string{"/notexec"}}, code: 126},
			{name: "config-entrypoint-symlink-to-host-rl", layers: [][]testenv.LayerEntry{{symlink("rl-entry", rlBin)}},
				cfg: testenv.HostileConfig{Entrypoint: []string{"/rl-entry"}, Cmd: []string{"--help"}}, code: 127},
			{name: "config-entrypoint-relative-symlink-to-host", layers: [][]testenv.LayerEntry{{symlink("rl-entry2", strings.TrimSuffix(up, "/")+rlBin)}},
				cfg: testenv.HostileConfig{Entrypoint: []string{"/rl-entry2"}, Cmd: []string{"--help"}}, code: 127},
			{name: "config-entrypoint-proc-self-exe", cfg: testenv.HostileConfig{Entrypoint: []string{"/proc/self/exe"}, Cmd: []string{"--help"}},
				check: func(t *testing.T, r Result) {
					if strings.Contains(r.Stdout+r.Stderr, "rl run") || strings.Contains(r.Stdout+r.Stderr, "Usage: rl") {
						t.Errorf("the container ran the host's rl binary through /proc/self/exe:\n%v", r)
					}
				}},
			{name: "config-workdir-symlink-to-host-home", layers: [][]testenv.LayerEntry{{symlink("wd", h.v.Home)}},
				cfg: testenv.HostileConfig{WorkingDir: "/wd", Cmd: []string{"sh", "-c", "echo pwned > " + tok + "-wd; pwd"}},
				check: func(t *testing.T, r Result) {
					if _, err := os.Stat(filepath.Join(h.v.Home, tok+"-wd")); err == nil {
						t.Errorf("ESCAPE: the workload wrote into the host HOME through the image's workdir symlink")
					}
				}},
			{name: "config-workdir-proc-self-fd", cfg: testenv.HostileConfig{WorkingDir: "/proc/self/fd/7", Cmd: []string{"sh", "-c", "readlink /proc/self/cwd; ls"}},
				check: func(t *testing.T, r Result) {
					if r.Code == 0 {
						t.Errorf("WorkingDir /proc/self/fd/7: the workload started (cwd %q): want it refused:\n%v", strings.TrimSpace(r.Stdout), r)
					}
				}},
		} {
			t.Run(c.name, func(t *testing.T) {
				ref := h.image(t, "hostile/"+c.name, c.layers, c.cfg, testenv.FaultNone)
				rlOKEnv(t, h.v, h.env, "pull", "-q", ref)
				defer h.rmi(t, ref)
				for _, rm := range [][]string{{"--rm"}, {"--name", "kept-" + c.name}} {
					before := snapshot(t, h.v, h.env)
					r := rlEnv(t, h.v, h.env, append(append([]string{"run"}, rm...), ref)...)
					t.Logf("CASE %s (%s): exit %d: %s", c.name, rm[0], r.Code, strings.Join(errorLines(r.Stderr), " | "))
					if c.check != nil {
						c.check(t, r)
					} else if ls := errorLines(r.Stderr); r.Code != c.code || len(ls) != 1 {
						t.Errorf("want exit %d and one line of error:\n%v", c.code, r)
					}
					after := snapshot(t, h.v, h.env)
					if rm[0] == "--rm" || c.code == 125 {
						before.diff(t, after)
					}
					rlEnv(t, h.v, h.env, "rm", "-f", "kept-"+c.name)
				}
				h.checkHostClean(t)
			})
		}
	})
	if fileHash(t, rlBin) != rlHash {
		t.Errorf("ESCAPE: the rl binary changed during the hostile config cases")
	}
}

func rlOKEnv(t *testing.T, u User, env []string, args ...string) Result {
	t.Helper()
	r := rlEnv(t, u, env, args...)
	if r.Code != 0 {
		t.Fatalf("%v", r)
	}
	return r
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestHostileRegistry: a registry that answers 500, truncates, stalls,
// redirects in a loop, lies about Content-Length or serves a blob that does
// not match its digest: rl pull says so in one line, exit 125, within a
// bounded time, and keeps nothing of the image.
func TestHostileRegistry(t *testing.T) {
	reg0, dir := startHostile(t)
	h := newHostileSetup(t, reg0, dir, full)
	for _, c := range []struct {
		name  string
		fault testenv.Fault
		run   bool   // rl run instead of rl pull
		re    string // the error line must match
		limit time.Duration
	}{
		{"registry-500-manifest", testenv.Fault500Manifest, false, `500|[Ii]nternal`, 30 * time.Second},
		{"registry-500-blob", testenv.Fault500Blob, false, `500|[Ii]nternal`, 30 * time.Second},
		{"registry-500-blob-run", testenv.Fault500Blob, true, `500|[Ii]nternal`, 30 * time.Second},
		{"registry-truncated-body", testenv.FaultTruncate, false, `EOF|truncat|short|incomplete`, 30 * time.Second},
		{"registry-redirect-loop", testenv.FaultRedirectLoop, false, `redirect`, 30 * time.Second},
		{"registry-10gb-content-length", testenv.FaultHugeLength, false, `.`, 60 * time.Second},
		{"registry-corrupt-blob", testenv.FaultCorrupt, false, `digest|sha256`, 30 * time.Second},
		{"registry-corrupt-blob-run", testenv.FaultCorrupt, true, `digest|sha256`, 30 * time.Second},
		{"registry-stall-mid-blob", testenv.FaultStall, false, `time|stall`, 60 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref := h.image(t, "bad/"+c.name, [][]testenv.LayerEntry{{reg("hello", "hello\n")}}, testenv.HostileConfig{Cmd: []string{"true"}}, c.fault)
			before := snapshot(t, h.v, h.env)
			args := []string{"pull", "-q", ref}
			if c.run {
				args = []string{"run", "--rm", "-q", ref}
			}
			start := time.Now()
			r := runAs(t, h.v, runOpts{Env: h.env, Timeout: c.limit}, rlBin, args...)
			took := time.Since(start).Round(100 * time.Millisecond)
			t.Logf("CASE %s: exit %d after %v: %s", c.name, r.Code, took, strings.Join(errorLines(r.Stderr), " | "))
			if r.TimedOut {
				t.Errorf("rl %s: still running after %v (killed): no timeout; it said:\n%v", strings.Join(args, " "), c.limit, r)
			} else {
				ls := errorLines(r.Stderr)
				if r.Code != 125 || len(ls) != 1 || !regexp.MustCompile(c.re).MatchString(ls[0]) {
					t.Errorf("want exit 125 and one line of error matching %s (in %v):\n%v", c.re, took, r)
				}
				if c.fault != testenv.Fault500Manifest {
					wantNotBlamed(t, r)
				}
			}
			// A killed rl may leave its helper a moment.
			time.Sleep(500 * time.Millisecond)
			before.diff(t, snapshot(t, h.v, h.env))
			if du := dirSize(filepath.Join(h.v.Home, ".local", "share", "rl")); du > 64<<20 {
				t.Errorf("the store holds %d MB after the failed pull", du>>20)
			}
		})
	}
}

// dirSize is the apparent size of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if st, err := os.Lstat(p); err == nil {
				n += st.Sys().(*syscall.Stat_t).Blocks * 512
			}
		}
		return nil
	})
	return n
}

// TestHostileFlags: bad flags and malformed references: one line of error,
// exit 125, no stdout, the store unchanged.
func TestHostileFlags(t *testing.T) {
	u := full
	rlOK(t, u, "pull", "-q", "busybox")
	long := strings.Repeat("x", 100)
	for _, c := range []struct {
		name  string
		names []string // the error must contain each
		args  []string
	}{
		{"run-empty-image", nil, []string{"run", "--rm", "", "true"}},
		{"run-uppercase-repo", []string{"UPPER/case"}, []string{"run", "--rm", "UPPER/case", "true"}},
		{"run-bad-digest", []string{"sha256:bad"}, []string{"run", "--rm", "busybox@sha256:bad", "true"}},
		{"run-unknown-digest", nil, []string{"run", "--rm", "busybox@sha256:" + strings.Repeat("0", 64), "true"}},
		{"run-empty-tag", nil, []string{"run", "--rm", "busybox:", "true"}},
		{"run-two-tags", nil, []string{"run", "--rm", "busybox:a:b", "true"}},
		{"run-space-in-ref", nil, []string{"run", "--rm", "busy box", "true"}},
		{"pull-colons", nil, []string{"pull", "::::"}},
		{"pull-too-long-name", nil, []string{"pull", strings.Repeat("a", 300)}},
		{"pull-url-scheme", nil, []string{"pull", "http://busybox"}},
		{"pull-unknown-transport", nil, []string{"pull", "nosuchtransport://busybox"}},
		{"pull-pull-never", nil, []string{"run", "--rm", "--pull=never", "nosuchimage" + hostileToken, "true"}},
		{"publish-port-out-of-range", []string{"99999"}, []string{"run", "--rm", "-p", "99999:80", "busybox", "true"}},
		{"publish-ctr-port-out-of-range", []string{"70000"}, []string{"run", "--rm", "-p", "8080:70000", "busybox", "true"}},
		{"publish-not-a-port", []string{"abc"}, []string{"run", "--rm", "-p", "abc", "busybox", "true"}},
		{"publish-bad-ip", []string{"1.2.3.4.5"}, []string{"run", "--rm", "-p", "1.2.3.4.5:8080:80", "busybox", "true"}},
		{"publish-bad-proto", []string{"bogus"}, []string{"run", "--rm", "-p", "8080:80/bogus", "busybox", "true"}},
		{"publish-bad-range", nil, []string{"run", "--rm", "-p", "8010-8000:80", "busybox", "true"}},
		{"network-tiny-mtu", []string{"mtu"}, []string{"run", "--rm", "--network", "slirp:mtu=10", "busybox", "true"}},
		{"network-mtu-not-a-number", []string{"mtu"}, []string{"run", "--rm", "--network", "slirp:mtu=abc", "busybox", "true"}},
		{"network-unknown-option", []string{"nosuchopt"}, []string{"run", "--rm", "--network", "slirp:nosuchopt=1", "busybox", "true"}},
		{"network-unknown-mode", []string{"bogus"}, []string{"run", "--rm", "--network", "bogus", "busybox", "true"}},
		{"network-bad-cidr", []string{"cidr"}, []string{"run", "--rm", "--network", "slirp:cidr=300.0.0.0/99", "busybox", "true"}},
		{"network-container-nosuch", []string{"nosuch"}, []string{"run", "--rm", "--network", "container:nosuch", "busybox", "true"}},
		{"dns-not-an-ip", []string{"notanip"}, []string{"run", "--rm", "--dns", "notanip", "busybox", "true"}},
		{"cap-add-unknown", []string{"NOPE"}, []string{"run", "--rm", "--cap-add", "NOPE", "busybox", "true"}},
		{"cap-drop-unknown", []string{"NOPE"}, []string{"run", "--rm", "--cap-drop", "NOPE", "busybox", "true"}},
		{"security-opt-unknown", []string{"x"}, []string{"run", "--rm", "--security-opt", "x", "busybox", "true"}},
		{"security-opt-seccomp-missing-file", nil, []string{"run", "--rm", "--security-opt", "seccomp=/nonexistent.json", "busybox", "true"}},
		{"volume-relative-destination", []string{"relative"}, []string{"run", "--rm", "-v", "/etc:relative", "busybox", "true"}},
		{"volume-empty-destination", nil, []string{"run", "--rm", "-v", "/etc:", "busybox", "true"}},
		{"tmpfs-bad-option", []string{"bogus"}, []string{"run", "--rm", "--tmpfs", "/x:bogus", "busybox", "true"}},
		{"tmpfs-relative", []string{"relative"}, []string{"run", "--rm", "--tmpfs", "relative", "busybox", "true"}},
		{"env-file-under-dev-null", []string{"/dev/null/x"}, []string{"run", "--rm", "--env-file", "/dev/null/x", "busybox", "true"}},
		{"env-file-directory", []string{"/etc"}, []string{"run", "--rm", "--env-file", "/etc", "busybox", "true"}},
		{"name-with-space", []string{"a b"}, []string{"run", "--rm", "--name", "a b", "busybox", "true"}},
		{"name-with-slash", []string{"a/b"}, []string{"run", "--rm", "--name", "a/b", "busybox", "true"}},
		{"hostname-100-chars", nil, []string{"run", "--rm", "--hostname", long, "busybox", "true"}},
		{"hostname-bad-chars", nil, []string{"run", "--rm", "--hostname", "bad_host!", "busybox", "true"}},
		{"workdir-relative", []string{"relative"}, []string{"run", "--rm", "-w", "relative", "busybox", "true"}},
		{"user-nosuch-group", []string{"nosuchgroup"}, []string{"run", "--rm", "-u", "0:nosuchgroup", "busybox", "true"}},
		{"user-empty-name", nil, []string{"run", "--rm", "-u", ":", "busybox", "true"}},
		{"pid-container-nosuch", []string{"nosuch"}, []string{"run", "--rm", "--pid", "container:nosuch", "busybox", "true"}},
		{"pid-bogus", []string{"bogus"}, []string{"run", "--rm", "--pid", "bogus", "busybox", "true"}},
		{"ipc-bogus", []string{"bogus"}, []string{"run", "--rm", "--ipc", "bogus", "busybox", "true"}},
		{"uts-container-nosuch", []string{"nosuch"}, []string{"run", "--rm", "--uts", "container:nosuch", "busybox", "true"}},
		{"cgroupns-bogus", []string{"bogus"}, []string{"run", "--rm", "--cgroupns", "bogus", "busybox", "true"}},
		{"userns-host", []string{"host"}, []string{"run", "--rm", "--userns", "host", "busybox", "true"}},
		{"userns-bogus", []string{"bogus"}, []string{"run", "--rm", "--userns", "bogus", "busybox", "true"}},
		{"stop-timeout-not-a-number", []string{"stop-timeout"}, []string{"run", "--rm", "--stop-timeout", "x", "busybox", "true"}},
		{"kill-unknown-signal", []string{"NOPE"}, []string{"kill", "-s", "NOPE", "nosuch"}},
		{"kill-signal-out-of-range", []string{"99"}, []string{"kill", "-s", "99", "nosuch"}},
		{"stop-time-not-a-number", nil, []string{"stop", "-t", "x", "nosuch"}},
		{"logs-tail-not-a-number", nil, []string{"logs", "--tail", "x", "nosuch"}},
		{"rm-nosuch", []string{"nosuch"}, []string{"rm", "nosuch" + hostileToken}},
		{"rmi-nosuch", []string{"nosuch"}, []string{"rmi", "nosuch" + hostileToken}},
		// podman prints [] on stdout too: that is allowed below.
		{"inspect-nosuch", []string{"nosuch"}, []string{"inspect", "nosuch" + hostileToken}},
		{"exec-nosuch", []string{"nosuch"}, []string{"exec", "nosuch" + hostileToken, "true"}},
		{"load-empty-file", []string{"/dev/null"}, []string{"load", "-i", "/dev/null"}},
		{"load-directory", []string{"/etc"}, []string{"load", "-i", "/etc"}},
		{"unknown-command", []string{"nosuchcommand"}, []string{"nosuchcommand"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := snapshot(t, u, nil)
			r := rl(t, u, c.args...)
			t.Logf("CASE %s: exit %d: %s", c.name, r.Code, strings.Join(errorLines(r.Stderr), " | "))
			ls := errorLines(r.Stderr)
			if r.Code != 125 || len(ls) != 1 || (r.Stdout != "" && !(c.args[0] == "inspect" && r.Stdout == "[]\n")) {
				t.Errorf("want exit 125, no stdout and one line on stderr:\n%v", r)
			}
			for _, n := range c.names {
				if !strings.Contains(r.Stderr, n) {
					t.Errorf("the error does not name %q:\n%v", n, r)
				}
			}
			before.diff(t, snapshot(t, u, nil))
		})
	}
}
