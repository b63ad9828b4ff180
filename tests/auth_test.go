package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rlcontainers/rl/tests/testenv"
)

// The account of the registry that wants authentication.
const (
	authUser     = "rltester"
	authPassword = "s3cret-pass"
)

// startAuthRegistry starts a docker-registry on 127.0.0.1 with HTTPS (a
// self-signed certificate no one trusts) and basic auth as authUser,
// serving library/busybox:latest (the test image, pushed with credentials);
// it is stopped when t ends. It returns host:port.
func startAuthRegistry(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	reg, err := testenv.StartAuthRegistry(filepath.Join(dir, "registry"), authUser, authPassword)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	// BuildBusybox is deterministic: the same image, under the same id.
	layout, err := testenv.BuildBusybox(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := testenv.PushAuth(ctx, layout, reg.Addr()+"/library/busybox:latest", authUser, authPassword); err != nil {
		t.Fatal(err)
	}
	// Without credentials the registry refuses even to list.
	if err := testenv.Push(ctx, layout, reg.Addr()+"/library/busybox:noauth"); err == nil {
		t.Fatalf("push to %s without credentials succeeded: the registry does not check auth", reg.Addr())
	}
	return reg.Addr()
}

// writeUserFileAll is writeUserFile that first makes path's missing parent
// directories (0700), all given to u.
func writeUserFileAll(t *testing.T, u User, path string, body []byte) {
	t.Helper()
	var made []string
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		made = append([]string{d}, made...)
	}
	for _, d := range made {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if u.credential() != nil {
			if err := os.Chown(d, u.UID, u.GID); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeUserFile(t, u, path, string(body))
}

// wantOneLineError fails t unless r is exit 125, no stdout, and one line of
// error (notices aside) matching re.
func wantOneLineError(t *testing.T, r Result, re string) {
	t.Helper()
	ls := errorLines(r.Stderr)
	t.Logf("`%s`: exit %d: %s", shellQuote(r.Args), r.Code, strings.TrimSpace(r.Stderr))
	if r.Code != 125 || r.Stdout != "" || len(ls) != 1 || !regexp.MustCompile(re).MatchString(ls[0]) {
		t.Errorf("want exit 125, no stdout and one line of error matching %s:\n%v", re, r)
	}
}

// wantFix fails t unless r's error names the fix (matches fix) and does not
// blame the image's name: the registry has the image, it refused rl.
func wantFix(t *testing.T, r Result, fix string) {
	t.Helper()
	if strings.Contains(r.Stderr, "no registry had it") || !regexp.MustCompile(fix).MatchString(r.Stderr) {
		t.Errorf("the error must name the fix (%s), not say the registry lacks the image:\n%v", fix, r)
	}
}

// wantNoImages fails t unless the store of u (with env) has no image.
func wantNoImages(t *testing.T, u User, env []string) {
	t.Helper()
	if r := rlEnv(t, u, env, "images", "-q"); r.Code != 0 || r.Stdout != "" {
		t.Errorf("the failed pull left an image behind:\n%v", r)
	}
}

// TestPullAuthTLS: rl pull from a registry with HTTPS (a self-signed
// certificate) and basic auth: refused without credentials, with a wrong
// password and with certificate verification on; accepted with --authfile
// and --tls-verify=false, and with auth.json in its default places; rl run
// pulls from it the same way. As the user with subordinate ids, each case
// in a HOME (and store) of its own.
func TestPullAuthTLS(t *testing.T) {
	u := full
	addr := startAuthRegistry(t)
	ref := addr + "/library/busybox"
	authJSON := testenv.AuthJSON(addr, authUser, authPassword)
	authFile := filepath.Join(userDir(t, u, "auth"), "auth.json")
	writeUserFile(t, u, authFile, string(authJSON))
	badFile := filepath.Join(userDir(t, u, "badauth"), "auth.json")
	writeUserFile(t, u, badFile, string(testenv.AuthJSON(addr, authUser, "wrong")))
	id := strings.TrimPrefix(busyboxID, "sha256:")

	wantPulled := func(t *testing.T, v User, env []string, r Result) {
		t.Helper()
		if r.Code != 0 || r.Stdout != id+"\n" {
			t.Fatalf("want exit 0 and the image id %s:\n%v", id, r)
		}
		im := rlEnv(t, v, env, "images")
		if row := imageRow(im.Stdout, ref, "latest"); row == "" || strings.Fields(row)[2] != busyboxShortID() {
			t.Fatalf("rl images: want %s latest %s:\n%v", ref, busyboxShortID(), im)
		}
	}

	t.Run("no credentials", func(t *testing.T) {
		v, env := otherHome(t, u, registryAddr)
		r := rlEnv(t, v, env, "pull", "-q", "--tls-verify=false", ref)
		wantOneLineError(t, r, `(?i)authenticat|unauthorized`)
		wantFix(t, r, `--authfile|auth\.json`)
		wantNoImages(t, v, env)
	})

	t.Run("wrong password", func(t *testing.T) {
		v, env := otherHome(t, u, registryAddr)
		r := rlEnv(t, v, env, "pull", "-q", "--tls-verify=false", "--authfile", badFile, ref)
		wantOneLineError(t, r, `(?i)authenticat|unauthorized`)
		wantFix(t, r, `--authfile|auth\.json`)
		wantNoImages(t, v, env)
	})

	t.Run("authfile", func(t *testing.T) {
		v, env := otherHome(t, u, registryAddr)
		r := rlEnv(t, v, env, "pull", "-q", "--tls-verify=false", "--authfile", authFile, ref)
		wantPulled(t, v, env, r)
	})

	// containers-auth.json(5): without --authfile, $XDG_RUNTIME_DIR/containers/auth.json
	// when XDG_RUNTIME_DIR is set, then $XDG_CONFIG_HOME (~/.config)/containers/auth.json.
	t.Run("auth.json in XDG_RUNTIME_DIR", func(t *testing.T) {
		v, env := otherHome(t, u, registryAddr)
		run := strings.TrimPrefix(env[0], "XDG_RUNTIME_DIR=")
		writeUserFileAll(t, u, filepath.Join(run, "containers", "auth.json"), authJSON)
		r := rlEnv(t, v, env, "pull", "-q", "--tls-verify=false", ref)
		wantPulled(t, v, env, r)
	})

	t.Run("auth.json in ~/.config without XDG_RUNTIME_DIR", func(t *testing.T) {
		// The harness's own environment: no XDG_RUNTIME_DIR.
		v, _ := otherHome(t, u, registryAddr)
		writeUserFileAll(t, u, filepath.Join(v.Home, ".config", "containers", "auth.json"), authJSON)
		r := rlEnv(t, v, nil, "pull", "-q", "--tls-verify=false", ref)
		wantPulled(t, v, nil, r)
	})

	t.Run("auth.json in ~/.config with XDG_RUNTIME_DIR", func(t *testing.T) {
		// $XDG_RUNTIME_DIR/containers/auth.json does not exist: the next place counts.
		v, env := otherHome(t, u, registryAddr)
		writeUserFileAll(t, u, filepath.Join(v.Home, ".config", "containers", "auth.json"), authJSON)
		r := rlEnv(t, v, env, "pull", "-q", "--tls-verify=false", ref)
		wantPulled(t, v, env, r)
	})

	// Without XDG_RUNTIME_DIR the first place is /run/containers/$UID/auth.json,
	// UID being the user's: rl must not look up root's (uid 0 in its user
	// namespace). These run in a mount namespace with a /run of their own.
	t.Run("auth.json in /run/containers/UID without XDG_RUNTIME_DIR", func(t *testing.T) {
		v, _ := otherHome(t, u, registryAddr)
		r := rlPrivateRun(t, v, fmt.Sprintf(`mkdir -p -m 700 /run/containers/%[1]d
printf '%%s' "$AUTH_JSON" > /run/containers/%[1]d/auth.json
chown -R %[1]d:%[2]d /run/containers/%[1]d`, u.UID, u.GID), string(authJSON),
			"pull", "-q", "--tls-verify=false", ref)
		wantPulled(t, v, nil, r)
	})

	t.Run("root's /run/containers/0/auth.json is not the user's", func(t *testing.T) {
		// What `podman login` as root leaves: a file the user cannot read.
		v, _ := otherHome(t, u, registryAddr)
		writeUserFileAll(t, u, filepath.Join(v.Home, ".config", "containers", "auth.json"), authJSON)
		setup := `mkdir -p -m 700 /run/containers/0
printf '%s' "$AUTH_JSON" > /run/containers/0/auth.json
chmod 600 /run/containers/0/auth.json`
		// It may not break pulls that need no credentials at all,
		r := rlPrivateRun(t, v, setup, string(authJSON), "pull", "-q", "busybox")
		if r.Code != 0 || r.Stdout != id+"\n" {
			t.Errorf("rl pull busybox from the open test registry, with root's auth.json on the machine:\n%v", r)
		}
		// nor hide the user's own.
		r = rlPrivateRun(t, v, setup, string(authJSON), "pull", "-q", "--tls-verify=false", ref)
		wantPulled(t, v, nil, r)
	})

	t.Run("root's 0700 run-containers dir", func(t *testing.T) {
		// What root's podman leaves: /run/containers itself unreadable,
		// so /run/containers/UID/auth.json fails with EACCES, not ENOENT.
		v, _ := otherHome(t, u, registryAddr)
		setup := `mkdir -m 700 /run/containers /run/containers/0`
		r := rlPrivateRun(t, v, setup, string(authJSON), "pull", "-q", "busybox")
		if r.Code != 0 || r.Stdout != id+"\n" {
			t.Errorf("rl pull busybox from the open test registry, with root's /run/containers (0700):\n%v", r)
		}
		writeUserFileAll(t, u, filepath.Join(v.Home, ".config", "containers", "auth.json"), authJSON)
		r = rlPrivateRun(t, v, setup, string(authJSON), "pull", "-q", "--tls-verify=false", ref)
		wantPulled(t, v, nil, r)
	})

	t.Run("certificate verified by default", func(t *testing.T) {
		v, env := otherHome(t, u, registryAddr)
		r := rlEnv(t, v, env, "pull", "-q", "--authfile", authFile, ref)
		wantOneLineError(t, r, `(?i)certificate|x509`)
		wantFix(t, r, `--tls-verify|certs\.d|insecure`)
		wantNoImages(t, v, env)
		r = rlEnv(t, v, env, "pull", "-q", "--tls-verify=true", "--authfile", authFile, ref)
		wantOneLineError(t, r, `(?i)certificate|x509`)
	})

	t.Run("rl run", func(t *testing.T) {
		v, env := otherHome(t, u, registryAddr)
		r := rlEnv(t, v, env, "run", "--rm", "--tls-verify=false", "--authfile", authFile, ref, "echo", "ok")
		if r.Code != 0 || r.Stdout != "ok\n" {
			t.Fatalf("want ok:\n%v", r)
		}
		// And without credentials rl run fails like rl pull.
		w, wenv := otherHome(t, u, registryAddr)
		r = rlEnv(t, w, wenv, "run", "--rm", "--tls-verify=false", ref, "echo", "ok")
		wantOneLineError(t, r, `(?i)authenticat|unauthorized`)
	})
}

// rlPrivateRun runs `rl ARGS` as u (u's environment, no XDG_RUNTIME_DIR) in
// a mount namespace of its own whose /run is an empty tmpfs, prepared first
// by the shell script setup, run as root with $AUTH_JSON set to authJSON. The
// machine's /run is not touched.
func rlPrivateRun(t *testing.T, u User, setup, authJSON string, args ...string) Result {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: a private /run in a mount namespace")
	}
	script := "mount -t tmpfs -o mode=755 rl-test-run /run\n" + setup + "\n" +
		`exec setpriv --reuid="$RL_UID" --regid="$RL_GID" --init-groups -- env -i "$@"`
	argv := []string{"-m", "--propagation", "private", "sh", "-ec", script, "sh"}
	argv = append(argv, u.env()...)
	argv = append(argv, rlBin)
	argv = append(argv, args...)
	root := User{Name: "root", UID: 0, Home: u.Home}
	return runAs(t, root, runOpts{Env: []string{
		fmt.Sprintf("RL_UID=%d", u.UID), fmt.Sprintf("RL_GID=%d", u.GID), "AUTH_JSON=" + authJSON,
	}}, "unshare", argv...)
}
