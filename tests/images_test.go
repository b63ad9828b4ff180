package tests

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rlcontainers/rl/tests/testenv"
)

// otherHome gives u a second, empty HOME whose registries.conf mirrors
// docker.io from registry (host:port), with its own run directory
// (XDG_RUNTIME_DIR): a store of its own, with no image in it. It returns the
// user with that HOME and the environment to add to its commands.
func otherHome(t *testing.T, u User, registry string) (User, []string) {
	t.Helper()
	home := userDir(t, u, "home")
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WriteUserConfig(home, registry); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(home, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	if u.credential() != nil {
		if err := os.Chown(run, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}
	v := u
	v.Home = home
	return v, []string{"XDG_RUNTIME_DIR=" + run}
}

// offlineStore is otherHome with no registry reachable and the busybox
// image loaded from its archive.
func offlineStore(t *testing.T, u User) (User, []string) {
	t.Helper()
	v, env := otherHome(t, u, "127.0.0.1:1")
	if r := rlEnv(t, v, env, "load", "-q", "-i", dockerArchive); r.Code != 0 {
		t.Fatalf("%v", r)
	}
	return v, env
}

// rlEnv is rl run as u with env added.
func rlEnv(t *testing.T, u User, env []string, args ...string) Result {
	t.Helper()
	return runAs(t, u, runOpts{Env: env}, rlBin, args...)
}

// imageRow is the `rl images` row of repo:tag, "" when none.
func imageRow(out, repo, tag string) string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == repo && f[1] == tag {
			return l
		}
	}
	return ""
}

// busyboxShortID is the 12 hex digits `rl images` shows for the test image.
func busyboxShortID() string { return strings.TrimPrefix(busyboxID, "sha256:")[:12] }

// TestPullQuietPrintsID: rl pull -q prints the image id and nothing else;
// rl images lists docker.io/library/busybox latest with that id.
func TestPullQuietPrintsID(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "pull", "-q", "busybox")
		if r.Stdout != strings.TrimPrefix(busyboxID, "sha256:")+"\n" {
			t.Fatalf("rl pull -q: want only the id %s:\n%v", busyboxID, r)
		}
		r = rlOK(t, u, "images")
		row := imageRow(r.Stdout, "docker.io/library/busybox", "latest")
		if row == "" || strings.Fields(row)[2] != busyboxShortID() {
			t.Fatalf("rl images: want docker.io/library/busybox latest %s:\n%v", busyboxShortID(), r)
		}
	})
}

// TestPullInEmptyStore: a pull into an empty store (not -q) succeeds and is
// quiet about progress when stdout is not a terminal.
func TestPullInEmptyStore(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		v, env := otherHome(t, u, registryAddr)
		r := rlEnv(t, v, env, "pull", "busybox")
		if r.Code != 0 || !strings.Contains(r.Stdout+r.Stderr, strings.TrimPrefix(busyboxID, "sha256:")) {
			t.Fatalf("rl pull busybox into an empty store: want exit 0 and the id:\n%v", r)
		}
		// Issue 2: "progress bars on a terminal and quiet otherwise".
		if strings.Contains(r.Stdout+r.Stderr, "\r") || strings.Contains(r.Stderr, "Copying blob") || len(errorLines(r.Stderr)) != 0 {
			t.Errorf("rl pull with no terminal: want no progress output on stderr:\n%v", r)
		}
		r = rlEnv(t, v, env, "run", "--rm", "--pull=never", "busybox", "echo", "pulled")
		if r.Code != 0 || r.Stdout != "pulled\n" {
			t.Fatalf("%v", r)
		}
	})
}

// TestRmi: rl rmi busybox removes the image; rl images no longer lists it.
func TestRmi(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		rlOK(t, u, "pull", "-q", "busybox")
		t.Cleanup(func() { rl(t, u, "pull", "-q", "busybox") })
		rlOK(t, u, "rmi", "busybox")
		r := rlOK(t, u, "images")
		if strings.Contains(r.Stdout, "busybox") {
			t.Fatalf("rl images after rl rmi busybox still lists it:\n%v", r)
		}
		r = rl(t, u, "rmi", "busybox")
		if r.Code != 125 && r.Code != 1 || !strings.Contains(r.Stderr, "busybox") {
			t.Fatalf("rl rmi of a missing image: want an error naming it:\n%v", r)
		}
	})
}

// TestLoadDockerArchive: rl load -i of a docker-archive makes busybox
// runnable with --pull=never.
func TestLoadDockerArchive(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		rl(t, u, "rmi", "busybox")
		t.Cleanup(func() { rl(t, u, "pull", "-q", "busybox") })
		r := rlOK(t, u, "load", "-i", dockerArchive)
		if !strings.Contains(r.Stdout, "busybox") {
			t.Fatalf("rl load: want the loaded name on stdout:\n%v", r)
		}
		r = rlOK(t, u, "images")
		row := imageRow(r.Stdout, "docker.io/library/busybox", "latest")
		if row == "" || strings.Fields(row)[2] != busyboxShortID() {
			t.Fatalf("rl images after load: want docker.io/library/busybox latest %s:\n%v", busyboxShortID(), r)
		}
		r = rlOK(t, u, "run", "--rm", "--pull=never", "busybox", "echo", "loaded")
		if r.Stdout != "loaded\n" {
			t.Fatalf("%v", r)
		}
		wantImageConfig(t, u, nil, "busybox")
	})
}

// wantImageConfig: a run of ref gets the test image's config: its Env
// (PATH, not rl's default) and its Cmd (sh, reading stdin).
func wantImageConfig(t *testing.T, u User, env []string, ref string) {
	t.Helper()
	r := runAs(t, u, runOpts{Env: env, Stdin: "echo $PATH; echo cmd-ran\n"}, rlBin, "run", "--rm", "-i", "--pull=never", ref)
	if r.Code != 0 || r.Stdout != "/usr/sbin:/usr/bin:/sbin:/bin\ncmd-ran\n" {
		t.Fatalf("run %s without a command: want the image's PATH and its Cmd (sh) reading stdin:\n%v", ref, r)
	}
}

// TestLoadOCIArchive: rl load -i of an oci-archive (no name in it) gives an
// image that runs by the id or name rl load printed.
func TestLoadOCIArchive(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		v, env := otherHome(t, u, "127.0.0.1:1")
		r := rlEnv(t, v, env, "load", "-i", ociArchive)
		if r.Code != 0 {
			t.Fatalf("%v", r)
		}
		m := regexp.MustCompile(`(?m)^Loaded image(?:\(s\))?:\s*(\S+)\s*$`).FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Fatalf("rl load: want `Loaded image: NAME-OR-ID`:\n%v", r)
		}
		ref := strings.TrimPrefix(m[1], "sha256:")
		if ok, _ := regexp.MatchString(`^[0-9a-f]{64}$`, ref); ok && ref != strings.TrimPrefix(busyboxID, "sha256:") {
			t.Fatalf("rl load printed id %s, the image's is %s:\n%v", ref, busyboxID, r)
		}
		if im := rlEnv(t, v, env, "images", "-q"); im.Code != 0 || im.Stdout != busyboxShortID()+"\n" {
			t.Fatalf("rl images -q after load: want %s:\n%v", busyboxShortID(), im)
		}
		r = rlEnv(t, v, env, "run", "--rm", "--pull=never", ref, "echo", "loaded")
		if r.Code != 0 || r.Stdout != "loaded\n" {
			t.Fatalf("run the loaded image by %q:\n%v", ref, r)
		}
		r = rlEnv(t, v, env, "run", "--rm", "--pull=never", busyboxShortID(), "echo", "by id")
		if r.Code != 0 || r.Stdout != "by id\n" {
			t.Fatalf("run the loaded image by its short id:\n%v", r)
		}
		wantImageConfig(t, v, env, busyboxShortID())
	})
}

// TestLoadManifestWithoutMediaType: an OCI manifest without its
// "mediaType" (the spec only recommends it) is one rl-core does not read
// itself: the image library reads the config (rl-image, asked by rl-core),
// and the image runs with its PATH and Cmd all the same.
func TestLoadManifestWithoutMediaType(t *testing.T) {
	dir := filepath.Join(baseDir, "images", "no-media-type")
	archive := filepath.Join(baseDir, "images", "busybox-oci-no-media-type.tar")
	if err := testenv.StripManifestMediaType(busyboxLayout, dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := testenv.SaveArchive(ctx, dir, "oci-archive:"+archive); err != nil {
		t.Fatal(err)
	}
	forEachUser(t, func(t *testing.T, u User) {
		v, env := otherHome(t, u, "127.0.0.1:1")
		rlOKEnv(t, v, env, "load", "-i", archive)
		manifests, _ := filepath.Glob(filepath.Join(v.Home, ".local/share/rl/storage/*-images/*/manifest"))
		if len(manifests) != 1 {
			t.Fatalf("one image's manifest in the store: found %v", manifests)
		}
		if b, err := os.ReadFile(manifests[0]); err != nil || bytes.Contains(b, []byte(`"mediaType":"application/vnd.oci.image.manifest`)) {
			t.Fatalf("the stored manifest must have no media type of its own (%v):\n%s", err, b)
		}
		wantImageConfig(t, v, env, busyboxShortID())
	})
}

// TestPullPolicy: --pull=never with a missing image fails 125 naming it;
// --pull=missing uses the local image; --pull=always goes to the registry
// even then (in a HOME whose registry is unreachable, it fails).
func TestPullPolicy(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		v, env := otherHome(t, u, "127.0.0.1:1")
		r := rlEnv(t, v, env, "run", "--rm", "--pull=never", "busybox", "true")
		if r.Code != 125 || !strings.Contains(r.Stderr, "busybox") {
			t.Fatalf("--pull=never, no image: want exit 125 naming busybox:\n%v", r)
		}
		if im := rlEnv(t, v, env, "images", "-q"); im.Stdout != "" {
			t.Fatalf("--pull=never stored an image:\n%v", im)
		}
		if r := rlEnv(t, v, env, "load", "-q", "-i", dockerArchive); r.Code != 0 {
			t.Fatalf("%v", r)
		}
		r = rlEnv(t, v, env, "run", "--rm", "busybox", "echo", "local")
		if r.Code != 0 || r.Stdout != "local\n" {
			t.Fatalf("--pull=missing with the image present must not need the registry:\n%v", r)
		}
		r = rlEnv(t, v, env, "run", "--rm", "--pull=always", "busybox", "echo", "pulled")
		if r.Code != 125 || r.Stdout != "" {
			t.Fatalf("--pull=always with an unreachable registry: want exit 125 (it must pull):\n%v", r)
		}

		// With the test registry, --pull=always pulls and runs.
		r = rlOK(t, u, "run", "--rm", "--pull=always", "busybox", "echo", "pulled")
		if r.Stdout != "pulled\n" {
			t.Fatalf("%v", r)
		}
	})
}

// TestShortNameConfigChange: rl keeps what a short name resolved to (the
// registries configuration is costly to parse), but a change to
// registries.conf takes effect at the next command: an alias makes a name
// that was not in the store find busybox, and removing it undoes that.
func TestShortNameConfigChange(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		v, env := offlineStore(t, u)
		conf := filepath.Join(v.Home, ".config", "containers", "registries.conf")
		orig, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		missing := func(when string) {
			t.Helper()
			r := rlEnv(t, v, env, "run", "--rm", "--pull=never", "mybox", "true")
			if r.Code != 125 || !strings.Contains(r.Stderr, "--pull=never") {
				t.Fatalf("%s: want mybox not in the store (exit 125):\n%v", when, r)
			}
		}
		for i := 0; i < 2; i++ { // the second from what the first kept
			missing("no alias")
		}
		writeUserFile(t, v, conf, string(orig)+"\n[aliases]\n\"mybox\" = \"docker.io/library/busybox\"\n")
		for i := 0; i < 2; i++ {
			if r := rlEnv(t, v, env, "run", "--rm", "--pull=never", "mybox", "echo", "aliased"); r.Code != 0 || r.Stdout != "aliased\n" {
				t.Fatalf("mybox aliased to busybox: %v", r)
			}
		}
		writeUserFile(t, v, conf, string(orig))
		missing("alias removed")
	})
}

// TestRmiForceRunning: rl rmi -f of an image running containers use (a
// kept one and an --rm one) stops them first, as podman's does: their
// workloads end, no container is left, and the image goes. (It deleted a
// kept one's layer under its running workload.)
func TestRmiForceRunning(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		t.Cleanup(func() { rl(t, u, "pull", "-q", "busybox") })
		before := psIDs(t, u)
		var pids []int
		for _, args := range [][]string{{"rmi-kept-" + u.Name}, {"rmi-rm-" + u.Name, "--rm"}} {
			detach(t, u, nil, args[0], append(args[1:], "busybox", "sleep", "1000")...)
			pids = append(pids, inspect(t, u, nil, args[0]).State.Pid)
		}
		if r := rl(t, u, "rmi", "-f", "busybox"); r.Code != 0 {
			t.Fatalf("rl rmi -f busybox with running containers: want exit 0:\n%v", r)
		}
		for _, pid := range pids {
			if !waitGone(pid, 5*time.Second) {
				t.Errorf("a workload (pid %d) still runs after rl rmi -f of its image", pid)
			}
		}
		if after := psIDs(t, u); after != before {
			t.Errorf("rl ps -a -q was %q, after rl rmi -f %q", before, after)
		}
		if r := rlOK(t, u, "images"); strings.Contains(r.Stdout, "busybox") {
			t.Errorf("busybox still listed after rl rmi -f:\n%v", r)
		}
	})
}
