package tests

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rlcontainers/rl/internal/wire"
)

// TestRunPID1AndPs: the workload is PID 1 of a fresh /proc that shows only
// the container's processes.
func TestRunPID1AndPs(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "busybox", "sh", "-c", "echo $$")
		if r.Stdout != "1\n" {
			t.Fatalf("echo $$: want 1:\n%v", r)
		}
		// `ps` as PID 1: the only process is ps itself.
		r = rlOK(t, u, "run", "--rm", "busybox", "ps", "-o", "pid,comm")
		got := strings.Fields(r.Stdout)
		if len(got) != 4 || got[0] != "PID" || got[2] != "1" || got[3] != "ps" {
			t.Fatalf("ps inside: want only `1 ps`:\n%v", r)
		}
		// sh as PID 1 and its child ps: two processes, PIDs 1 and small.
		r = rlOK(t, u, "run", "--rm", "busybox", "sh", "-c", "ps -o pid,comm; true")
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != 3 || !regexp.MustCompile(`^\s*1\s+sh$`).MatchString(lines[1]) || !strings.HasSuffix(lines[2], " ps") {
			t.Fatalf("ps inside sh: want `1 sh` and ps only:\n%v", r)
		}
	})
}

// TestRunHostname: the default hostname is the short id `rl ps -a` shows;
// --hostname sets it, with /etc/hostname and /etc/hosts to match; the
// container's address has its name too (podman's /etc/hosts).
func TestRunHostname(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := "hn-" + u.Name
		t.Cleanup(func() { rl(t, u, "rm", name) })
		r := rlOK(t, u, "run", "--name", name, "busybox", "sh", "-c", "hostname; cat /etc/hostname; grep \"$(hostname)\" /etc/hosts")
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != 3 || !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(lines[0]) || lines[1] != lines[0] ||
			lines[2] != "10.0.2.100\t"+lines[0]+" "+name {
			t.Fatalf("want the 12-hex-digit hostname, the same in /etc/hostname, and in /etc/hosts with the name, as podman writes it:\n%v", r)
		}
		ps := rlOK(t, u, "ps", "-a")
		row := psRow(ps.Stdout, name)
		if row == "" || !strings.HasPrefix(row, lines[0]+" ") {
			t.Fatalf("rl ps -a: want a row for %s with id %s:\n%v", name, lines[0], ps)
		}

		r = rlOK(t, u, "run", "--rm", "--hostname", "foo", "busybox", "sh", "-c", "hostname; cat /etc/hostname; grep -w foo /etc/hosts")
		lines = strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != 3 || lines[0] != "foo" || lines[1] != "foo" || !strings.Contains(lines[2], "foo") {
			t.Fatalf("--hostname foo: want foo, foo in /etc/hostname and in /etc/hosts:\n%v", r)
		}
	})
}

// psRow is the line of `rl ps -a` output whose last column is name.
func psRow(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[len(f)-1] == name {
			return l
		}
	}
	return ""
}

// TestRunNamespaces: every namespace of the workload differs from the host's.
func TestRunNamespaces(t *testing.T) {
	kinds := []string{"pid", "uts", "ipc", "net", "cgroup", "mnt", "user"}
	host := map[string]string{}
	for _, k := range kinds {
		l, err := os.Readlink("/proc/self/ns/" + k)
		if err != nil {
			t.Fatal(err)
		}
		host[k] = l
	}
	forEachUser(t, func(t *testing.T, u User) {
		script := ""
		for _, k := range kinds {
			script += "readlink /proc/self/ns/" + k + "; "
		}
		r := rlOK(t, u, "run", "--rm", "busybox", "sh", "-c", script)
		got := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(got) != len(kinds) {
			t.Fatalf("want %d namespace links:\n%v", len(kinds), r)
		}
		for i, k := range kinds {
			if !strings.HasPrefix(got[i], k+":[") {
				t.Errorf("%s namespace inside: %q, want %s:[...]", k, got[i], k)
			} else if got[i] == host[k] {
				t.Errorf("%s namespace inside is the host's (%s)", k, got[i])
			}
		}
	})
}

// TestRunNetworkLoOnly: with --network none the namespace has lo, up, and
// nothing else.
func TestRunNetworkLoOnly(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "--network", "none", "busybox", "cat", "/proc/net/dev")
		var ifaces []string
		for _, l := range strings.Split(r.Stdout, "\n") {
			if name, _, ok := strings.Cut(l, ":"); ok && !strings.Contains(name, "|") {
				ifaces = append(ifaces, strings.TrimSpace(name))
			}
		}
		if len(ifaces) != 1 || ifaces[0] != "lo" {
			t.Fatalf("/proc/net/dev: want only lo, have %q:\n%v", ifaces, r)
		}
		r = rlOK(t, u, "run", "--rm", "--network", "none", "busybox", "ip", "link")
		m := regexp.MustCompile(`(?m)^\d+: (\S+): <([^>]*)>`).FindAllStringSubmatch(r.Stdout, -1)
		if len(m) != 1 || m[0][1] != "lo" || !strings.Contains(","+m[0][2]+",", ",UP,") {
			t.Fatalf("ip link: want only lo, UP:\n%v", r)
		}
	})
}

// TestRunIDMap: uid 0 inside is the user; the full user also has its
// subordinate range at 1.
func TestRunIDMap(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "busybox", "sh", "-c", "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map")
		uidMap, gidMap, _ := strings.Cut(r.Stdout, "--\n")
		wantUID := [][]string{{"0", fmt.Sprint(u.UID), "1"}}
		wantGID := [][]string{{"0", fmt.Sprint(u.GID), "1"}}
		if u.Name == full.Name {
			wantUID = append(wantUID, []string{"1", "200000", "65536"})
			wantGID = append(wantGID, []string{"1", "200000", "65536"})
		}
		if got := mapRows(uidMap); fmt.Sprint(got) != fmt.Sprint(wantUID) {
			t.Errorf("uid_map: got %v, want %v", got, wantUID)
		}
		if got := mapRows(gidMap); fmt.Sprint(got) != fmt.Sprint(wantGID) {
			t.Errorf("gid_map: got %v, want %v", got, wantGID)
		}
		if t.Failed() {
			t.Logf("%v", r)
		}
	})
}

func mapRows(s string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			rows = append(rows, f)
		}
	}
	return rows
}

// TestRunVolumeOwnership: files root makes inside in a bind-mounted dir are
// the user's on the host; for the full user, uid 1000 inside is 200000+999.
func TestRunVolumeOwnership(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		dir := userDir(t, u, "vol")
		rlOK(t, u, "run", "--rm", "-v", dir+":/mnt", "busybox", "sh", "-c", "echo hi > /mnt/byroot")
		if uid, gid := owner(t, filepath.Join(dir, "byroot")); uid != u.UID || gid != u.GID {
			t.Errorf("file made by root inside: host owner %d:%d, want %d:%d", uid, gid, u.UID, u.GID)
		}
		if u.Name != full.Name {
			return
		}
		rlOK(t, u, "run", "--rm", "-v", dir+":/mnt", "busybox", "sh", "-c", "touch /mnt/by1000 && chown 1000:1000 /mnt/by1000")
		if uid, gid := owner(t, filepath.Join(dir, "by1000")); uid != 200000+999 || gid != 200000+999 {
			t.Errorf("file chowned to 1000 inside: host owner %d:%d, want %d:%d", uid, gid, 200999, 200999)
		}
	})
}

func owner(t *testing.T, path string) (uid, gid int) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	s := st.Sys().(*syscall.Stat_t)
	return int(s.Uid), int(s.Gid)
}

// TestRunDev: the minimal /dev has working device nodes, a devpts, a
// writable /dev/shm and /dev/mqueue.
func TestRunDev(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		script := `for d in null zero full random urandom tty; do test -c /dev/$d && echo "char $d"; done
echo x > /dev/null && echo "null ok"
echo "urandom $(head -c 4 /dev/urandom | wc -c)"
echo "random $(head -c 4 /dev/random | wc -c)"
echo "zero $(head -c 5 /dev/zero | tr '\0' z)"
echo x > /dev/full 2>/dev/null || echo "full refuses"
echo shm > /dev/shm/f && cat /dev/shm/f
grep -q '^[^ ]* /dev/pts devpts ' /proc/mounts && echo "pts mounted"
test -c /dev/pts/ptmx && echo "pts ptmx"
grep -q '^[^ ]* /dev/mqueue mqueue ' /proc/mounts && echo "mqueue mounted"
`
		r := rlOK(t, u, "run", "--rm", "busybox", "sh", "-c", script)
		want := "char null\nchar zero\nchar full\nchar random\nchar urandom\nchar tty\nnull ok\nurandom 4\nrandom 4\nzero zzzzz\nfull refuses\nshm\npts mounted\npts ptmx\nmqueue mounted\n"
		if r.Stdout != want {
			t.Fatalf("want:\n%s\n%v", want, r)
		}
	})
}

// TestRunSysReadOnly: /sys is there and cannot be written.
func TestRunSysReadOnly(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rl(t, u, "run", "--rm", "busybox", "sh", "-c", "test -d /sys/kernel && echo has-kernel; mkdir /sys/x && echo mkdir-ok; touch /sys/kernel/x && echo touch-ok; true")
		if r.Code != 0 || r.Stdout != "has-kernel\n" || !strings.Contains(r.Stderr, "Read-only file system") {
			t.Fatalf("want /sys populated and writes refused with EROFS:\n%v", r)
		}
	})
}

// TestRunEtcFiles: /etc/hosts, /etc/hostname and /etc/resolv.conf are made
// for the container.
func TestRunEtcFiles(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "busybox", "sh", "-c", "test -f /etc/resolv.conf && echo resolv; cat /etc/hostname; cat /etc/hosts")
		lines := strings.Split(r.Stdout, "\n")
		if len(lines) < 3 || lines[0] != "resolv" || !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(lines[1]) {
			t.Fatalf("want resolv.conf and a short id in /etc/hostname:\n%v", r)
		}
		hosts := strings.Join(lines[2:], "\n")
		if !regexp.MustCompile(`(?m)^127\.0\.0\.1\s.*\blocalhost\b`).MatchString(hosts) || !strings.Contains(hosts, lines[1]) {
			t.Fatalf("/etc/hosts: want localhost and the hostname %s:\n%v", lines[1], r)
		}
	})
}

// TestRunOwnWritableLayer: what one container writes, the next does not see.
func TestRunOwnWritableLayer(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "busybox", "sh", "-c", "echo x > /marker && echo y > /etc/marker && cat /marker /etc/marker")
		if r.Stdout != "x\ny\n" {
			t.Fatalf("writing in the rootfs:\n%v", r)
		}
		r = rl(t, u, "run", "--rm", "busybox", "sh", "-c", "ls /marker /etc/marker")
		if r.Code == 0 || strings.Contains(r.Stdout, "marker") {
			t.Fatalf("a file the previous container wrote is visible in a new one:\n%v", r)
		}
	})
}

// TestRunReadOnly: --read-only makes / read-only, /tmp stays writable.
func TestRunReadOnly(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rl(t, u, "run", "--rm", "--read-only", "busybox", "sh", "-c", "touch /x && echo root-writable; touch /tmp/y && echo tmp-writable; true")
		if r.Code != 0 || r.Stdout != "tmp-writable\n" || !strings.Contains(r.Stderr, "Read-only file system") {
			t.Fatalf("want / read-only and /tmp writable:\n%v", r)
		}
		// Without the flag / is writable (the check above can fail).
		rlOK(t, u, "run", "--rm", "busybox", "touch", "/x")
	})
}

// TestRunTmpfs: --tmpfs /data mounts a writable tmpfs there.
func TestRunTmpfs(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "--tmpfs", "/data", "busybox", "sh", "-c", "grep ' /data ' /proc/mounts | cut -d' ' -f3; echo ok > /data/f && cat /data/f")
		if r.Stdout != "tmpfs\nok\n" {
			t.Fatalf("want a writable tmpfs on /data:\n%v", r)
		}
	})
}

// TestRunVolume: -v DIR:/mnt shares a host directory both ways; :ro refuses
// writes.
func TestRunVolume(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		dir := userDir(t, u, "vol")
		writeUserFile(t, u, filepath.Join(dir, "in"), "from host\n")
		r := rlOK(t, u, "run", "--rm", "-v", dir+":/mnt", "busybox", "sh", "-c", "cat /mnt/in; echo from container > /mnt/out")
		if r.Stdout != "from host\n" {
			t.Fatalf("-v: want the host file's content:\n%v", r)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "out")); err != nil || string(b) != "from container\n" {
			t.Fatalf("-v: the host does not see the container's file: %q, %v", b, err)
		}

		r = rl(t, u, "run", "--rm", "-v", dir+":/mnt:ro", "busybox", "sh", "-c", "cat /mnt/in; echo x > /mnt/ro-out && echo written")
		if r.Code == 0 || r.Stdout != "from host\n" || !strings.Contains(r.Stderr, "Read-only file system") {
			t.Fatalf("-v :ro: want the file readable and writes refused:\n%v", r)
		}
		if _, err := os.Stat(filepath.Join(dir, "ro-out")); err == nil {
			t.Fatalf("-v :ro: the container wrote %s", filepath.Join(dir, "ro-out"))
		}
	})
}

// TestInfo: rl info names the storage driver and why it was chosen.
func TestInfo(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "info")
		if !regexp.MustCompile(`(?m)^\s*driver:\s*(overlay|fuse-overlayfs|vfs)\s*$`).MatchString(r.Stdout) ||
			!regexp.MustCompile(`(?mi)^\s*driverReason:\s*\S`).MatchString(r.Stdout) {
			t.Fatalf("want the storage driver and the reason for it:\n%v", r)
		}
		wantMode := "full"
		if u.Name != full.Name {
			wantMode = "single"
		}
		if !regexp.MustCompile(`(?m)^\s*mode:\s*` + wantMode + `\s*$`).MatchString(r.Stdout) {
			t.Fatalf("want id mapping mode %s:\n%v", wantMode, r)
		}
	})
}

// TestRootRunroot: --root and --runroot put the store elsewhere.
func TestRootRunroot(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		dir := userDir(t, u, "store")
		root, runroot := filepath.Join(dir, "root"), filepath.Join(dir, "run")
		name := "elsewhere-" + u.Name
		g := []string{"--root", root, "--runroot", runroot}
		r := rlOK(t, u, append(g, "run", "--name", name, "busybox", "echo", "elsewhere")...)
		if r.Stdout != "elsewhere\n" {
			t.Fatalf("%v", r)
		}
		if m, _ := filepath.Glob(filepath.Join(root, "*-images", "images.json")); len(m) == 0 {
			t.Errorf("--root %s: no *-images/images.json there", root)
		}
		if m, _ := filepath.Glob(filepath.Join(root, "*-containers", "containers.json")); len(m) == 0 {
			t.Errorf("--root %s: no *-containers/containers.json there", root)
		}
		if ents, _ := os.ReadDir(runroot); len(ents) == 0 {
			t.Errorf("--runroot %s: empty", runroot)
		}
		if ps := rlOK(t, u, append(g, "ps", "-a")...); psRow(ps.Stdout, name) == "" {
			t.Errorf("rl --root ps -a does not list %s:\n%v", name, ps)
		}
		if ps := rlOK(t, u, "ps", "-a"); psRow(ps.Stdout, name) != "" {
			t.Errorf("the default store lists %s, made with --root:\n%v", name, ps)
		}
		rlOK(t, u, append(g, "rm", name)...)
	})
}

// TestRootOwnRunDir: a store given by --root alone gets a run dir of its
// own, so a container name in it never reaches the default store's
// container of the same name (rl exec and stop go by name through the run
// dir); the same run dir given to two stores with --runroot is refused.
func TestRootOwnRunDir(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		other := []string{"--root", filepath.Join(userDir(t, u, "otherstore"), "root")}
		name := "twin-" + u.Name
		start := func(g []string, who string) {
			t.Helper()
			rlOK(t, u, append(g, "run", "-d", "--name", name, "busybox", "sh", "-c", "echo "+who+" > /who; exec sleep 60")...)
		}
		start(nil, "default")
		defer rl(t, u, "rm", "-f", name)
		start(other, "other")
		defer rl(t, u, append(other, "rm", "-f", name)...)
		for _, c := range []struct {
			g    []string
			want string
		}{{nil, "default"}, {other, "other"}} {
			if r := rl(t, u, append(c.g, "exec", name, "cat", "/who")...); r.Code != 0 || r.Stdout != c.want+"\n" {
				t.Errorf("want the %s store's container:\n%v", c.want, r)
			}
		}
		rlOK(t, u, append(other, "stop", "-t", "0", name)...)
		if r := rl(t, u, "exec", name, "cat", "/who"); r.Code != 0 || r.Stdout != "default\n" {
			t.Errorf("after stopping the other store's %s, the default one's must still run:\n%v", name, r)
		}
		info := rlOK(t, u, append(other, "info")...).Stdout
		defInfo := rlOK(t, u, "info").Stdout
		runRoot := regexp.MustCompile(`(?m)^\s*runRoot:\s*(\S+)`)
		mo, md := runRoot.FindStringSubmatch(info), runRoot.FindStringSubmatch(defInfo)
		if mo == nil || md == nil || mo[1] == md[1] {
			t.Fatalf("rl info runRoot: default %q, --root %q: want two\n%s\n%s", md, mo, defInfo, info)
		}
		shared := append(other, "--runroot", md[1])
		for _, args := range [][]string{{"exec", name, "true"}, {"ps", "-a"}} {
			r := rl(t, u, append(shared, args...)...)
			var lines []string // the single-ID notice aside
			for _, l := range nonEmptyLines(r.Stderr) {
				if !strings.HasPrefix(l, "rl: notice:") {
					lines = append(lines, l)
				}
			}
			if r.Code != 125 || len(lines) != 1 || !strings.Contains(lines[0], "--runroot") || !strings.Contains(lines[0], "belongs to the store") {
				t.Errorf("the default store's run dir given to another store: want exit 125 and one line naming --runroot\n%v", r)
			}
		}
	})
}

// TestRunEnv: -e KEY=VALUE, -e KEY (from rl's environment), --env-file and
// the image's Env.
func TestRunEnv(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		dir := userDir(t, u, "env")
		file := filepath.Join(dir, "env")
		writeUserFile(t, u, file, "# a comment\nFROMFILE=file value\n\nOTHER=2\n")
		r := runAs(t, u, runOpts{Env: []string{"RL_PASSED=passed"}}, rlBin,
			"run", "--rm", "-e", "A=1", "-e", "B=two words", "-e", "RL_PASSED", "--env-file", file,
			"busybox", "sh", "-c", `echo "$A|$B|$RL_PASSED|$FROMFILE|$OTHER|$PATH"`)
		want := "1|two words|passed|file value|2|/usr/sbin:/usr/bin:/sbin:/bin\n"
		if r.Code != 0 || r.Stdout != want {
			t.Fatalf("want %q:\n%v", want, r)
		}
		// The workload's environ itself (env, not a shell, which keeps
		// the last of two): -e over the image's PATH and over an earlier
		// -e, each variable once (a C program's getenv takes the first).
		r = rlOK(t, u, "run", "--rm", "-e", "PATH=/custom:/bin", "-e", "A=1", "-e", "A=2", "busybox", "env")
		if lines := strings.Split(r.Stdout, "\n"); !slices.Contains(lines, "PATH=/custom:/bin") || !slices.Contains(lines, "A=2") ||
			strings.Count(r.Stdout, "PATH=") != 1 || strings.Count(r.Stdout, "A=") != 1 {
			t.Errorf("-e PATH=/custom:/bin -e A=1 -e A=2: want PATH=/custom:/bin and A=2, once each:\n%v", r)
		}
	})
}

// TestRunHTTPProxy: rl's proxy variables reach the container, as podman's
// --http-proxy (the default) passes them, each run's own (the same command
// line again takes the fast path); -e overrides them, --http-proxy=false
// leaves them out.
func TestRunHTTPProxy(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		proxies := func(r Result) string {
			var out []string
			for _, l := range strings.Split(r.Stdout, "\n") {
				if strings.Contains(strings.ToLower(l), "proxy") {
					out = append(out, l)
				}
			}
			return strings.Join(out, " ")
		}
		for _, host := range []string{"one", "two", "three"} {
			env := []string{"http_proxy=http://" + host + ":3128", "NO_PROXY=localhost,.example", "RL_OTHER=x"}
			r := runAs(t, u, runOpts{Env: env}, rlBin, "run", "--rm", "busybox", "env")
			if got, want := proxies(r), "http_proxy=http://"+host+":3128 NO_PROXY=localhost,.example"; r.Code != 0 || got != want {
				t.Errorf("the proxy variables: got %q, want %q\n%v", got, want, r)
			}
			if strings.Contains(r.Stdout, "RL_OTHER") {
				t.Errorf("a variable that is not a proxy's reached the container:\n%v", r)
			}
		}
		env := []string{"http_proxy=http://host:3128", "HTTPS_PROXY=http://host:3129"}
		r := runAs(t, u, runOpts{Env: env}, rlBin, "run", "--rm", "-e", "http_proxy=http://mine:1", "busybox", "env")
		if got, want := proxies(r), "http_proxy=http://mine:1 HTTPS_PROXY=http://host:3129"; r.Code != 0 || got != want {
			t.Errorf("-e http_proxy=: got %q, want %q\n%v", got, want, r)
		}
		for _, off := range []string{"--http-proxy=false", "--no-http-proxy"} {
			r := runAs(t, u, runOpts{Env: env}, rlBin, "run", "--rm", off, "busybox", "env")
			if got := proxies(r); r.Code != 0 || got != "" {
				t.Errorf("%s: got %q, want none\n%v", off, got, r)
			}
		}
	})
}

// TestRunWorkdir: -w sets the directory, creating it when missing.
func TestRunWorkdir(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "-w", "/etc", "busybox", "pwd")
		if r.Stdout != "/etc\n" {
			t.Fatalf("-w /etc:\n%v", r)
		}
		r = rlOK(t, u, "run", "--rm", "-w", "/new/work/dir", "busybox", "sh", "-c", "pwd; test -d /new/work/dir && echo made")
		if r.Stdout != "/new/work/dir\nmade\n" {
			t.Fatalf("-w of a missing directory:\n%v", r)
		}
	})
}

// TestRunUser: -u by uid and by name; a uid the single map lacks is a clear
// rl error.
func TestRunUser(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "busybox", "id", "-u")
		if r.Stdout != "0\n" {
			t.Fatalf("default user: want 0:\n%v", r)
		}
		if u.Name != full.Name {
			r = rl(t, u, "run", "--rm", "-u", "1000", "busybox", "id", "-u")
			if r.Code != 125 || r.Stdout != "" || !strings.Contains(r.Stderr, "1000") {
				t.Fatalf("-u 1000 with a single-ID map: want exit 125 and an error naming 1000:\n%v", r)
			}
			return
		}
		r = rlOK(t, u, "run", "--rm", "-u", "1000", "busybox", "sh", "-c", "id -u; id -g")
		if r.Stdout != "1000\n1000\n" {
			t.Fatalf("-u 1000:\n%v", r)
		}
		r = rlOK(t, u, "run", "--rm", "-u", "tester", "busybox", "sh", "-c", "id -un; id -u; id -g")
		if r.Stdout != "tester\n1000\n1000\n" {
			t.Fatalf("-u tester:\n%v", r)
		}
		r = rlOK(t, u, "run", "--rm", "-u", "1000:65534", "busybox", "sh", "-c", "id -u; id -g")
		if r.Stdout != "1000\n65534\n" {
			t.Fatalf("-u 1000:65534:\n%v", r)
		}
	})
}

// TestRunEntrypointAndCmd: --entrypoint replaces the image's; with no command
// the image's Cmd (sh) runs, reading stdin only with -i.
func TestRunEntrypointAndCmd(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "--entrypoint", "echo", "busybox", "hi", "there")
		if r.Stdout != "hi there\n" {
			t.Fatalf("--entrypoint echo:\n%v", r)
		}
		r = rlOK(t, u, "run", "--rm", "--entrypoint", "/bin/sh", "busybox", "-c", "echo via entrypoint")
		if r.Stdout != "via entrypoint\n" {
			t.Fatalf("--entrypoint /bin/sh:\n%v", r)
		}
		r = rlWithStdin(t, u, "echo hi\n", "run", "-i", "--rm", "busybox")
		if r.Code != 0 || r.Stdout != "hi\n" {
			t.Fatalf("echo 'echo hi' | rl run -i --rm busybox: want hi:\n%v", r)
		}
		r = rlWithStdin(t, u, "echo hi\n", "run", "--rm", "busybox")
		if r.Code != 0 || r.Stdout != "" {
			t.Fatalf("without -i the container must not read rl's stdin:\n%v", r)
		}
	})
}

// TestRunNameAndRm: a named container stays, Exited (N), until rl rm; --rm
// leaves nothing.
func TestRunNameAndRm(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		before := psIDs(t, u)
		r := rlOK(t, u, "run", "--rm", "busybox", "true")
		if after := psIDs(t, u); after != before {
			t.Fatalf("--rm left a container: rl ps -a -q was %q, now %q", before, after)
		}
		_ = r

		name := "named-" + u.Name
		t.Cleanup(func() { rl(t, u, "rm", name) })
		r = rl(t, u, "run", "--name", name, "busybox", "sh", "-c", "exit 7")
		if r.Code != 7 {
			t.Fatalf("want exit 7:\n%v", r)
		}
		ps := rlOK(t, u, "ps", "-a")
		row := psRow(ps.Stdout, name)
		if row == "" || !strings.Contains(row, "Exited (7)") || !strings.Contains(row, "busybox") {
			t.Fatalf("rl ps -a: want %s, busybox, Exited (7):\n%v", name, ps)
		}
		if ps := rlOK(t, u, "ps"); psRow(ps.Stdout, name) != "" {
			t.Fatalf("rl ps (running only) lists the exited %s:\n%v", name, ps)
		}
		r = rl(t, u, "run", "--name", name, "busybox", "true")
		if r.Code != 125 || !strings.Contains(r.Stderr, name) {
			t.Fatalf("a second container named %s: want exit 125 naming it:\n%v", name, r)
		}
		rlOK(t, u, "rm", name)
		if ps := rlOK(t, u, "ps", "-a"); psRow(ps.Stdout, name) != "" {
			t.Fatalf("rl rm %s: still listed:\n%v", name, ps)
		}
		if after := psIDs(t, u); after != before {
			t.Fatalf("rl rm: rl ps -a -q was %q, now %q", before, after)
		}
	})
}

// psIDs is `rl ps -a -q`.
func psIDs(t *testing.T, u User) string {
	t.Helper()
	return rlOK(t, u, "ps", "-a", "-q").Stdout
}

// TestRunExitCodes: the workload's code, 127 not found, 126 not executable,
// 125 rl's own failure.
func TestRunExitCodes(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		for _, c := range []struct {
			args   []string
			code   int
			stderr string
		}{
			{[]string{"run", "--rm", "busybox", "sh", "-c", "exit 3"}, 3, ""},
			{[]string{"run", "--rm", "busybox", "false"}, 1, ""},
			{[]string{"run", "--rm", "busybox", "nosuchcmd"}, 127, "nosuchcmd"},
			{[]string{"run", "--rm", "busybox", "/no/such/path"}, 127, "/no/such/path"},
			{[]string{"run", "--rm", "busybox", "/etc/passwd"}, 126, "/etc/passwd"},
			{[]string{"run", "--rm", "busybox", "/etc"}, 126, "/etc"},
			{[]string{"run", "--rm", "--pull=never", "nosuchimage", "true"}, 125, "nosuchimage"},
		} {
			r := rl(t, u, c.args...)
			if r.Code != c.code || !strings.Contains(r.Stderr, c.stderr) {
				t.Errorf("want exit %d and stderr naming %q:\n%v", c.code, c.stderr, r)
			}
		}
	})
}

// bgRL is rl running as a test user in the background, its stdout read line
// by line.
type bgRL struct {
	cmd   *exec.Cmd
	lines chan string
	out   strings.Builder
	done  chan struct{}
	err   error
}

// startRL starts rl ARGS as u in its own process group; it is killed when
// the test ends.
func startRL(t *testing.T, u User, args ...string) *bgRL {
	t.Helper()
	return startRLEnv(t, u, nil, args...)
}

// startRLEnv is startRL with env added to u's environment.
func startRLEnv(t *testing.T, u User, env []string, args ...string) *bgRL {
	t.Helper()
	cmd := exec.Command(rlBin, args...)
	cmd.Env = append(u.env(), env...)
	cmd.Dir = u.Home
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.credential(), Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &bgRL{cmd: cmd, lines: make(chan string, 100), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.out.WriteString(sc.Text() + "\n")
			b.lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
		close(b.lines)
		b.err = cmd.Wait()
		b.out.WriteString("--- stderr:\n" + stderr.String())
		close(b.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
	})
	return b
}

// waitLine waits for a stdout line equal to want.
func (b *bgRL) waitLine(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-b.lines:
			if !ok {
				<-b.done
				t.Fatalf("rl exited (%v) before printing %q:\n%s", b.err, want, b.out.String())
			}
			if l == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q from rl after %v", want, timeout)
		}
	}
}

// wait waits for rl to exit and returns its exit code (-1: killed by a
// signal) and output.
func (b *bgRL) wait(t *testing.T, timeout time.Duration) (int, string) {
	t.Helper()
	go func() {
		for range b.lines {
		}
	}()
	select {
	case <-b.done:
	case <-time.After(timeout):
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
		t.Fatalf("rl still running %v after the signal:\n%s", timeout, b.out.String())
	}
	return b.cmd.ProcessState.ExitCode(), b.out.String()
}

// TestRunSignals: signals sent to rl reach the workload.
func TestRunSignals(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		for _, s := range []struct {
			name string
			sig  syscall.Signal
		}{
			{"TERM", syscall.SIGTERM},
			{"INT", syscall.SIGINT},
			{"HUP", syscall.SIGHUP},
			{"QUIT", syscall.SIGQUIT},
			{"USR1", syscall.SIGUSR1},
			{"USR2", syscall.SIGUSR2},
		} {
			t.Run(s.name, func(t *testing.T) {
				script := fmt.Sprintf(`trap "echo got %s; exit 42" %s; echo ready; while true; do sleep 0.1; done`, s.name, s.name)
				b := startRL(t, u, "run", "--rm", "busybox", "sh", "-c", script)
				b.waitLine(t, "ready", 30*time.Second)
				if err := b.cmd.Process.Signal(s.sig); err != nil {
					t.Fatal(err)
				}
				code, out := b.wait(t, 10*time.Second)
				if code != 42 || !strings.HasPrefix(out, "ready\ngot "+s.name+"\n") {
					t.Fatalf("rl run --rm busybox sh -c '%s', SIG%s to rl: want \"got %s\" and exit 42, got exit %d:\n%s", script, s.name, s.name, code, out)
				}
			})
		}
	})
}

// TestRunPreserveFDs: --preserve-fds N hands rl's fds 3 to 3+N-1 to the
// workload as its 3 to 3+N-1 (with --init too, and detached), and nothing
// else past 2; asking for more than rl got is one line and 125.
func TestRunPreserveFDs(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		file := filepath.Join(userDir(t, u, "pfd"), "data")
		writeUserFile(t, u, file, "from-a-file\n")
		open3 := func() []*os.File { return fileAndPipe(t, file) }
		const script = `cat <&3; cat <&4; ls /proc/self/fd | tr '\n' ' '`
		for _, extra := range [][]string{nil, {"--init"}} {
			args := append(append([]string{"run", "--rm", "--preserve-fds", "2"}, extra...), "busybox", "sh", "-c", script)
			r := runAs(t, u, runOpts{ExtraFiles: open3()}, rlBin, args...)
			// ls's own directory fd is the one past 4.
			if r.Code != 0 || r.Stdout != "from-a-file\nfrom-a-pipe\n0 1 2 3 4 5 " {
				t.Errorf("rl %s: want both preserved fds' data and fds 0-4 (5 is ls's own):\n%v", strings.Join(args, " "), r)
			}
		}
		// Detached: the supervisor keeps them after rl returned.
		name := fmt.Sprintf("pfd-%s", u.Name)
		r := runAs(t, u, runOpts{ExtraFiles: open3()}, rlBin, "run", "-d", "--name", name, "--preserve-fds", "1", "busybox", "sh", "-c", "cat <&3; sleep 30")
		if r.Code != 0 {
			t.Fatalf("rl run -d --preserve-fds 1:\n%v", r)
		}
		t.Cleanup(func() { rl(t, u, "rm", "-f", name) })
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(rl(t, u, "logs", name).Stdout, "from-a-file") {
			if time.Now().After(deadline) {
				t.Fatalf("rl run -d --preserve-fds 1: the workload never printed fd 3's data:\n%v", rl(t, u, "logs", name))
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Without the flag nothing past 2 reaches the workload, even with fds open.
		r = runAs(t, u, runOpts{ExtraFiles: open3()}, rlBin, "run", "--rm", "busybox", "sh", "-c", "ls /proc/self/fd | tr '\\n' ' '")
		if r.Code != 0 || r.Stdout != "0 1 2 3 " {
			t.Errorf("rl run with fds 3 and 4 open but no --preserve-fds: want fds 0-2 only (3 is ls's own):\n%v", r)
		}
		// More than rl got: one line naming the fd and the fix.
		before := rlOK(t, u, "ps", "-a").Stdout
		r = runAs(t, u, runOpts{ExtraFiles: open3()}, rlBin, "run", "--rm", "--preserve-fds", "3", "busybox", "true")
		if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); r.Code != 125 || len(lines) != 1 || !strings.Contains(lines[len(lines)-1], "fd 5 is not open") {
			t.Errorf("rl run --preserve-fds 3 with fds 3 and 4 open: want exit 125 and one line naming fd 5:\n%v", r)
		}
		if after := rlOK(t, u, "ps", "-a").Stdout; after != before {
			t.Errorf("a refused --preserve-fds changed rl ps -a:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

// fileAndPipe opens file and a pipe holding "from-a-pipe\n", for a
// command's fds 3 and 4 (--preserve-fds); both close when the test ends.
func fileAndPipe(t *testing.T, file string) []*os.File {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("from-a-pipe\n")
	w.Close()
	t.Cleanup(func() { f.Close(); r.Close() })
	return []*os.File{f, r}
}

// TestRunSeccomp: the workload runs under a seccomp filter: moby's default
// profile for its capabilities, or a profile file. Filters are compiled
// once and kept in the run dir, so this checks that what is kept follows
// what it was made from: a profile file whose content changes, and the
// capabilities (moby's profile allows unshare with CAP_SYS_ADMIN only).
func TestRunSeccomp(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "busybox", "grep", "^Seccomp:", "/proc/self/status")
		if strings.Fields(r.Stdout)[1] != "2" {
			t.Errorf("default: want seccomp mode 2 (filter)\n%v", r)
		}
		for i, want := range []int{1, 0, 1} {
			r = rl(t, u, "run", "--rm", "busybox", "unshare", "-u", "true")
			if i == 1 {
				r = rl(t, u, "run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "unshare", "-u", "true")
			}
			if r.Code != want {
				t.Errorf("unshare -u (run %d: --cap-add SYS_ADMIN %v): want exit %d (moby's profile allows unshare with CAP_SYS_ADMIN only)\n%v", i+1, i == 1, want, r)
			}
		}
		dir := userDir(t, u, "seccomp")
		profile := filepath.Join(dir, "profile.json")
		deny := func(syscalls string) {
			writeUserFile(t, u, profile, `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [`+syscalls+`], "action": "SCMP_ACT_ERRNO"}]}`)
		}
		for _, c := range []struct {
			deny string
			want int
		}{{`"mkdir", "mkdirat"`, 1}, {`"chroot"`, 0}, {`"mkdir", "mkdirat"`, 1}} {
			deny(c.deny)
			r := rl(t, u, "run", "--rm", "--security-opt", "seccomp="+profile, "busybox", "mkdir", "/made")
			if r.Code != c.want {
				t.Errorf("a profile denying %s: mkdir: want exit %d\n%v", c.deny, c.want, r)
			}
		}
	})
}

// TestRunSeccompCacheOneBuild: the run dir's cache of compiled filters
// keeps one rl build's programs: a run of another build (another
// rl-image: an install, a rebuild) replaces them rather than adding to
// them, so the file every run reads stays small.
func TestRunSeccompCacheOneBuild(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		xdg := runtimeDir(t, u)
		env := []string{"XDG_RUNTIME_DIR=" + xdg}
		other := userDir(t, u, "rl-copy")
		for _, name := range rlBinaries {
			if err := copyExecutable(filepath.Join(filepath.Dir(rlBin), name), filepath.Join(other, name)); err != nil {
				t.Fatal(err)
			}
		}
		entries := func() int {
			t.Helper()
			files, _ := filepath.Glob(filepath.Join(xdg, "rl", "root-*", "rl", "seccomp.cache"))
			if len(files) != 1 {
				t.Fatalf("seccomp caches: %v, want one", files)
			}
			b, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			// internal/runcache's file: 'R', the key, the entries' count.
			d := wire.NewDecoder(b, 'R')
			_ = d.String() // the key
			n := d.Uint()
			if d.Err() != nil {
				t.Fatal(d.Err())
			}
			return int(n)
		}
		for i, bin := range []string{rlBin, filepath.Join(other, "rl"), rlBin} {
			if r := runAs(t, u, runOpts{Env: env}, bin, "run", "--rm", "busybox", "true"); r.Code != 0 {
				t.Fatalf("%v", r)
			}
			if n := entries(); n != 1 {
				t.Fatalf("after run %d (builds alternating): %d entries in the seccomp cache, want 1", i+1, n)
			}
		}
	})
}

// TestRunParseCache: a command line whose flags depend on nothing else is
// parsed once (RL_TRACE says "parsed (cached)" the second time) and runs
// the same; one with --env-file (whose file may change) or -e is parsed
// every time, and sees the file as it is now.
func TestRunParseCache(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		xdg := runtimeDir(t, u)
		env := []string{"XDG_RUNTIME_DIR=" + xdg, "RL_TRACE=1", noFast}
		run := func(args ...string) (string, bool) {
			t.Helper()
			r := rlEnv(t, u, env, append([]string{"run", "--rm"}, args...)...)
			if r.Code != 0 {
				t.Fatalf("%v", r)
			}
			return strings.TrimSpace(r.Stdout), strings.Contains(r.Stderr, "host: parsed (cached)")
		}
		for i, wantCached := range []bool{false, true, true} {
			out, cached := run("--hostname", "parsed-once", "busybox", "hostname")
			if out != "parsed-once" || cached != wantCached {
				t.Fatalf("run %d: hostname %q, cached %v; want parsed-once, cached %v", i+1, out, cached, wantCached)
			}
		}
		if out, cached := run("--hostname", "other", "busybox", "hostname"); out != "other" || cached {
			t.Fatalf("another command line: hostname %q, cached %v", out, cached)
		}
		envFile := filepath.Join(userDir(t, u, "envfile"), "env")
		for _, v := range []string{"one", "two"} {
			writeUserFile(t, u, envFile, "V="+v+"\n")
			if out, cached := run("--env-file", envFile, "busybox", "sh", "-c", "echo $V"); out != v || cached {
				t.Fatalf("--env-file holding V=%s: got %q, cached %v", v, out, cached)
			}
		}
		for i := 0; i < 2; i++ {
			if _, cached := run("-e", "A=1", "busybox", "true"); cached {
				t.Fatal("a command line with -e was cached")
			}
		}
	})
}
