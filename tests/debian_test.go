package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rlcontainers/rl/tests/testenv"
)

// debianRef is the Debian image as users name it; through the users'
// registries.conf it is docker.io/library/debian:bookworm, served by the
// test registry.
const debianRef = "debian:bookworm"

var (
	debianOnce sync.Once
	debianErr  error
)

// needDebian makes debian:bookworm pullable from the test registry, built
// with debootstrap the first time a test of this run needs it (about a
// minute; see testenv.BuildDebian). With RL_TEST_CACHE set, the image's OCI
// layout is kept in that directory and reused by later runs.
func needDebian(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the Debian image is built with debootstrap, which needs root")
	}
	debianOnce.Do(func() {
		start := time.Now()
		layout, cached, err := debianLayout()
		if err != nil {
			debianErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := testenv.Push(ctx, layout, registryAddr+"/library/debian:bookworm"); err != nil {
			debianErr = err
			return
		}
		how := "built with debootstrap"
		if cached {
			how = "from RL_TEST_CACHE"
		}
		fmt.Fprintf(os.Stderr, "rl integration tests: debian:bookworm %s (%s) and pushed in %v\n", how, layout, time.Since(start).Round(time.Second))
	})
	if debianErr != nil {
		t.Fatalf("Debian image: %v", debianErr)
	}
}

// debianLayout returns the OCI layout of the Debian image: the one in
// $RL_TEST_CACHE when there is one (BuildDebian only ever leaves complete
// layouts there), else a fresh build (into $RL_TEST_CACHE when set, into the
// run's images directory otherwise).
func debianLayout() (layout string, cached bool, err error) {
	dir := filepath.Join(baseDir, "images")
	if c := os.Getenv("RL_TEST_CACHE"); c != "" {
		dir = c
		layout = filepath.Join(c, testenv.DebianLayoutName)
		if _, _, err := testenv.Digests(layout); err == nil {
			return layout, true, nil
		}
	}
	layout, err = testenv.BuildDebian(dir)
	return layout, false, err
}

// debianOwners are files debootstrap leaves with owners other than root
// (found by inspecting the rootfs), as `stat -c '%u:%g %G %a %n'` shows them
// in the container.
var debianOwners = []string{
	"0:42 shadow 640 /etc/shadow",
	"0:42 shadow 640 /etc/gshadow",
	"0:42 shadow 2755 /usr/bin/chage",
	"0:43 utmp 664 /var/log/wtmp",
	"0:8 mail 2775 /var/mail",
	"0:50 staff 2775 /var/local",
}

func debianStatArgs(format string) []string {
	args := []string{"run", "--rm", debianRef, "stat", "-c", format}
	for _, l := range debianOwners {
		f := strings.Fields(l)
		args = append(args, f[len(f)-1])
	}
	return args
}

// TestDebianOwnership: in a Debian image, files owned by ids other than
// root keep their owners in the container (/etc/shadow is root:shadow,
// 0:42), and in the store on the host they belong to the user's subordinate
// range (gid 42 is host gid 200000+41).
func TestDebianOwnership(t *testing.T) {
	needDebian(t)
	u := full
	r := rlOK(t, u, debianStatArgs("%u:%g %G %a %n")...)
	if got, want := r.Stdout, strings.Join(debianOwners, "\n")+"\n"; got != want {
		t.Errorf("owners in the container: want\n%sgot:\n%v", want, r)
	}

	// The image's layer in the store, on the host.
	storage := filepath.Join(u.Home, ".local/share/rl/storage")
	var layers []string
	for _, pat := range []string{"overlay/*/diff", "vfs/dir/*"} {
		m, _ := filepath.Glob(filepath.Join(storage, pat))
		layers = append(layers, m...)
	}
	if len(layers) == 0 {
		t.Fatalf("no layer under %s (overlay/*/diff or vfs/dir/*)", storage)
	}
	wantGID := 200000 + 42 - 1
	found := 0
	for _, l := range layers {
		for _, c := range []struct {
			path string
			mode os.FileMode
		}{{"etc/shadow", 0o640}, {"usr/bin/chage", 0o755 | os.ModeSetgid}} {
			p := filepath.Join(l, c.path)
			st, err := os.Lstat(p)
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			found++
			sys := st.Sys().(*syscall.Stat_t)
			if int(sys.Uid) != u.UID || int(sys.Gid) != wantGID || st.Mode() != c.mode {
				t.Errorf("%s on the host: %d:%d %v, want %d:%d (the user, and gid 42 mapped to %d+41) %v",
					p, sys.Uid, sys.Gid, st.Mode(), u.UID, wantGID, 200000, c.mode)
			}
		}
		// debootstrap leaves device nodes in /dev; an unprivileged store
		// cannot create them and must have skipped them.
		if st, err := os.Lstat(filepath.Join(l, "dev/null")); err == nil && st.Mode()&os.ModeDevice != 0 {
			t.Errorf("%s/dev/null is a device node in a rootless store", l)
		}
	}
	if found == 0 {
		t.Fatalf("no layer under %s holds etc/shadow", storage)
	}
}

// TestDebianRuns: a real distribution works: bash (the image's Cmd), apt,
// and the user name of uid 0 from the image's /etc/passwd; for both users.
func TestDebianRuns(t *testing.T) {
	needDebian(t)
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", debianRef, "bash", "-c", "echo $BASH_VERSION")
		if !regexp.MustCompile(`^5\.2\.\d+\(\d+\)-release\n$`).MatchString(r.Stdout) {
			t.Errorf("bash -c 'echo $BASH_VERSION': want Debian 12's bash 5.2:\n%v", r)
		}
		r = rlOK(t, u, "run", "--rm", debianRef, "apt-get", "--version")
		if !regexp.MustCompile(`^apt 2\.6\.\d+ \(amd64\)\n`).MatchString(r.Stdout) {
			t.Errorf("apt-get --version: want apt 2.6 (amd64):\n%v", r)
		}
		r = rlOK(t, u, "run", "--rm", debianRef, "id", "-nu")
		if r.Stdout != "root\n" {
			t.Errorf("id -nu: want root:\n%v", r)
		}
		// No command: the image's Cmd, bash, reads the script from stdin.
		r = rlWithStdin(t, u, "echo \"bash $BASH_VERSINFO\"; dpkg-query -W -f '${Version}\\n' base-files\n", "run", "--rm", "-i", debianRef)
		if r.Code != 0 || !regexp.MustCompile(`^bash 5\n12\.\d+`).MatchString(r.Stdout) {
			t.Errorf("rl run -i debian:bookworm (Cmd bash) with a script on stdin: want bash 5 and base-files 12.x:\n%v", r)
		}
	})
}

// TestDebianSingleID: without subordinate ids the Debian image still runs,
// with every owner squashed to root (and the host user in the store), and
// the only thing on stderr is the one notice, even for the run that pulls.
func TestDebianSingleID(t *testing.T) {
	needDebian(t)
	if single.Name == "" {
		t.Skip("no user without subordinate ids: the tests run as their caller (RL_TEST_USER), not as root")
	}
	v, env := otherHome(t, single, registryAddr)
	r := rlEnv(t, v, env, "run", "--rm", debianRef, "stat", "-c", "%u:%g", "/etc/shadow", "/usr/bin/chage")
	if r.Code != 0 || r.Stdout != "0:0\n0:0\n" {
		t.Errorf("single-ID user, owners of /etc/shadow and /usr/bin/chage: want 0:0 for both:\n%v", r)
	}
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "rl: notice: using a single-ID user namespace") {
		t.Errorf("single-ID user: want exactly one line on stderr, the notice:\n%v", r)
	}
	r = rlEnv(t, v, env, "run", "--rm", debianRef, "stat", "-c", "%g", "/etc/shadow")
	if r.Code != 0 || r.Stdout != "0\n" {
		t.Errorf("stat -c %%g /etc/shadow: want 0:\n%v", r)
	}
	if lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "rl: notice:") {
		t.Errorf("single-ID user: want exactly one line on stderr, the notice:\n%v", r)
	}
	r = rlEnv(t, v, env, "run", "--rm", debianRef, "bash", "-c", "echo $BASH_VERSION; id -nu")
	if r.Code != 0 || !regexp.MustCompile(`^5\.2\.\d+.*\nroot\n$`).MatchString(r.Stdout) {
		t.Errorf("single-ID user, bash and id -nu:\n%v", r)
	}

	// In the store on the host, the files are the user's own.
	// overlay/ID/diff/etc/shadow or vfs/dir/ID/etc/shadow
	m, _ := filepath.Glob(filepath.Join(v.Home, ".local/share/rl/storage/*/*/*/etc/shadow"))
	if len(m) == 0 {
		t.Fatalf("no etc/shadow in the store under %s", v.Home)
	}
	for _, p := range m {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); int(sys.Uid) != single.UID || int(sys.Gid) != single.GID {
			t.Errorf("%s on the host: %d:%d, want the user's %d:%d", p, sys.Uid, sys.Gid, single.UID, single.GID)
		}
	}
}
