// Package tests drives the built rl binary as non-root users, the way people
// use it: `rl run busybox ...` against a local docker-registry that mirrors
// docker.io. It never imports rl's packages.
//
// Run as root (CI does): TestMain builds rl, creates the users rltest (with
// subordinate ids 200000:65536) and rlsingle (none), gives each a fresh HOME,
// builds the busybox image from busybox-static, serves it from
// docker-registry on 127.0.0.1 and writes both users' registries.conf.
// As a non-root user, set RL_TEST_USER=$USER to run the tests as yourself
// (the single-id user's tests are then skipped).
//
// Environment: RL_BINARY uses that rl instead of building one; RL_TEST_DIR is
// where the run's files go (default /tmp; every ancestor must be searchable
// by the test users); RL_TEST_KEEP=1 keeps them afterwards.
package tests

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rlcontainers/rl/tests/testenv"
)

// The environment TestMain sets up; read-only for tests.
var (
	// rlBin is the rl binary under test, readable and executable by all.
	rlBin string
	// full has subordinate id ranges; single has none (the fallback path).
	full, single User
	// registryAddr is the test registry, host:port; docker.io/library/busybox
	// resolves to it through the users' registries.conf.
	registryAddr string
	// busyboxManifest and busyboxID are the digests of the test image's
	// manifest and config (the image ID).
	busyboxManifest, busyboxID string
	// dockerArchive and ociArchive hold the busybox image for `rl load`:
	// a docker-archive tagged docker.io/library/busybox:latest and an
	// oci-archive; both readable by every user.
	dockerArchive, ociArchive string
	// busyboxLayout is the OCI layout the busybox image was built in.
	busyboxLayout string
	// baseDir holds everything the run creates.
	baseDir string
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 && os.Getenv("RL_TEST_USER") == "" {
		fmt.Fprintln(os.Stderr, "SKIP rl integration tests: they create users and run rl as them, which needs root;"+
			" run as root (sudo make test) or set RL_TEST_USER=$USER to run them as yourself")
		os.Exit(0)
	}
	env, err := setUp()
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "rl integration tests: set-up failed:", err)
	} else {
		tmp, _ := os.Stat(os.TempDir())
		code = m.Run()
		if err := sameOwnerAndMode(tmp, os.TempDir()); err != nil {
			fmt.Fprintln(os.Stderr, "rl integration tests:", err)
			code = 1
		}
	}
	env.tearDown()
	os.Exit(code)
}

// sameOwnerAndMode says whether the shared directory dir (/tmp) still has
// the owner and mode it had before the tests (before: its FileInfo then):
// a test that handed /tmp to a test user would let it delete everyone's
// files there.
func sameOwnerAndMode(before os.FileInfo, dir string) error {
	after, err := os.Stat(dir)
	if before == nil || err != nil {
		return nil
	}
	b, a := before.Sys().(*syscall.Stat_t), after.Sys().(*syscall.Stat_t)
	if b.Uid != a.Uid || b.Gid != a.Gid || before.Mode() != after.Mode() {
		return fmt.Errorf("%s changed from %d:%d %v to %d:%d %v during the tests", dir, b.Uid, b.Gid, before.Mode(), a.Uid, a.Gid, after.Mode())
	}
	return nil
}

// testEnv is what tearDown undoes.
type testEnv struct {
	registry *testenv.Registry
}

func setUp() (*testEnv, error) {
	env := &testEnv{}
	base := os.Getenv("RL_TEST_DIR")
	if base == "" {
		base = "/tmp"
	}
	var err error
	if baseDir, err = os.MkdirTemp(base, "rl-tests-"); err != nil {
		return env, err
	}
	if err := os.Chmod(baseDir, 0o755); err != nil {
		return env, err
	}
	if err := checkSearchable(baseDir); err != nil {
		return env, err
	}
	for _, d := range []string{"bin", "images", "home"} {
		if err := os.Mkdir(filepath.Join(baseDir, d), 0o755); err != nil {
			return env, err
		}
	}

	if rlBin, err = installRL(filepath.Join(baseDir, "bin")); err != nil {
		return env, err
	}
	if err := setUpUsers(); err != nil {
		return env, err
	}

	layout, err := testenv.BuildBusybox(filepath.Join(baseDir, "images"))
	if err != nil {
		return env, err
	}
	busyboxLayout = layout
	if busyboxManifest, busyboxID, err = testenv.Digests(layout); err != nil {
		return env, err
	}
	if env.registry, err = testenv.StartRegistry(filepath.Join(baseDir, "registry")); err != nil {
		return env, err
	}
	registryAddr = env.registry.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := testenv.Push(ctx, layout, registryAddr+"/library/busybox:latest"); err != nil {
		return env, err
	}
	dockerArchive = filepath.Join(baseDir, "images", "busybox-docker.tar")
	if err := testenv.SaveArchive(ctx, layout, "docker-archive:"+dockerArchive+":busybox:latest"); err != nil {
		return env, err
	}
	ociArchive = filepath.Join(baseDir, "images", "busybox-oci.tar")
	if err := testenv.SaveArchive(ctx, layout, "oci-archive:"+ociArchive); err != nil {
		return env, err
	}
	for _, u := range testUsers() {
		if err := testenv.WriteUserConfig(u.Home, registryAddr); err != nil {
			return env, fmt.Errorf("config for %s: %w", u.Name, err)
		}
	}
	return env, nil
}

// rlBinaries are what `make` builds: rl, and the helpers it runs inside the
// user namespace (found beside it).
var rlBinaries = []string{"rl", "rl-core", "rl-image", "rl-net"}

// installRL builds rl and its helpers (or copies them from beside
// $RL_BINARY) into dir, mode 0755: the checkout may sit under /root, which
// the test users cannot search.
func installRL(dir string) (string, error) {
	if src := os.Getenv("RL_BINARY"); src != "" {
		for _, name := range rlBinaries {
			if err := copyExecutable(filepath.Join(filepath.Dir(src), name), filepath.Join(dir, name)); err != nil {
				return "", fmt.Errorf("RL_BINARY: %w", err)
			}
		}
		return filepath.Join(dir, "rl"), nil
	}
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	for _, name := range rlBinaries {
		var ldflags string
		if runtime.GOARCH == "amd64" {
			// As the Makefile links them (cmd/rl-core/entry_amd64.s,
			// cmd/rl/entry_amd64.s).
			switch name {
			case "rl-core":
				ldflags = "-E=main.joinEntry"
			case "rl":
				ldflags = "-E=main.fastEntry"
			}
		}
		if err := buildCmd(root, name, ldflags, filepath.Join(dir, name)); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "rl"), nil
}

// buildCmd builds ./cmd/NAME of the module at root into dst (mode 0755),
// statically, with rl's build tag and ldflags.
func buildCmd(root, name, ldflags, dst string) error {
	cmd := exec.Command("go", "build", "-tags", "containers_image_openpgp", "-ldflags="+ldflags, "-o", dst, "./cmd/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/%s: %w\n%s", name, err, out)
	}
	return os.Chmod(dst, 0o755)
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// setUpUsers fills full and single. As root it creates rltest and rlsingle;
// otherwise full is the caller ($RL_TEST_USER must name them) and single is
// left empty. Every user gets a fresh HOME under baseDir.
func setUpUsers() error {
	if os.Geteuid() != 0 {
		me, err := user.Current()
		if err != nil {
			return err
		}
		if want := os.Getenv("RL_TEST_USER"); want != me.Username {
			return fmt.Errorf("RL_TEST_USER=%s but running as %s: as non-root the tests can only run as yourself", want, me.Username)
		}
		full, err = newUser(me.Username, os.Getuid(), os.Getgid())
		return err
	}
	uid, gid, err := testenv.EnsureUser("rltest", true, 200000)
	if err != nil {
		return err
	}
	if full, err = newUser("rltest", uid, gid); err != nil {
		return err
	}
	if uid, gid, err = testenv.EnsureUser("rlsingle", false, 0); err != nil {
		return err
	}
	single, err = newUser("rlsingle", uid, gid)
	return err
}

func newUser(name string, uid, gid int) (User, error) {
	u := User{Name: name, UID: uid, GID: gid, Home: filepath.Join(baseDir, "home", name)}
	if err := testenv.MakeHome(u.Home, uid, gid); err != nil {
		return u, err
	}
	lu, err := user.Lookup(name)
	if err != nil {
		return u, err
	}
	ids, err := lu.GroupIds()
	if err != nil {
		return u, err
	}
	for _, s := range ids {
		g, err := strconv.Atoi(s)
		if err != nil {
			return u, err
		}
		u.Groups = append(u.Groups, uint32(g))
	}
	return u, nil
}

// checkSearchable fails when an ancestor of dir is not searchable by others
// (a TMPDIR under /root): the test users could not reach rl or their HOME.
func checkSearchable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by other users (mode %v): set RL_TEST_DIR to a directory they can reach", d, st.Mode().Perm())
		}
		if d == "/" {
			return nil
		}
	}
}

// tearDown stops the registry, kills whatever the run left running as the
// test users (rl processes and tmux servers carry the run's HOME), and
// removes the run's files unless RL_TEST_KEEP is set.
func (env *testEnv) tearDown() {
	if env.registry != nil {
		env.registry.Stop()
	}
	for _, u := range testUsers() {
		killLeftovers(u)
	}
	if baseDir == "" {
		return
	}
	if os.Getenv("RL_TEST_KEEP") != "" {
		fmt.Fprintln(os.Stderr, "rl integration tests: keeping", baseDir)
		return
	}
	if err := os.RemoveAll(baseDir); err != nil {
		fmt.Fprintln(os.Stderr, "rl integration tests: cleanup:", err)
	}
}

// killLeftovers kills u's processes that belong to this run. Other runs may
// use the same users at the same time, so it matches on HOME, not on uid
// alone (but for rl's keepers: another run's starts another); a
// container's processes die with their PID namespace's init.
func killLeftovers(u User) {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	home := []byte("HOME=" + u.Home + "\x00")
	for _, p := range procs {
		st, err := os.Stat(p)
		if err != nil || st.Sys().(*syscall.Stat_t).Uid != uint32(u.UID) {
			continue
		}
		// rl's keepers (userns/keeper.go) have no environment: by argv.
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		environ, err := os.ReadFile(filepath.Join(p, "environ"))
		if !strings.Contains(string(cmdline), "\x00__rl-keeper\x00") && (err != nil || !strings.Contains(string(environ), string(home))) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(p)); err == nil && pid != os.Getpid() {
			fmt.Fprintf(os.Stderr, "rl integration tests: killing leftover process %d of %s\n", pid, u.Name)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
