package tests

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rlcontainers/rl/tests/testenv"
)

// storeState is what a failed command must leave as it was: containers,
// images, layers (a partial pull leaves layers with no image) and the
// image library's temporary files.
type storeState struct {
	ps, images, layers, tmp string
}

func snapshot(t *testing.T, u User, env []string) storeState {
	t.Helper()
	ps := rlEnv(t, u, env, "ps", "-a", "-q")
	im := rlEnv(t, u, env, "images", "--quiet")
	if ps.Code != 0 || im.Code != 0 {
		t.Fatalf("store listing failed:\n%v\n%v", ps, im)
	}
	var layers []string
	files, _ := filepath.Glob(filepath.Join(u.Home, ".local/share/rl/storage/*-layers/layers.json"))
	for _, f := range files {
		var ls []struct {
			ID string `json:"id"`
		}
		if b, err := os.ReadFile(f); err == nil && json.Unmarshal(b, &ls) == nil {
			for _, l := range ls {
				layers = append(layers, l.ID)
			}
		}
	}
	sort.Strings(layers)
	return storeState{ps: ps.Stdout, images: im.Stdout, layers: strings.Join(layers, " "), tmp: strings.Join(ownedTemp(u), " ")}
}

// ownedTemp lists u's files in /var/tmp and /tmp whose names the image
// library uses for its temporary copies.
func ownedTemp(u User) []string {
	var out []string
	for _, pat := range []string{"/var/tmp/container_images_*", "/var/tmp/storage*", "/tmp/container_images_*"} {
		m, _ := filepath.Glob(pat)
		for _, p := range m {
			if st, err := os.Lstat(p); err == nil && int(st.Sys().(*syscall.Stat_t).Uid) == u.UID {
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (s storeState) diff(t *testing.T, after storeState) {
	t.Helper()
	if s.ps != after.ps {
		t.Errorf("containers left behind: rl ps -a -q was %q, now %q", s.ps, after.ps)
	}
	if s.images != after.images {
		t.Errorf("images changed: rl images -q was %q, now %q", s.images, after.images)
	}
	if s.layers != after.layers {
		t.Errorf("layers changed: were [%s], now [%s]", s.layers, after.layers)
	}
	if s.tmp != after.tmp {
		t.Errorf("temporary files left behind: were [%s], now [%s]", s.tmp, after.tmp)
	}
}

// errorLines is stderr without the single-ID user's notice (issue 2 asks for
// it, once per command).
func errorLines(stderr string) []string {
	var ls []string
	for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if l != "" && !strings.HasPrefix(l, "rl: notice:") {
			ls = append(ls, l)
		}
	}
	return ls
}

// checkBadInput runs rl ARGS and wants exit 125, no stdout, one error line
// containing each of names, and the store as it was.
func checkBadInput(t *testing.T, u User, names []string, args ...string) {
	t.Helper()
	before := snapshot(t, u, nil)
	r := rl(t, u, args...)
	ls := errorLines(r.Stderr)
	if r.Code != 125 || len(ls) != 1 || r.Stdout != "" {
		t.Errorf("want exit 125, no stdout and one line on stderr:\n%v", r)
	}
	for _, n := range names {
		if !strings.Contains(r.Stderr, n) {
			t.Errorf("the error does not name %q:\n%v", n, r)
		}
	}
	before.diff(t, snapshot(t, u, nil))
}

// TestBadInput: each bad input is one line, exit 125 and nothing left behind.
func TestBadInput(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		rlOK(t, u, "pull", "-q", "busybox")
		dir := userDir(t, u, "bad")
		truncated := filepath.Join(dir, "truncated.tar")
		b, err := os.ReadFile(dockerArchive)
		if err != nil {
			t.Fatal(err)
		}
		writeUserFile(t, u, truncated, string(b[:len(b)/2]))
		truncatedOCI := filepath.Join(dir, "truncated-oci.tar")
		if b, err = os.ReadFile(ociArchive); err != nil {
			t.Fatal(err)
		}
		writeUserFile(t, u, truncatedOCI, string(b[:len(b)*2/3]))
		random := filepath.Join(dir, "random.tar")
		junk := make([]byte, 64<<10)
		rand.Read(junk)
		writeUserFile(t, u, random, string(junk))
		profileJunk := filepath.Join(dir, "profile-junk.json")
		writeUserFile(t, u, profileJunk, "{not json")
		profileAction := filepath.Join(dir, "profile-action.json")
		writeUserFile(t, u, profileAction, `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_FOO"}]}`)

		for _, c := range []struct {
			name  string
			names []string
			args  []string
		}{
			{"no such image", []string{"nosuchimage", "docker.io/library/nosuchimage"}, []string{"run", "--rm", "nosuchimage", "true"}},
			{"pull no such image", []string{"nosuchimage", "docker.io/library/nosuchimage"}, []string{"pull", "nosuchimage"}},
			{"truncated docker-archive", []string{truncated}, []string{"load", "-i", truncated}},
			{"truncated oci-archive", []string{truncatedOCI}, []string{"load", "-i", truncatedOCI}},
			{"random bytes", []string{random}, []string{"load", "-i", random}},
			{"missing archive", []string{"/nonexistent.tar"}, []string{"load", "-i", "/nonexistent.tar"}},
			{"volume without colon", []string{"nocolon"}, []string{"run", "--rm", "-v", "nocolon", "busybox", "true"}},
			{"relative volume", []string{"relative:/x"}, []string{"run", "--rm", "-v", "relative:/x", "busybox", "true"}},
			{"missing volume source", []string{"/nonexistent"}, []string{"run", "--rm", "-v", "/nonexistent:/x", "busybox", "true"}},
			{"volume bad option", []string{"bogus"}, []string{"run", "--rm", "-v", "/tmp:/x:bogus", "busybox", "true"}},
			{"env without key", []string{"=x"}, []string{"run", "--rm", "-e", "=x", "busybox", "true"}},
			{"missing env-file", []string{"/nonexistent.env"}, []string{"run", "--rm", "--env-file", "/nonexistent.env", "busybox", "true"}},
			{"unknown user", []string{"nosuchuser"}, []string{"run", "--rm", "--user", "nosuchuser", "busybox", "true"}},
			{"workdir not makeable", []string{"/etc/passwd/sub"}, []string{"run", "--rm", "-w", "/etc/passwd/sub", "busybox", "true"}},
			{"unknown flag", []string{"--nosuchflag"}, []string{"run", "--nosuchflag", "busybox", "true"}},
			{"bad pull policy", []string{"sometimes"}, []string{"run", "--rm", "--pull=sometimes", "busybox", "true"}},
			{"seccomp profile not JSON", []string{profileJunk, "correct the profile"}, []string{"run", "--rm", "--security-opt", "seccomp=" + profileJunk, "busybox", "true"}},
			{"seccomp profile bad action", []string{profileAction, "SCMP_ACT_FOO", "correct the profile"}, []string{"run", "--rm", "--security-opt", "seccomp=" + profileAction, "busybox", "true"}},
			{"missing seccomp profile", []string{"/nonexistent.json"}, []string{"run", "--rm", "--security-opt", "seccomp=/nonexistent.json", "busybox", "true"}},
			// The same without --rm: no container may stay behind.
			{"unknown user, kept container", []string{"nosuchuser"}, []string{"run", "--user", "nosuchuser", "busybox", "true"}},
			{"workdir, kept container", []string{"/etc/passwd/sub"}, []string{"run", "-w", "/etc/passwd/sub", "busybox", "true"}},
		} {
			t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				checkBadInput(t, u, c.names, c.args...)
			})
		}
	})
}

// throttle is a TCP proxy to addr that sends the server's bytes at about
// 64 kB/s; reached tells when it has sent more than n of them.
type throttle struct {
	l       net.Listener
	sent    atomic.Int64
	reached chan struct{}
	once    sync.Once
}

func startThrottle(t *testing.T, addr string, n int64) *throttle {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &throttle{l: l, reached: make(chan struct{})}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c, addr, n)
		}
	}()
	return p
}

func (p *throttle) serve(c net.Conn, addr string, n int64) {
	defer c.Close()
	s, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer s.Close()
	go io.Copy(s, c)
	buf := make([]byte, 4096)
	for {
		k, err := s.Read(buf)
		if k > 0 {
			if _, werr := c.Write(buf[:k]); werr != nil {
				return
			}
			if p.sent.Add(int64(k)) > n {
				p.once.Do(func() { close(p.reached) })
			}
			time.Sleep(60 * time.Millisecond)
		}
		if err != nil {
			return
		}
	}
}

// TestPullInterrupted: Ctrl-C (SIGINT to rl's process group) during a pull
// is exit 125 with one line and no partial image; the next pull and run
// succeed.
func TestPullInterrupted(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		proxy := startThrottle(t, registryAddr, 200<<10)
		v, env := otherHome(t, u, proxy.l.Addr().String())
		before := snapshot(t, v, env)

		b := startRLEnv(t, v, env, "pull", "busybox")
		select {
		case <-proxy.reached:
		case <-b.done:
			t.Fatalf("rl pull ended before it was interrupted:\n%s", b.out.String())
		case <-time.After(60 * time.Second):
			t.Fatalf("the pull did not get 200 kB in 60 s")
		}
		// Ctrl-C: the terminal signals the foreground process group.
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGINT)
		code, out := b.wait(t, 15*time.Second)
		// Progress lines are TestPullInEmptyStore's business: count rl's
		// own lines here.
		_, stderr, _ := strings.Cut(out, "--- stderr:\n")
		var errs []string
		for _, l := range errorLines(stderr) {
			if strings.HasPrefix(l, "rl:") {
				errs = append(errs, l)
			}
		}
		if code != 125 || len(errs) != 1 || !strings.Contains(errs[0], "interrupt") {
			t.Errorf("rl pull busybox, Ctrl-C: want exit 125 and one error line saying it was interrupted; got exit %d:\n%s", code, out)
		}
		before.diff(t, snapshot(t, v, env))

		// The registry at full speed now: the next pull and run succeed.
		if err := testenv.WriteUserConfig(v.Home, registryAddr); err != nil {
			t.Fatal(err)
		}
		r := rlEnv(t, v, env, "pull", "-q", "busybox")
		if r.Code != 0 || r.Stdout != strings.TrimPrefix(busyboxID, "sha256:")+"\n" {
			t.Fatalf("pull after the interrupted one:\n%v", r)
		}
		r = rlEnv(t, v, env, "run", "--rm", "busybox", "sh", "-c", "busybox true && echo whole")
		if r.Code != 0 || r.Stdout != "whole\n" {
			t.Fatalf("run after the interrupted pull:\n%v", r)
		}
	})
}
