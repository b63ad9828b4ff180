package tests

// Network integration tests: rl's user-mode network (the default
// `--network slirp`), `none` and `host`, through the real TAP, as the test
// users. Traffic goes only to the host's loopback and to test hosts the
// tests make themselves: network namespaces joined to the host by a veth
// pair on a private /30 of 192.168.250.0/24 (testenv.NewNetNS). Servers and
// clients that busybox lacks (UDP, DNS, a TCP client that times itself) are
// testenv.BuildNetHelper's static program, bind-mounted into containers as
// /nh/nethelper.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rlcontainers/rl/tests/testenv"
)

var (
	netHelperOnce sync.Once
	netHelperPath string
	netHelperErr  error
)

// netNeedHelper builds the static nethelper once per run, into the run's
// bin directory (searchable and readable by the test users).
func netNeedHelper(t *testing.T) string {
	t.Helper()
	netHelperOnce.Do(func() {
		// In a directory of its own: rl's -v mounts directories only.
		dir := filepath.Join(baseDir, "bin", "nh")
		if netHelperErr = os.MkdirAll(dir, 0o755); netHelperErr == nil {
			netHelperPath, netHelperErr = testenv.BuildNetHelper(dir)
		}
	})
	if netHelperErr != nil {
		t.Fatal(netHelperErr)
	}
	return netHelperPath
}

func netNeedRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip(why + " needs root")
	}
}

// netTestHost makes a test host in a network namespace, removed when the
// test ends (whatever runs in it is stopped first: cleanups run last-in,
// first-out and servers are started after the namespace).
func netTestHost(t *testing.T) *testenv.NetNS {
	t.Helper()
	netNeedRoot(t, "a test host in a network namespace")
	ns, err := testenv.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Errorf("removing the test host: %v", err)
		}
	})
	return ns
}

// netStartServer starts a nethelper server (as root) and stops it when the test ends.
func netStartServer(t *testing.T, cmd *exec.Cmd) *testenv.Server {
	t.Helper()
	s, err := testenv.StartServer(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// netFreePort is a TCP or UDP port free on every host address right now.
func netFreePort(t *testing.T, proto string) int {
	t.Helper()
	return netFreePorts(t, proto, 1)[0]
}

// netFreePorts is n distinct free ports: each is held until all are found
// (one at a time, the kernel may give the port it just gave again).
func netFreePorts(t *testing.T, proto string, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		if proto == "udp" {
			pc, err := net.ListenPacket("udp", ":0")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			ports = append(ports, pc.LocalAddr().(*net.UDPAddr).Port)
			continue
		}
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// netRLInMountNS runs rl as u in a private mount namespace that root prepared
// with the shell command setup (bind mounts over /etc/resolv.conf or
// /dev/net/tun): `unshare -m sh -c 'SETUP && exec setpriv ... rl ARGS'`.
// The mounts are gone when the command ends.
func netRLInMountNS(t *testing.T, u User, setup string, args ...string) Result {
	t.Helper()
	netNeedRoot(t, "a private mount namespace for rl")
	groups := "--clear-groups"
	if len(u.Groups) > 0 {
		var gs []string
		for _, g := range u.Groups {
			gs = append(gs, strconv.Itoa(int(g)))
		}
		groups = "--groups=" + strings.Join(gs, ",")
	}
	script := fmt.Sprintf("%s && exec setpriv --reuid=%d --regid=%d %s -- %s",
		setup, u.UID, u.GID, groups, shellQuote(append([]string{rlBin}, args...)))
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = u.env()
	cmd.Dir = u.Home
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := Result{Args: []string{"unshare", "-m", "sh", "-c", script}, Stdout: stdout.String(), Stderr: stderr.String(), Code: -1, TimedOut: ctx.Err() != nil}
	var exit *exec.ExitError
	switch {
	case err == nil:
		r.Code = 0
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case !r.TimedOut:
		t.Fatalf("unshare -m ... rl as %s: %v", u.Name, err)
	}
	return r
}

// netRLTimed is rl with its wall time.
func netRLTimed(t *testing.T, u User, args ...string) (Result, time.Duration) {
	t.Helper()
	start := time.Now()
	r := rl(t, u, args...)
	return r, time.Since(start)
}

// netErrLines are the lines of stderr other than the single-ID notice.
func netErrLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if l != "" && !strings.HasPrefix(l, "rl: notice:") {
			out = append(out, l)
		}
	}
	return out
}

// netDetached starts `rl run -d --name NAME ARGS...` and removes the container
// when the test ends (after the test's own checks, before the test host goes).
func netDetached(t *testing.T, u User, name string, args ...string) {
	t.Helper()
	rlOK(t, u, append([]string{"run", "-d", "--name", name}, args...)...)
	t.Cleanup(func() { rl(t, u, "rm", "-f", name) })
}

// netWaitLogs polls `rl logs NAME` until it matches re; it fails the test after 10 s.
func netWaitLogs(t *testing.T, u User, name, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := rl(t, u, "logs", name)
		if rx.MatchString(r.Stdout + r.Stderr) {
			return r.Stdout + r.Stderr
		}
		if time.Now().After(deadline) {
			t.Fatalf("rl logs %s: no %q after 10 s:\n%v", name, re, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// netHTTPGet fetches url from the host (as root, which matters not: the
// client's address is what the tests look at), retrying for up to 10 s
// while the container's server starts.
func netHTTPGet(t *testing.T, url string) (string, error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
			}
			return string(b), err
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var netNameCount int

func netName(prefix string) string {
	netNameCount++
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), netNameCount)
}

// netHostHTTP serves body on 127.0.0.1 (or ::1) from the test process and
// records the client address of each request.
type netHostHTTP struct {
	URL     string
	Port    int
	mu      sync.Mutex
	clients []string
}

func netServeHostHTTP(t *testing.T, network, addr, body string) *netHostHTTP {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &netHostHTTP{Port: ln.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.clients = append(h.clients, r.RemoteAddr)
		h.mu.Unlock()
		io.WriteString(w, body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h
}

func (h *netHostHTTP) Clients() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.clients...)
}

// netServeHostUDPEcho answers each datagram on 127.0.0.1 with "peer=ADDR DATA".
func netServeHostUDPEcho(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("peer="+from.String()+" "), buf[:k]...), from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// TestNetHostLoopback is the "Done when": with allow_host_loopback
// the container reaches a server on the host's 127.0.0.1 as
// host.containers.internal (and as the gateway 10.0.2.2, over UDP too, and
// ::1 as fd00::2); without it the same connection is refused, at once.
func TestNetHostLoopback(t *testing.T) {
	nh := netNeedHelper(t)
	forEachUser(t, func(t *testing.T, u User) {
		const body = "hello from the host's loopback\n"
		h := netServeHostHTTP(t, "tcp4", "127.0.0.1:0", body)
		url := fmt.Sprintf("http://host.containers.internal:%d/", h.Port)

		r := rl(t, u, "run", "--rm", "--network", "slirp:allow_host_loopback=true", "busybox", "wget", "-qO-", url)
		if r.Code != 0 || r.Stdout != body {
			t.Errorf("allow_host_loopback=true, wget %s: want exit 0 and %q:\n%v", url, body, r)
		}
		for _, c := range h.Clients() {
			if !strings.HasPrefix(c, "127.0.0.1:") {
				t.Errorf("the host's server saw a client %s, want 127.0.0.1 (the supervisor dials the host's loopback)", c)
			}
		}

		// UDP to the gateway reaches the host's 127.0.0.1 too.
		up := netServeHostUDPEcho(t)
		r = rl(t, u, "run", "--rm", "--network", "slirp:allow_host_loopback=true", "-v", filepath.Dir(nh)+":/nh:ro", "busybox",
			"/nh/nethelper", "udp-client", fmt.Sprintf("10.0.2.2:%d", up), "udp-hello")
		if r.Code != 0 || !regexp.MustCompile(`^peer=127\.0\.0\.1:\d+ udp-hello\n$`).MatchString(r.Stdout) {
			t.Errorf("allow_host_loopback=true, UDP to 10.0.2.2:%d (an echo server on 127.0.0.1): want the echo from 127.0.0.1:\n%v", up, r)
		}

		// IPv6: the gateway fd00::2 is the host's ::1.
		if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
			ln.Close()
			h6 := netServeHostHTTP(t, "tcp6", "[::1]:0", body)
			url6 := fmt.Sprintf("http://[fd00::2]:%d/", h6.Port)
			r = rl(t, u, "run", "--rm", "--network", "slirp:allow_host_loopback=true", "busybox", "wget", "-qO-", url6)
			if r.Code != 0 || r.Stdout != body {
				t.Errorf("allow_host_loopback=true, wget %s (a server on [::1]): want %q:\n%v", url6, body, r)
			}
		}

		// Without the option: refused, fast, and the server sees nothing.
		before := len(h.Clients())
		r, took := netRLTimed(t, u, "run", "--rm", "busybox", "wget", "-qO-", url)
		if r.Code == 0 || !strings.Contains(r.Stderr, "refused") {
			t.Errorf("default network, wget %s: want the connection refused:\n%v", url, r)
		}
		if took > 2*time.Second {
			t.Errorf("default network, wget %s: refused after %v, want < 2 s (the whole rl run)", url, took)
		}
		if n := len(h.Clients()); n != before {
			t.Errorf("without allow_host_loopback the host's server got %d request(s)", n-before)
		}
		r = rl(t, u, "run", "--rm", "-v", filepath.Dir(nh)+":/nh:ro", "busybox", "/nh/nethelper", "tcp-client", fmt.Sprintf("10.0.2.2:%d", h.Port), "x")
		if r.Code != 1 || !strings.Contains(r.Stdout, "connection refused") {
			t.Errorf("default network, TCP to 10.0.2.2:%d: want connection refused:\n%v", h.Port, r)
		} else if ms := netElapsedMS(r.Stderr); ms < 0 || ms > 1000 {
			t.Errorf("default network, TCP to 10.0.2.2:%d: refused after %d ms inside the container, want < 1000:\n%v", h.Port, ms, r)
		}
	})
}

// netElapsedMS reads nethelper's "elapsed=NNms" line; -1 when missing.
func netElapsedMS(stderr string) int {
	m := regexp.MustCompile(`elapsed=(\d+)ms`).FindStringSubmatch(stderr)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// netEchoTestHost is a test host with nethelper's TCP and UDP echo servers
// at tcpAddr (port 7000) and udpAddr (7001); port 7002 is closed.
func netEchoTestHost(t *testing.T) (nh string, ns *testenv.NetNS, tcpAddr, udpAddr string) {
	t.Helper()
	nh = netNeedHelper(t)
	ns = netTestHost(t)
	tcpAddr = fmt.Sprintf("%s:7000", ns.NSAddr)
	udpAddr = fmt.Sprintf("%s:7001", ns.NSAddr)
	netStartServer(t, ns.Command(nh, "tcp-echo", tcpAddr))
	netStartServer(t, ns.Command(nh, "udp-echo", udpAddr))
	return nh, ns, tcpAddr, udpAddr
}

// TestNetNATTestHost: TCP and UDP from the container to a test host in a
// network namespace, through NAT: the host sees the connection from the
// host's own address on the veth; a port with nothing listening is refused
// in under a second.
func TestNetNATTestHost(t *testing.T) {
	nh, ns, tcpAddr, udpAddr := netEchoTestHost(t)
	forEachUser(t, func(t *testing.T, u User) {
		r := rl(t, u, "run", "--rm", "-v", filepath.Dir(nh)+":/nh:ro", "busybox", "/nh/nethelper", "tcp-client", tcpAddr, "tcp-hello")
		want := fmt.Sprintf(`^peer=%s:\d+\ntcp-hello$`, regexp.QuoteMeta(ns.HostAddr.String()))
		if r.Code != 0 || !regexp.MustCompile(want).MatchString(r.Stdout) {
			t.Errorf("TCP to the test host %s: want the echo, from the host's %s:\n%v", tcpAddr, ns.HostAddr, r)
		}
		r = rl(t, u, "run", "--rm", "-v", filepath.Dir(nh)+":/nh:ro", "busybox", "/nh/nethelper", "udp-client", udpAddr, "udp-hello")
		want = fmt.Sprintf(`^peer=%s:\d+ udp-hello\n$`, regexp.QuoteMeta(ns.HostAddr.String()))
		if r.Code != 0 || !regexp.MustCompile(want).MatchString(r.Stdout) {
			t.Errorf("UDP to the test host %s: want the echo, from the host's %s:\n%v", udpAddr, ns.HostAddr, r)
		}
		// busybox's own client, as users would.
		r = rl(t, u, "run", "--rm", "busybox", "sh", "-c", fmt.Sprintf("echo nc-hello | nc %s 7000", ns.NSAddr))
		if r.Code != 0 || !strings.Contains(r.Stdout, "nc-hello") {
			t.Errorf("busybox nc to the test host: want the echo:\n%v", r)
		}

		// A refused port.
		refused := fmt.Sprintf("%s:7002", ns.NSAddr)
		r = rl(t, u, "run", "--rm", "-v", filepath.Dir(nh)+":/nh:ro", "busybox", "/nh/nethelper", "tcp-client", refused, "x")
		if r.Code != 1 || !strings.Contains(r.Stdout, "connection refused") {
			t.Errorf("TCP to %s (nothing listening): want connection refused:\n%v", refused, r)
		} else if ms := netElapsedMS(r.Stderr); ms < 0 || ms >= 1000 {
			t.Errorf("TCP to %s (nothing listening): refused after %d ms, want < 1000:\n%v", refused, ms, r)
		}
	})
}

// TestNetDNS: the relay at 10.0.2.3 asks the host's resolvers, here a
// responder on the test host named by /etc/resolv.conf in rl's private
// mount namespace; --dns puts its address in the container's resolv.conf
// and the container asks it directly, through NAT.
func TestNetDNS(t *testing.T) {
	nh := netNeedHelper(t)
	ns := netTestHost(t)
	const answer = "192.0.2.55" // TEST-NET-1: never contacted
	dns := netStartServer(t, ns.Command(nh, "dns", ns.NSAddr.String()+":53", answer))
	resolv := filepath.Join(baseDir, fmt.Sprintf("resolv-%d.conf", os.Getpid()))
	if err := os.WriteFile(resolv, []byte("nameserver "+ns.NSAddr.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(resolv) })
	setup := "mount --bind " + shellQuote([]string{resolv}) + " /etc/resolv.conf"
	forEachUser(t, func(t *testing.T, u User) {
		r := netRLInMountNS(t, u, setup, "run", "--rm", "busybox", "sh", "-c", "cat /etc/resolv.conf; nslookup test.example 10.0.2.3")
		if r.Code != 0 || !strings.Contains(r.Stdout, "Address: "+answer) {
			t.Errorf("nslookup test.example 10.0.2.3 (the relay; the host's resolver is the test host's responder): want %s:\n%v\nresponder:\n%s", answer, r, dns.Output())
		}
		if !strings.HasPrefix(r.Stdout, "nameserver 10.0.2.3\n") {
			t.Errorf("the container's /etc/resolv.conf: want the relay 10.0.2.3 first:\n%v", r)
		}
		if !strings.Contains(dns.Output(), "from="+ns.HostAddr.String()+":") {
			t.Errorf("the responder saw no query from the host's %s:\n%s", ns.HostAddr, dns.Output())
		}

		r = rl(t, u, "run", "--rm", "--dns", ns.NSAddr.String(), "busybox", "sh", "-c", "cat /etc/resolv.conf; nslookup test.example")
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "nameserver "+ns.NSAddr.String()+"\n") || strings.Contains(r.Stdout, "10.0.2.3") {
			t.Errorf("--dns %s: want it as the only nameserver in /etc/resolv.conf:\n%v", ns.NSAddr, r)
		}
		if !strings.Contains(r.Stdout, "Address: "+answer) {
			t.Errorf("--dns %s, nslookup test.example: want %s:\n%v", ns.NSAddr, answer, r)
		}
	})
}

// TestNetPublishTCP: -p HOSTPORT:80 to busybox httpd serves a client on the
// host's 127.0.0.1 and one on the test host connecting to the host's veth
// address; httpd's log shows the test host's real address and the loopback
// client as 127.0.0.1 (spliced from the container's own loopback, as
// documented); rl ps shows the port. A second server listening on the
// container's 127.0.0.1 only is not reachable through its published port.
func TestNetPublishTCP(t *testing.T) {
	ns := netTestHost(t)
	forEachUser(t, func(t *testing.T, u User) {
		doc := userDir(t, u, "www")
		const body = "published over -p\n"
		writeUserFile(t, u, filepath.Join(doc, "index.html"), body)
		ports := netFreePorts(t, "tcp", 2)
		port, lport := ports[0], ports[1]
		name := netName("nettcp")
		netDetached(t, u, name, "-p", fmt.Sprintf("%d:80", port), "-p", fmt.Sprintf("%d:81", lport), "-v", doc+":/www:ro", "busybox", "sh", "-c",
			"httpd -p 127.0.0.1:81 -h /www; exec httpd -f -vv -p 80 -h /www")

		got, err := netHTTPGet(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
		if err != nil || got != body {
			t.Errorf("GET http://127.0.0.1:%d/index.html from the host: want %q, got %q, %v\nlogs:\n%v", port, body, got, err, rl(t, u, "logs", name))
		}
		// A client on the host's ::1 is spliced from the container's ::1
		// (rl-net died of it once: a panic binding the IPv6 loopback), and
		// the port serves on after it.
		if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
			ln.Close()
			got, err := netHTTPGet(t, fmt.Sprintf("http://[::1]:%d/index.html", port))
			if err != nil || got != body {
				t.Errorf("GET http://[::1]:%d/index.html from the host: want %q, got %q, %v\nlogs:\n%v", port, body, got, err, rl(t, u, "logs", name))
			}
			if got, err := netHTTPGet(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", port)); err != nil || got != body {
				t.Errorf("GET http://127.0.0.1:%d/index.html after a client on ::1: want %q, got %q, %v", port, body, got, err)
			}
			netWaitLogs(t, u, name, regexp.QuoteMeta("[::1]:"))
		}
		url := fmt.Sprintf("http://%s:%d/index.html", ns.HostAddr, port)
		// Debian's static busybox wget crashes on this host (glibc NSS in a
		// static binary): a hand-written request through nethelper.
		out, err := ns.Command(netNeedHelper(t), "tcp-client", fmt.Sprintf("%s:%d", ns.HostAddr, port), "GET /index.html HTTP/1.0\r\n\r\n").Output()
		if err != nil || !regexp.MustCompile(`^HTTP/1\.[01] 200`).Match(out) || !strings.Contains(string(out), "\r\n\r\n"+body) {
			t.Errorf("test host %s: wget %s: want %q, got %q, %v", ns.NSAddr, url, body, out, err)
		}
		logs := netWaitLogs(t, u, name, regexp.QuoteMeta(ns.NSAddr.String()))
		if !regexp.MustCompile(`(?m)^\[?(::ffff:)?127\.0\.0\.1\]?:\d+: url:/index.html`).MatchString(logs) {
			t.Errorf("httpd's log: want the loopback client as 127.0.0.1 (spliced from the container's loopback):\n%s", logs)
		}
		if strings.Contains(logs, "10.0.2.2") {
			t.Errorf("httpd's log: the loopback client took the user-mode stack (seen as the gateway 10.0.2.2), not the splice:\n%s", logs)
		}
		c := &http.Client{Timeout: 5 * time.Second}
		if resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", lport)); err == nil {
			resp.Body.Close()
			t.Errorf("-p %d:81 to an httpd on the container's 127.0.0.1:81 only: want no answer (loopback-only services stay unpublished), got %s", lport, resp.Status)
		}
		if strings.Count(logs, ns.HostAddr.String()) > 0 {
			t.Errorf("httpd's log names the host's veth address %s, not only the client's:\n%s", ns.HostAddr, logs)
		}
		r := rlOK(t, u, "ps")
		if want := fmt.Sprintf("0.0.0.0:%d->80/tcp", port); !strings.Contains(r.Stdout, want) {
			t.Errorf("rl ps: want %s in PORTS:\n%v", want, r)
		}
	})
}

// TestNetPublishClientsCloseFirst: loopback clients of a published port
// that close first leave the splice's side of each connection in TIME_WAIT
// in the container's namespace, for 60 s; clients keep being served once
// those fill its port range. (The splice bound port 0 of the container's
// 127.0.0.1, which needs a port in no one's use: after ~14,000 such
// connections in a minute new clients were reset. connect(2) picks the
// port now, reusing TIME_WAIT ones.) The range is cut to 50 ports, so 80
// connections show it; 20 a second, as a port leaves TIME_WAIT for reuse
// 1-2 s after it entered it.
func TestNetPublishClientsCloseFirst(t *testing.T) {
	netNeedRoot(t, "cutting the container's ip_local_port_range (nsenter)")
	nh := netNeedHelper(t)
	u := full
	port := netFreePort(t, "tcp")
	name := netName("closefirst")
	netDetached(t, u, name, "-p", fmt.Sprintf("%d:7000", port), "-v", filepath.Dir(nh)+":/nh:ro", "busybox", "/nh/nethelper", "tcp-echo", ":7000")
	netWaitLogs(t, u, name, "listening")
	pid := inspect(t, u, nil, name).State.Pid
	if out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "sh", "-c",
		"echo 40000 40049 > /proc/sys/net/ipv4/ip_local_port_range").CombinedOutput(); err != nil {
		t.Fatalf("setting the container's ip_local_port_range: %v: %s", err, out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 80; i++ {
		start := time.Now()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			var line string
			line, err = bufio.NewReader(c).ReadString('\n')
			c.Close() // first: the service's echo waits for it
			if err == nil && !strings.HasPrefix(line, "peer=127.0.0.1:") {
				err = fmt.Errorf("got %q, want the service's peer line", line)
			}
		}
		if err != nil {
			t.Fatalf("client %d of 80 at %s (the container's port range holds 50): %v\nlogs:\n%v", i+1, addr, err, rl(t, u, "logs", name))
		}
		time.Sleep(50*time.Millisecond - time.Since(start))
	}
}

// TestNetPublishUDP: -p HOSTPORT:5353/udp to a UDP echo server in the
// container: the server sees the test host's real address (a gap slirp4netns
// and pasta leave) and the host's loopback client as 127.0.0.1 (relayed from
// the container's own loopback, as TCP's are spliced).
func TestNetPublishUDP(t *testing.T) {
	nh := netNeedHelper(t)
	ns := netTestHost(t)
	forEachUser(t, func(t *testing.T, u User) {
		port := netFreePort(t, "udp")
		name := netName("netudp")
		netDetached(t, u, name, "-p", fmt.Sprintf("%d:5353/udp", port), "-v", filepath.Dir(nh)+":/nh:ro", "busybox", "/nh/nethelper", "udp-echo", ":5353")
		netWaitLogs(t, u, name, "listening")

		out, err := exec.Command(nh, "udp-client", fmt.Sprintf("127.0.0.1:%d", port), "from-loopback").CombinedOutput()
		if err != nil || !regexp.MustCompile(`^peer=127\.0\.0\.1:\d+ from-loopback\n$`).MatchString(string(out)) {
			t.Errorf("UDP from the host's 127.0.0.1 to -p %d: want the echo naming 127.0.0.1 (the container's loopback) as the peer, got %q, %v", port, out, err)
		}
		out, err = ns.Command(nh, "udp-client", fmt.Sprintf("%s:%d", ns.HostAddr, port), "from-testhost").CombinedOutput()
		want := fmt.Sprintf(`^peer=%s:\d+ from-testhost\n$`, regexp.QuoteMeta(ns.NSAddr.String()))
		if err != nil || !regexp.MustCompile(want).MatchString(string(out)) {
			t.Errorf("UDP from the test host %s to %s:%d: want the echo naming %s as the peer, got %q, %v", ns.NSAddr, ns.HostAddr, port, ns.NSAddr, out, err)
		}
		netWaitLogs(t, u, name, `udp peer=`+regexp.QuoteMeta(ns.NSAddr.String())+`:\d+ data="from-testhost"`)
	})
}

// TestNetFirstFrame: the stack starts (rl-net) only when the container
// first sends something (rl's phase marks, RL_TRACE=1, say when), and that
// first frame is not lost: one ARP probe for the gateway, with no retry,
// gets its answer.
func TestNetFirstFrame(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		trace := runOpts{Env: []string{"RL_TRACE=1"}}
		r := runAs(t, u, trace, rlBin, "run", "--rm", "busybox", "true")
		if r.Code != 0 || !strings.Contains(r.Stderr, "core: network armed") || strings.Contains(r.Stderr, "core: rl-net started") {
			t.Errorf("a container that sends nothing: want the network armed and no rl-net started\n%v", r)
		}
		r = runAs(t, u, trace, rlBin, "run", "--rm", "busybox", "sh", "-c", "wget -q http://10.0.2.2:9/; true")
		if r.Code != 0 || !strings.Contains(r.Stderr, "core: rl-net started") {
			t.Errorf("a container that connects: want rl-net started\n%v", r)
		}
		r = rl(t, u, "run", "--rm", "--cap-add", "NET_RAW", "busybox", "arping", "-c", "1", "-w", "2", "-I", "tap0", "10.0.2.2")
		if r.Code != 0 || !strings.Contains(r.Stdout, "reply from 10.0.2.2") {
			t.Errorf("one ARP probe as the container's first frame: want the gateway's reply\n%v", r)
		}
	})
}

// TestNetHelperMissing: without rl-net beside rl-core (an install missing
// it) rl run with the default network fails at once, naming it and the
// fix; --network none still works.
func TestNetHelperMissing(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		dir := userDir(t, u, "rl-without-net")
		for _, name := range rlBinaries {
			if name == "rl-net" {
				continue
			}
			if err := copyExecutable(filepath.Join(filepath.Dir(rlBin), name), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		bin := filepath.Join(dir, "rl")
		r := runAs(t, u, runOpts{}, bin, "run", "--rm", "busybox", "true")
		if r.Code != 125 || !strings.Contains(r.Stderr, "rl-net") || !strings.Contains(r.Stderr, "make install") {
			t.Errorf("rl run without rl-net: want exit 125 naming rl-net and make install\n%v", r)
		}
		if r := runAs(t, u, runOpts{}, bin, "run", "--rm", "--network", "none", "busybox", "true"); r.Code != 0 {
			t.Errorf("rl run --network none without rl-net:\n%v", r)
		}
	})
}

// TestNetHelperKilled: when rl-net dies under a running container, rl
// says the network stopped (rather than leaving it silently without one).
func TestNetHelperKilled(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := netName("netkilled")
		done := make(chan Result, 1)
		go func() {
			done <- rl(t, u, "run", "--rm", "--name", name, "busybox", "sh", "-c", "wget -q http://10.0.2.2:9/; sleep 3")
		}()
		var pid int
		for deadline := time.Now().Add(5 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			for _, p := range netProcsWith(name) {
				if strings.Contains(p, "rl-net "+name) {
					fmt.Sscan(strings.TrimSuffix(strings.Fields(p)[0], ":"), &pid)
				}
			}
		}
		if pid == 0 {
			t.Fatalf("no rl-net %s came up: %v", name, <-done)
		}
		syscall.Kill(pid, syscall.SIGKILL)
		r := <-done
		if r.Code != 0 || !strings.Contains(r.Stderr, "the container's network stopped") {
			t.Errorf("rl-net killed under the container: want exit 0 and a warning that the network stopped\n%v", r)
		}
	})
}

// TestNetNone: --network none has lo only, and refuses -p.
func TestNetNone(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net; ip -o -4 addr")
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != 2 || lines[0] != "lo" || !strings.Contains(lines[1], "inet 127.0.0.1/8") {
			t.Errorf("--network none: want lo only, with 127.0.0.1:\n%v", r)
		}
		// -p has nothing to publish on: discarded, with a warning, as in
		// docker and podman (TestNetRunFlagsCompat).
		r = rl(t, u, "run", "--rm", "--network", "none", "-p", "8080:80", "busybox", "true")
		if r.Code != 0 || !strings.Contains(r.Stderr, "discarded") {
			t.Errorf("--network none -p 8080:80: want exit 0 and a warning that the port is discarded:\n%v", r)
		}
		// The default network, for contrast: lo and tap0 with 10.0.2.100.
		r = rlOK(t, u, "run", "--rm", "busybox", "sh", "-c", "ls /sys/class/net; cat /sys/class/net/tap0/mtu; ip -o -4 addr show tap0")
		if !regexp.MustCompile(`^lo\ntap0\n65520\n.*inet 10\.0\.2\.100/24`).MatchString(r.Stdout) {
			t.Errorf("default network: want lo and tap0 (MTU 65520, 10.0.2.100/24):\n%v", r)
		}
	})
}

// TestNetPing: ping works without CAP_NET_RAW, which the default
// capabilities leave out, as in podman and docker: a container's own network
// namespace lets its groups open ICMP echo sockets (ping_group_range). The
// stack answers for the gateway; lo answers with --network none; and with
// subordinate ids a user other than root pings too.
func TestNetPing(t *testing.T) {
	nh := netNeedHelper(t)
	vol := filepath.Dir(nh) + ":/nh:ro"
	forEachUser(t, func(t *testing.T, u User) {
		cases := []struct {
			flags []string
			addr  string
		}{
			{nil, "10.0.2.2"},
			{[]string{"--network", "none"}, "127.0.0.1"},
		}
		if u.Name == full.Name {
			cases = append(cases, struct {
				flags []string
				addr  string
			}{[]string{"-u", "1000:1000"}, "10.0.2.2"})
		}
		for _, c := range cases {
			args := append(append([]string{"run", "--rm", "-v", vol}, c.flags...), "busybox", "/nh/nethelper", "ping", c.addr)
			if r := rl(t, u, args...); r.Code != 0 || r.Stdout != "reply from "+c.addr+"\n" {
				t.Errorf("rl %s: want an echo reply from %s\n%v", strings.Join(args, " "), c.addr, r)
			}
		}
	})
}

// TestNetPingNAT: an echo request past the gateway (to the test host, in
// a network namespace of its own) goes out from the user's ICMP echo
// socket on the host and its reply comes back from the test host's
// address, where the host's ping_group_range lets the user open one; where
// it does not, the request goes unanswered (no reply the stack makes up).
func TestNetPingNAT(t *testing.T) {
	ns := netTestHost(t)
	nh := netNeedHelper(t)
	vol := filepath.Dir(nh) + ":/nh:ro"
	const rangeFile = "/proc/sys/net/ipv4/ping_group_range"
	orig, err := os.ReadFile(rangeFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(rangeFile, orig, 0o644) })
	setRange := func(v string) {
		if err := os.WriteFile(rangeFile, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	forEachUser(t, func(t *testing.T, u User) {
		setRange("0 2147483647")
		to := ns.NSAddr.String()
		if r := rl(t, u, "run", "--rm", "-v", vol, "busybox", "/nh/nethelper", "ping", to); r.Code != 0 || r.Stdout != "reply from "+to+"\n" {
			t.Errorf("ping %s (the test host, through NAT): want an echo reply from it\n%v", to, r)
		}
		setRange("1 0") // the kernel's default: no group
		if r := rl(t, u, "run", "--rm", "-v", vol, "busybox", "/nh/nethelper", "ping", to); r.Code != 1 || !strings.Contains(r.Stdout, "no reply") {
			t.Errorf("ping %s with no ICMP echo socket for the user on the host: want no reply\n%v", to, r)
		}
	})
}

// TestNetHost: --network host shares the host's interfaces (the test
// host's veth end is there), and a server the container starts on
// 127.0.0.1 is reachable from the host.
func TestNetHost(t *testing.T) {
	ns := netTestHost(t)
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net")
		if !regexp.MustCompile(`(?m)^` + ns.HostIf + `$`).MatchString(r.Stdout) {
			t.Errorf("--network host: want the host's interface %s:\n%v", ns.HostIf, r)
		}
		doc := userDir(t, u, "www")
		const body = "served on the host's loopback\n"
		writeUserFile(t, u, filepath.Join(doc, "index.html"), body)
		port := netFreePort(t, "tcp")
		name := netName("nethost")
		netDetached(t, u, name, "--network", "host", "-v", doc+":/www:ro", "busybox", "httpd", "-f", "-p", fmt.Sprintf("127.0.0.1:%d", port), "-h", "/www")
		got, err := netHTTPGet(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
		if err != nil || got != body {
			t.Errorf("--network host, httpd on 127.0.0.1:%d, GET from the host: want %q, got %q, %v", port, body, got, err)
		}
	})
}

// TestNetPortInUse: a published port that is taken fails rl run with 125
// and one line naming the port and the fix, before any container exists.
func TestNetPortInUse(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		before := rlOK(t, u, "ps", "-a").Stdout
		for _, detach := range [][]string{{"--rm"}, {"-d"}} {
			args := append([]string{"run"}, detach...)
			args = append(args, "-p", fmt.Sprintf("%d:80", port), "busybox", "httpd", "-f", "-p", "80")
			r := rl(t, u, args...)
			lines := netErrLines(r.Stderr)
			if r.Code != 125 || len(lines) != 1 || !strings.Contains(lines[0], strconv.Itoa(port)) || !strings.Contains(lines[0], "-p") {
				t.Errorf("port %d in use: want exit 125 and one line naming the port and the fix:\n%v", port, r)
			}
			if after := rlOK(t, u, "ps", "-a").Stdout; after != before {
				t.Errorf("port %d in use: rl ps -a changed:\nbefore:\n%s\nafter:\n%s", port, before, after)
			}
		}
	})
}

// TestNetTunUnusable: with /dev/net/tun mode 0600 root (a machine without
// udev), rl run fails 125 with one line naming /dev/net/tun and the fix;
// --network none still works. The device is replaced only in rl's private
// mount namespace.
func TestNetTunUnusable(t *testing.T) {
	netNeedRoot(t, "replacing /dev/net/tun in a mount namespace")
	dir, err := os.MkdirTemp(baseDir, "tun-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tun := filepath.Join(dir, "tun")
	if err := syscall.Mknod(tun, syscall.S_IFCHR|0o600, int(10<<8|200)); err != nil {
		// A nodev /tmp: a plain 0600 file refuses the user the same way.
		if err := os.WriteFile(tun, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(tun, 0o600)
	setup := "mount --bind " + shellQuote([]string{tun}) + " /dev/net/tun"
	forEachUser(t, func(t *testing.T, u User) {
		r := netRLInMountNS(t, u, setup, "run", "--rm", "busybox", "true")
		lines := netErrLines(r.Stderr)
		if r.Code != 125 || len(lines) != 1 || !strings.Contains(lines[0], "/dev/net/tun") || !strings.Contains(lines[0], "chmod 0666") {
			t.Errorf("/dev/net/tun 0600 root: want exit 125 and one line naming /dev/net/tun and the fix (chmod 0666):\n%v", r)
		} else if !strings.Contains(lines[0], "--network none") {
			t.Logf("note: the message does not mention --network none/host as an alternative: %s", lines[0])
		}
		r = netRLInMountNS(t, u, setup, "run", "--rm", "--network", "none", "busybox", "echo", "ok")
		if r.Code != 0 || r.Stdout != "ok\n" {
			t.Errorf("/dev/net/tun 0600 root, --network none: want it to work:\n%v", r)
		}
		r = netRLInMountNS(t, u, setup, "run", "--rm", "--network", "host", "busybox", "echo", "ok")
		if r.Code != 0 || r.Stdout != "ok\n" {
			t.Errorf("/dev/net/tun 0600 root, --network host: want it to work:\n%v", r)
		}
	})
}

// netProcsWith lists the processes whose command line contains marker.
func netProcsWith(marker string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		b, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil || !strings.Contains(string(b), marker) {
			continue
		}
		if filepath.Base(p) == strconv.Itoa(os.Getpid()) {
			continue
		}
		out = append(out, filepath.Base(p)+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}

// netTapsOnHost are the host's interfaces named like rl's TAP.
func netTapsOnHost() map[string]bool {
	m := map[string]bool{}
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "tap") {
			m[i.Name] = true
		}
	}
	return m
}

// TestNetLifetime: the network lives exactly as long as the container: no rl
// process and no TAP on the host after it exits; the workload of a
// netDetached container has only its stdio open (no fd of the supervisor's
// network leaks in).
func TestNetLifetime(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		tapsBefore := netTapsOnHost()
		name := netName("netlife")
		r := rlOK(t, u, "run", "--rm", "--name", name, "busybox", "sh", "-c", "ls /sys/class/net")
		if !strings.Contains(r.Stdout, "tap0") {
			t.Errorf("want a tap0 in the container:\n%v", r)
		}
		if ps := netProcsWith(name); len(ps) > 0 {
			t.Errorf("rl run --rm returned but processes remain:\n%s", strings.Join(ps, "\n"))
		}
		for n := range netTapsOnHost() {
			if !tapsBefore[n] {
				t.Errorf("a TAP device %s appeared in the host's network namespace", n)
			}
		}

		// A container that uses its network has rl-net (the stack's
		// process), named after it; it goes with the container, also
		// when the supervisor is killed.
		for _, kill := range []bool{false, true} {
			n := netName(fmt.Sprintf("netlife-helper-%v", kill))
			netDetached(t, u, n, "busybox", "sh", "-c", "wget -q http://10.0.2.2:9/ ; exec sleep 300")
			var helper []string
			for deadline := time.Now().Add(5 * time.Second); len(helper) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				for _, p := range netProcsWith(n) {
					if strings.Contains(p, "rl-net "+n) {
						helper = append(helper, p)
					}
				}
			}
			if len(helper) != 1 {
				t.Errorf("a container that used its network: want one rl-net %s process, got %q (all: %q)", n, helper, netProcsWith(n))
				continue
			}
			if kill {
				c := inspect(t, u, nil, n)
				killPid(c.State.ConmonPid)
			} else {
				rlOK(t, u, "stop", "-t", "0", n)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(netProcsWith(n)) > 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if ps := netProcsWith(n); len(ps) > 0 {
				t.Errorf("the container %s ended (supervisor killed: %v); 5 s later processes remain:\n%s", n, kill, strings.Join(ps, "\n"))
			}
		}

		// The workload's open fds, from the host (as root) by the pid rl
		// inspect gives; a --network none container for comparison.
		fds := map[string]string{}
		for _, mode := range []string{"slirp", "none"} {
			n := netName("netfds-" + mode)
			netDetached(t, u, n, "--network", mode, "busybox", "sleep", "300")
			got, err := netWorkloadFDs(t, u, n)
			if err != nil {
				t.Errorf("--network %s: %v", mode, err)
				continue
			}
			fds[mode] = got
			if mode == "slirp" {
				name = n
			}
		}
		// An fd the test process itself has open, to the same file, is one
		// rl's caller passed down (Go leaves fds it inherited without
		// O_CLOEXEC open across exec); any other is rl's own.
		var inherited, own []string
		for _, f := range strings.Fields(fds["slirp"])[min(3, len(strings.Fields(fds["slirp"]))):] {
			n, target, _ := strings.Cut(f, "->")
			if mine, err := os.Readlink("/proc/self/fd/" + n); err == nil && mine == target {
				inherited = append(inherited, f)
			} else {
				own = append(own, f)
			}
		}
		if len(own) > 0 || !strings.HasPrefix(fds["slirp"], "0 1 2") {
			t.Errorf("the workload (PID 1) of a detached container with the default network has fds %q: want 0 1 2 only; %q are not the caller's (with --network none: %q)", fds["slirp"], own, fds["none"])
		}
		if len(inherited) > 0 {
			t.Errorf("the workload (PID 1) of a detached container has fds %q that rl's caller (this test, which got them from its own parent) left open without O_CLOEXEC: rl passes them through to the container; runc and podman close every fd but 0-2 (and --preserve-fds) before the workload's exec", inherited)
		}
		rlOK(t, u, "rm", "-f", name)
		deadline := time.Now().Add(5 * time.Second)
		for len(netProcsWith(name)) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if ps := netProcsWith(name); len(ps) > 0 {
			t.Errorf("rl rm -f %s returned; 5 s later processes remain:\n%s", name, strings.Join(ps, "\n"))
		}
	})
}

// netWorkloadFDs lists the open fds of container name's workload, read on
// the host from /proc/PID/fd (PID from rl inspect): "0 1 2 ..." with each
// extra fd's target, as "N->TARGET".
func netWorkloadFDs(t *testing.T, u User, name string) (string, error) {
	t.Helper()
	r := rlOK(t, u, "inspect", name)
	var v []struct {
		State struct{ Pid int }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil || len(v) != 1 || v[0].State.Pid <= 0 {
		return "", fmt.Errorf("rl inspect %s: no State.Pid (%v):\n%v", name, err, r)
	}
	dir := fmt.Sprintf("/proc/%d/fd", v[0].State.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	nums := make([]int, 0, len(ents))
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		nums = append(nums, n)
	}
	sort.Ints(nums)
	var out []string
	for _, n := range nums {
		if n <= 2 {
			out = append(out, strconv.Itoa(n))
			continue
		}
		target, _ := os.Readlink(filepath.Join(dir, strconv.Itoa(n)))
		out = append(out, fmt.Sprintf("%d->%s", n, target))
	}
	return strings.Join(out, " "), nil
}

// TestNetPort: rl port, rl ps and inspect's NetworkSettings.Ports name the
// host ports rl chose for -P (the image's EXPOSE, 80/tcp and 53/udp) and
// for -p IP::CTRPORT, and those are the ports that serve: the httpd on the
// container's port 80 answers at the port rl port names, and the others
// are bound on the host. A port not published, a stopped container and a
// bad port fail with 125 and one line naming them; a stopped container
// lists none.
func TestNetPort(t *testing.T) {
	reg, dir := startHostile(t)
	forEachUser(t, func(t *testing.T, u User) {
		h := newHostileSetup(t, reg, dir, u)
		img := h.image(t, "rl/exposed-"+u.Name, nil, testenv.HostileConfig{
			Cmd: []string{"sh"}, ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		}, testenv.FaultNone)
		doc := userDir(t, u, "www")
		const body = "published by -P\n"
		writeUserFile(t, u, filepath.Join(doc, "index.html"), body)
		name := netName("netport")
		rlOKEnv(t, h.v, h.env, "run", "-d", "--name", name, "-P", "-p", "127.0.0.1::8080", "-v", doc+":/www:ro", img, "httpd", "-f", "-p", "80", "-h", "/www")
		t.Cleanup(func() { rlEnv(t, h.v, h.env, "rm", "-f", name) })

		r := rlOKEnv(t, h.v, h.env, "port", name)
		hostOf := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
			m := regexp.MustCompile(`^(\d+/(?:tcp|udp)) -> ((?:0\.0\.0\.0|127\.0\.0\.1):[1-9]\d*)$`).FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("rl port %s: line %q is not PORT/PROTO -> IP:HOSTPORT\n%v", name, l, r)
			}
			hostOf[m[1]] = m[2]
		}
		if len(hostOf) != 3 || !strings.HasPrefix(hostOf["80/tcp"], "0.0.0.0:") || !strings.HasPrefix(hostOf["53/udp"], "0.0.0.0:") || !strings.HasPrefix(hostOf["8080/tcp"], "127.0.0.1:") {
			t.Fatalf("rl port %s: want 80/tcp and 53/udp on 0.0.0.0 (-P) and 8080/tcp on 127.0.0.1, got %v\n%v", name, hostOf, r)
		}
		web := strings.TrimPrefix(hostOf["80/tcp"], "0.0.0.0:")
		if got, err := netHTTPGet(t, "http://127.0.0.1:"+web+"/index.html"); err != nil || got != body {
			t.Errorf("GET the port rl port names for 80/tcp (%s): want %q, got %q, %v", web, body, got, err)
		}
		if c, err := net.ListenPacket("udp", hostOf["53/udp"]); err == nil {
			c.Close()
			t.Errorf("53/udp -> %s: the host port is not bound", hostOf["53/udp"])
		}
		if l, err := net.Listen("tcp", hostOf["8080/tcp"]); err == nil {
			l.Close()
			t.Errorf("8080/tcp -> %s: the host port is not bound", hostOf["8080/tcp"])
		}
		if r := rlOKEnv(t, h.v, h.env, "port", name, "80"); r.Stdout != hostOf["80/tcp"]+"\n" {
			t.Errorf("rl port %s 80: want %s\n%v", name, hostOf["80/tcp"], r)
		}
		if r := rlOKEnv(t, h.v, h.env, "port", name, "53/udp"); r.Stdout != hostOf["53/udp"]+"\n" {
			t.Errorf("rl port %s 53/udp: want %s\n%v", name, hostOf["53/udp"], r)
		}
		if r := rlOKEnv(t, h.v, h.env, "port", "-a"); !strings.Contains(r.Stdout, "\t80/tcp -> "+hostOf["80/tcp"]+"\n") {
			t.Errorf("rl port -a: want 80/tcp -> %s\n%v", hostOf["80/tcp"], r)
		}
		r = rlOKEnv(t, h.v, h.env, "ps")
		for _, want := range []string{hostOf["80/tcp"] + "->80/tcp", hostOf["53/udp"] + "->53/udp", hostOf["8080/tcp"] + "->8080/tcp"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("rl ps: want %s in PORTS\n%v", want, r)
			}
		}
		tmpl := `{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostIp}}:{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}`
		if r := rlOKEnv(t, h.v, h.env, "inspect", "-f", tmpl, name); r.Stdout != hostOf["80/tcp"]+"\n" {
			t.Errorf("rl inspect NetworkSettings.Ports[80/tcp]: want %s\n%v", hostOf["80/tcp"], r)
		}
		// HostConfig.PortBindings: the bound ports while it runs, as
		// podman's; the ports asked for once stopped (below).
		r = rlOKEnv(t, h.v, h.env, "inspect", "-f", "{{json .HostConfig.PortBindings}} {{json .NetworkSettings.Ports}} {{.HostConfig.PublishAllPorts}} {{json .HostConfig.Dns}}", name)
		if f := strings.Fields(r.Stdout); len(f) != 4 || f[0] != f[1] || f[2] != "true" || f[3] != "[]" {
			t.Errorf("rl inspect: want HostConfig.PortBindings as NetworkSettings.Ports, PublishAllPorts true, Dns []\n%v", r)
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"port", name, "81"}, "81/tcp"},
			{[]string{"port", name, "80/sctp"}, "80/sctp"},
			{[]string{"port", "rl-no-such-container"}, "rl-no-such-container"},
			{[]string{"port"}, "-a"},
		} {
			r := rlEnv(t, h.v, h.env, c.args...)
			if lines := netErrLines(r.Stderr); r.Code != 125 || r.Stdout != "" || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("rl %s: want exit 125 and one line naming %q\n%v", strings.Join(c.args, " "), c.want, r)
			}
		}
		rlOKEnv(t, h.v, h.env, "stop", "-t", "0", name)
		if r := rlOKEnv(t, h.v, h.env, "port", name); r.Stdout != "" {
			t.Errorf("rl port of a stopped container: want nothing\n%v", r)
		}
		if r := rlEnv(t, h.v, h.env, "port", name, "80"); r.Code != 125 || !strings.Contains(r.Stderr, "not running") {
			t.Errorf("rl port STOPPED 80: want exit 125 naming it not running\n%v", r)
		}
		if r := rlOKEnv(t, h.v, h.env, "inspect", "-f", "{{json .NetworkSettings.Ports}}", name); r.Stdout != "{}\n" {
			t.Errorf("inspect of a stopped container: want no ports\n%v", r)
		}
		if r := rlOKEnv(t, h.v, h.env, "inspect", "-f", "{{json .HostConfig.PortBindings}}", name); r.Stdout != `{"8080/tcp":[{"HostIp":"127.0.0.1","HostPort":""}]}`+"\n" {
			t.Errorf("inspect of a stopped container: want HostConfig.PortBindings as asked (-p 127.0.0.1::8080)\n%v", r)
		}
	})
}

// TestNetAddHost: --add-host entries end the container's /etc/hosts as
// docker and podman write them (several names, IPv6 with or without
// brackets, host-gateway as the gateway, or the host's loopback with
// --network host), and a bad entry fails rl run with 125 and one line
// naming it, before any container exists.
func TestNetAddHost(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "--add-host", "db:192.168.1.10", "--add-host", "a;b:fd00::9", "--add-host", "v6:[::1]",
			"--add-host", "gw:host-gateway", "busybox", "cat", "/etc/hosts")
		want := "192.168.1.10\tdb\nfd00::9\ta b\n::1\tv6\n10.0.2.2\tgw\n"
		if !strings.HasSuffix(r.Stdout, want) || !strings.Contains(r.Stdout, "10.0.2.2\thost.containers.internal") {
			t.Errorf("/etc/hosts: want the image's entries, then\n%s\n%v", want, r)
		}
		name := netName("addhost")
		netDetached(t, u, name, "--add-host", "db:192.168.1.10", "busybox", "sleep", "60")
		if r := rlOK(t, u, "inspect", "-f", "{{json .HostConfig.ExtraHosts}}", name); r.Stdout != `["db:192.168.1.10"]`+"\n" {
			t.Errorf("inspect: want HostConfig.ExtraHosts [db:192.168.1.10]\n%v", r)
		}
		if r := rlOK(t, u, "run", "--rm", "--network", "host", "--add-host", "gw:host-gateway", "busybox", "tail", "-n", "1", "/etc/hosts"); r.Stdout != "127.0.0.1\tgw\n" {
			t.Errorf("--network host: host-gateway is the host's loopback\n%v", r)
		}
		before := rlOK(t, u, "ps", "-a", "-q").Stdout
		for _, c := range []struct{ arg, flags, want string }{
			{"db", "", "no address"},
			{":1.2.3.4", "", "no name"},
			{"db:10.0.2.300", "", `"10.0.2.300" is not an IP address`},
			{"a b:1.2.3.4", "", `"a b" is not a host name`},
			{"gw:host-gateway", "none", "--network none has no way to the host"},
		} {
			args := []string{"run", "--rm", "--add-host", c.arg}
			if c.flags != "" {
				args = append(args, "--network", c.flags)
			}
			r := rl(t, u, append(args, "busybox", "true")...)
			if lines := netErrLines(r.Stderr); r.Code != 125 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("rl %s: want exit 125 and one line with %q\n%v", strings.Join(args, " "), c.want, r)
			}
		}
		if after := rlOK(t, u, "ps", "-a", "-q").Stdout; after != before {
			t.Errorf("a refused --add-host left containers: before %q, after %q", before, after)
		}
	})
}

// TestNetImageEtcFiles: --no-hosts and --dns none keep the image's own
// /etc/hosts and /etc/resolv.conf as podman's do (both for a kept and an
// --rm container, which take different rootfs paths), the files rl writes
// otherwise hide them, and the flags that would write into the files kept
// (--add-host, --dns-search, --dns-option, another --dns) or a static
// address (--ip, --mac-address: podman's "bridge only") fail with 125 and
// one line naming both.
func TestNetImageEtcFiles(t *testing.T) {
	hreg, dir := startHostile(t)
	forEachUser(t, func(t *testing.T, u User) {
		h := newHostileSetup(t, hreg, dir, u)
		const hosts, resolv = "192.0.2.7\timage-host\n", "nameserver 192.0.2.53\n"
		img := h.image(t, "rl/etcfiles-"+u.Name, [][]testenv.LayerEntry{{reg("etc/hosts", hosts), reg("etc/resolv.conf", resolv)}},
			testenv.HostileConfig{Cmd: []string{"sh"}}, testenv.FaultNone)
		show := []string{"sh", "-c", "cat /etc/hosts; echo --; cat /etc/resolv.conf"}
		for _, rm := range [][]string{{"--rm"}, nil} {
			name := netName("etcfiles")
			t.Cleanup(func() { rlEnv(t, h.v, h.env, "rm", "-f", name) })
			args := slices.Concat([]string{"run", "--name", name}, rm, []string{"--no-hosts", "--dns", "none", img}, show)
			if r := rlOKEnv(t, h.v, h.env, args...); r.Stdout != hosts+"--\n"+resolv {
				t.Errorf("rl %s: want the image's files as they are\n%v", strings.Join(args, " "), r)
			}
		}
		r := rlOKEnv(t, h.v, h.env, append([]string{"run", "--rm", "--no-hosts", img}, show...)...)
		if !strings.HasPrefix(r.Stdout, hosts+"--\nnameserver 10.0.2.3\n") {
			t.Errorf("--no-hosts alone: want the image's /etc/hosts and rl's resolv.conf\n%v", r)
		}
		r = rlOKEnv(t, h.v, h.env, append([]string{"run", "--rm", "--dns", "none", img}, show...)...)
		if strings.Contains(r.Stdout, "image-host") || !strings.Contains(r.Stdout, "host.containers.internal") || !strings.HasSuffix(r.Stdout, "--\n"+resolv) {
			t.Errorf("--dns none alone: want rl's /etc/hosts and the image's resolv.conf\n%v", r)
		}
		before := rlOKEnv(t, h.v, h.env, "ps", "-a", "-q").Stdout
		for _, c := range []struct {
			args []string
			want []string
		}{
			{[]string{"--no-hosts", "--add-host", "db:192.0.2.1"}, []string{"--no-hosts", "--add-host"}},
			{[]string{"--dns", "none", "--dns", "192.0.2.1"}, []string{"--dns none", "alone"}},
			{[]string{"--dns", "none", "--dns-search", "example.com"}, []string{"--dns none", "--dns-search"}},
			{[]string{"--dns", "none", "--dns-option", "ndots:2"}, []string{"--dns none", "--dns-option"}},
			{[]string{"--dns", "nonsense"}, []string{`"nonsense"`, "none"}},
			{[]string{"--ip", "10.0.2.50"}, []string{"--ip 10.0.2.50", "bridge", "drop --ip"}},
			{[]string{"--mac-address", "02:42:ac:11:00:02"}, []string{"--mac-address", "bridge"}},
			{[]string{"--network-alias", "db"}, []string{"--network-alias db", "bridge"}},
		} {
			args := append(append([]string{"run", "--rm"}, c.args...), img, "true")
			r := rlEnv(t, h.v, h.env, args...)
			lines := netErrLines(r.Stderr)
			ok := r.Code == 125 && len(lines) == 1
			for _, w := range c.want {
				ok = ok && strings.Contains(lines[0], w)
			}
			if !ok {
				t.Errorf("rl %s: want exit 125 and one line naming %q\n%v", strings.Join(args, " "), c.want, r)
			}
		}
		if after := rlOKEnv(t, h.v, h.env, "ps", "-a", "-q").Stdout; after != before {
			t.Errorf("a refused run left containers: before %q, after %q", before, after)
		}
	})
}

// TestNetRestart: rl restart stops a running container (the stop signal,
// SIGKILL after -t) and starts it again, or starts a stopped one, printing
// its name; its published port serves again after each (the new
// supervisor binds it once the old one let it go), also over a loop of
// restarts. A container that does not exist fails with 125 and one line,
// and the others named are restarted all the same.
func TestNetRestart(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		doc := userDir(t, u, "www-restart")
		writeUserFile(t, u, filepath.Join(doc, "index.html"), "again\n")
		name := netName("restart")
		port := netFreePort(t, "tcp")
		netDetached(t, u, name, "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "-v", doc+":/www:ro", "busybox", "httpd", "-f", "-p", "80", "-h", "/www")
		serves := func(when string) {
			t.Helper()
			if got, err := netHTTPGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || got != "again\n" {
				t.Fatalf("%s: the published port does not serve: %q, %v", when, got, err)
			}
		}
		serves("before rl restart")
		pid := inspect(t, u, nil, name).State.Pid
		if r := rlOK(t, u, "restart", "-t", "0", name); r.Stdout != name+"\n" {
			t.Errorf("rl restart: want the name printed\n%v", r)
		}
		v := inspect(t, u, nil, name)
		if !v.State.Running || v.State.Pid == pid || !alive(v.State.Pid) {
			t.Fatalf("after rl restart: want it running with a new workload (was pid %d): %+v", pid, v.State)
		}
		serves("after rl restart")
		rlOK(t, u, "stop", "-t", "0", name)
		rlOK(t, u, "restart", name)
		serves("after rl restart of a stopped container")
		for i := 0; i < 5; i++ {
			rlOK(t, u, "restart", "-t", "0", name)
		}
		serves("after five restarts")
		r := rl(t, u, "restart", "-t", "0", "rl-no-such-container", name)
		if lines := netErrLines(r.Stderr); r.Code != 125 || len(lines) != 1 || !strings.Contains(lines[0], "rl-no-such-container") || r.Stdout != name+"\n" {
			t.Errorf("rl restart NOSUCH NAME: want exit 125, one line naming NOSUCH, and NAME restarted\n%v", r)
		}
		serves("after rl restart NOSUCH NAME")
	})
}

// TestNetJoinedEtcFiles: a container in another's network namespace
// (--network container:NAME) gets that one's /etc/hosts (its address and
// names, host.containers.internal, its --add-host entries) with its own
// hostname, name and --add-host entries after, and that one's resolv.conf
// unless --dns is given; a name in the joined network resolves from both.
func TestNetJoinedEtcFiles(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		name := netName("joinetc")
		netDetached(t, u, name, "--add-host", "db:192.0.2.10", "--dns-search", "example.org", "busybox", "sleep", "60")
		theirs := rlOK(t, u, "exec", name, "sh", "-c", "cat /etc/hosts; echo --; cat /etc/resolv.conf").Stdout
		joiner := netName("joiner")
		r := rlOK(t, u, "run", "--rm", "--name", joiner, "--hostname", "joiner-host", "--network", "container:"+name, "--add-host", "cache:192.0.2.11",
			"busybox", "sh", "-c", "cat /etc/hosts; echo --; cat /etc/resolv.conf")
		wantHosts, wantResolv, _ := strings.Cut(theirs, "--\n")
		wantHosts += "127.0.1.1\tjoiner-host " + joiner + "\n192.0.2.11\tcache\n"
		if r.Stdout != wantHosts+"--\n"+wantResolv {
			t.Errorf("--network container:%s: want its /etc/hosts, this one's names and --add-host, and its resolv.conf:\nwant\n%s--\n%s\n%v", name, wantHosts, wantResolv, r)
		}
		if !strings.Contains(theirs, "10.0.2.2\thost.containers.internal") || !strings.Contains(theirs, "search example.org") {
			t.Errorf("the joined container's own files lack host.containers.internal or its --dns-search:\n%s", theirs)
		}
		if r := rlOK(t, u, "run", "--rm", "--network", "container:"+name, "--dns", "192.0.2.53", "busybox", "cat", "/etc/resolv.conf"); !strings.HasPrefix(r.Stdout, "nameserver 192.0.2.53\n") {
			t.Errorf("--network container:%s --dns 192.0.2.53: want that nameserver\n%v", name, r)
		}
	})
}

// TestNetRunFlagsCompat: the network flags docker and podman users type:
// --net, --network bridge and pasta (rl's user-mode network, no foreign
// options), --dns-search (. for none) and --dns-option in place of the
// host's, --expose ranges published by -P, -p with --network host or none
// (a warning, not a failure). Bad values fail with 125 and one line naming
// them.
func TestNetRunFlagsCompat(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		if r := rlOK(t, u, "run", "--rm", "--net", "none", "busybox", "ls", "/sys/class/net"); r.Stdout != "lo\n" {
			t.Errorf("--net none: want lo only\n%v", r)
		}
		for _, n := range []string{"bridge", "pasta"} {
			if r := rlOK(t, u, "run", "--rm", "--network", n, "busybox", "ls", "/sys/class/net"); r.Stdout != "lo\ntap0\n" {
				t.Errorf("--network %s: want rl's user-mode network (tap0)\n%v", n, r)
			}
		}
		r := rlOK(t, u, "run", "--rm", "--dns-search", "example.com", "--dns-search", "corp.example", "--dns-option", "ndots:2", "--dns-opt", "timeout:1", "busybox", "cat", "/etc/resolv.conf")
		if !strings.HasSuffix(r.Stdout, "search example.com corp.example\noptions ndots:2 timeout:1\n") || strings.Count(r.Stdout, "search") != 1 || strings.Count(r.Stdout, "options") != 1 || !strings.HasPrefix(r.Stdout, "nameserver 10.0.2.3\n") {
			t.Errorf("--dns-search, --dns-option: want the relay, then one search and one options line with the given values\n%v", r)
		}
		if r := rlOK(t, u, "run", "--rm", "--dns-search", ".", "busybox", "cat", "/etc/resolv.conf"); strings.Contains(r.Stdout, "search") || strings.Contains(r.Stdout, "domain") {
			t.Errorf("--dns-search .: want no search domains\n%v", r)
		}
		name := netName("expose")
		netDetached(t, u, name, "--expose", "8000-8001", "--expose", "53/udp", "-P", "busybox", "sleep", "60")
		r = rlOK(t, u, "port", name)
		if !regexp.MustCompile(`(?s)^53/udp -> 0\.0\.0\.0:\d+\n8000/tcp -> 0\.0\.0\.0:\d+\n8001/tcp -> 0\.0\.0\.0:\d+\n$`).MatchString(r.Stdout) {
			t.Errorf("--expose 8000-8001 --expose 53/udp -P: want the three published\n%v", r)
		}
		// -p with a network that has no ports of its own: the container runs,
		// with a warning, as docker and podman do.
		for _, n := range []string{"host", "none"} {
			r := rl(t, u, "run", "--rm", "--network", n, "-p", "8080:80", "-P", "busybox", "true")
			if lines := netErrLines(r.Stderr); r.Code != 0 || len(lines) != 1 || !strings.Contains(lines[0], "--network "+n+": the published ports (-p, -P) are discarded") {
				t.Errorf("--network %s -p: want exit 0 and one warning that the ports are discarded\n%v", n, r)
			}
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--network", "pasta:-T,5000"}, "slirp:OPTIONS"},
			{[]string{"--dns-search", "a b"}, `--dns-search "a b"`},
			{[]string{"--dns-option", ""}, `--dns-option ""`},
			{[]string{"--expose", "1.2.3.4:80:80"}, `--expose "1.2.3.4:80:80"`},
			{[]string{"--expose", "70000"}, `--expose "70000"`},
		} {
			args := append(append([]string{"run", "--rm"}, c.args...), "busybox", "true")
			r := rl(t, u, args...)
			if lines := netErrLines(r.Stderr); r.Code != 125 || len(lines) != 1 || !strings.Contains(lines[0], c.want) ||
				(c.args[0] == "--expose" && strings.Contains(lines[0], "-p ")) {
				t.Errorf("rl %s: want exit 125 and one line with %q (not naming -p, which was not given)\n%v", strings.Join(args, " "), c.want, r)
			}
		}
		// The network's flags are checked before the image: an image that is
		// not here is not pulled for a run that cannot start.
		for _, bad := range [][]string{{"-p", "99999:80"}, {"--expose", "1.2.3.4:80:80"}, {"--add-host", "db"}} {
			args := append(append([]string{"run", "--rm"}, bad...), "rl-no-such-image", "true")
			r := rl(t, u, args...)
			if lines := netErrLines(r.Stderr); r.Code != 125 || len(lines) != 1 || !strings.Contains(lines[0], bad[1]) || strings.Contains(lines[0], "pull") {
				t.Errorf("rl %s: want exit 125 naming %q, before any pull\n%v", strings.Join(args, " "), bad[1], r)
			}
		}
	})
}

// TestNetOutboundAddr: slirp:outbound_addr=IP makes NAT connections (TCP
// and UDP) leave from that host address, as slirp4netns's option does: a
// second address on the host's veth, which the test host routes back, is
// the echo servers' peer; an interface name takes its first address; an
// address that is not the host's, or no such interface, fails rl run with
// 125 and one line.
func TestNetOutboundAddr(t *testing.T) {
	nh := netNeedHelper(t)
	ns := netTestHost(t)
	b := ns.HostAddr.As4()
	extra := netip.AddrFrom4([4]byte{192, 168, 251, b[3]})
	for _, s := range [][]string{
		{"addr", "add", extra.String() + "/32", "dev", ns.HostIf},
		{"-n", ns.Name, "route", "add", extra.String() + "/32", "dev", ns.NSIf},
	} {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	tcpAddr := fmt.Sprintf("%s:7010", ns.NSAddr)
	udpAddr := fmt.Sprintf("%s:7011", ns.NSAddr)
	netStartServer(t, ns.Command(nh, "tcp-echo", tcpAddr))
	netStartServer(t, ns.Command(nh, "udp-echo", udpAddr))
	forEachUser(t, func(t *testing.T, u User) {
		for _, c := range []struct{ opt, peer string }{
			{"outbound_addr=" + extra.String(), extra.String()},
			{"outbound_addr=" + extra.String() + ",bypass=true", extra.String()},
			{"outbound_addr=" + ns.HostIf, ns.HostAddr.String()},
			{"", ns.HostAddr.String()},
		} {
			netw := "slirp"
			if c.opt != "" {
				netw += ":" + c.opt
			}
			for _, p := range []struct{ client, addr, want string }{
				{"tcp-client", tcpAddr, `^peer=%s:\d+\nhello$`},
				{"udp-client", udpAddr, `^peer=%s:\d+ hello\n$`},
			} {
				r := rl(t, u, "run", "--rm", "--network", netw, "-v", filepath.Dir(nh)+":/nh:ro", "busybox", "/nh/nethelper", p.client, p.addr, "hello")
				if want := fmt.Sprintf(p.want, regexp.QuoteMeta(c.peer)); r.Code != 0 || !regexp.MustCompile(want).MatchString(r.Stdout) {
					t.Errorf("--network %s, %s to %s: want the echo from %s\n%v", netw, p.client, p.addr, c.peer, r)
				}
			}
		}
		for _, c := range []struct{ opt, want string }{
			{"outbound_addr=192.0.2.77", "192.0.2.77 is not an address of this host"},
			{"outbound_addr=rl-no-such0", "no such interface or IP address"},
			{"outbound_addr6=" + extra.String(), "want an IPv6 address"},
		} {
			r := rl(t, u, "run", "--rm", "--network", "slirp:"+c.opt, "busybox", "true")
			if lines := netErrLines(r.Stderr); r.Code != 125 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("--network slirp:%s: want exit 125 and one line with %q\n%v", c.opt, c.want, r)
			}
		}
	})
}

// TestNetBypass: with --network slirp:bypass=true the container's TCP
// connections to the outside are host sockets (the supervisor answers its
// connect through seccomp): the test host's echo server and a server on the
// host's loopback (allow_host_loopback) answer as through NAT, from the
// host's address, and the container's socket is connected from the host's
// address, not 10.0.2.100 as through the stack (blocking connects too:
// busybox nc); the gateway without allow_host_loopback and a closed port
// are refused, at once; connections inside the container and UDP take the
// container's network; the workload holds no descriptor more than without.
func TestNetBypass(t *testing.T) {
	nh, ns, tcpAddr, udpAddr := netEchoTestHost(t)
	local := func(stderr string) string {
		if m := regexp.MustCompile(`local=(\S+):\d+`).FindStringSubmatch(stderr); m != nil {
			return m[1]
		}
		return ""
	}
	forEachUser(t, func(t *testing.T, u User) {
		vol := filepath.Dir(nh) + ":/nh:ro"
		const bypass = "slirp:bypass=true"
		echo := fmt.Sprintf(`^peer=%s:\d+\ntcp-hello$`, regexp.QuoteMeta(ns.HostAddr.String()))

		// Through the stack (the default), the socket's address is the container's.
		r := rl(t, u, "run", "--rm", "-v", vol, "busybox", "/nh/nethelper", "tcp-client", tcpAddr, "tcp-hello")
		if r.Code != 0 || !regexp.MustCompile(echo).MatchString(r.Stdout) || local(r.Stderr) != "10.0.2.100" {
			t.Errorf("default network, TCP to the test host: want the echo and local address 10.0.2.100:\n%v", r)
		}
		// Bypassed: the host's own socket, connected from the host's address.
		r = rl(t, u, "run", "--rm", "--network", bypass, "-v", vol, "busybox", "/nh/nethelper", "tcp-client", tcpAddr, "tcp-hello")
		if r.Code != 0 || !regexp.MustCompile(echo).MatchString(r.Stdout) || local(r.Stderr) != ns.HostAddr.String() {
			t.Errorf("bypass=true, TCP to the test host %s: want the echo and local address %s (a host socket):\n%v", tcpAddr, ns.HostAddr, r)
		}
		// busybox's nc connects blocking.
		r = rl(t, u, "run", "--rm", "--network", bypass, "busybox", "sh", "-c", fmt.Sprintf("echo nc-hello | nc %s 7000", ns.NSAddr))
		if r.Code != 0 || !strings.Contains(r.Stdout, "nc-hello") {
			t.Errorf("bypass=true, busybox nc to the test host: want the echo:\n%v", r)
		}
		refused := fmt.Sprintf("%s:7002", ns.NSAddr)
		r = rl(t, u, "run", "--rm", "--network", bypass, "-v", vol, "busybox", "/nh/nethelper", "tcp-client", refused, "x")
		if r.Code != 1 || !strings.Contains(r.Stdout, "connection refused") {
			t.Errorf("bypass=true, TCP to %s (nothing listening): want connection refused:\n%v", refused, r)
		} else if ms := netElapsedMS(r.Stderr); ms < 0 || ms >= 1000 {
			t.Errorf("bypass=true, TCP to %s: refused after %d ms, want < 1000:\n%v", refused, ms, r)
		}

		// The host's loopback: only with allow_host_loopback, as through NAT.
		const body = "hello from the host's loopback\n"
		h := netServeHostHTTP(t, "tcp4", "127.0.0.1:0", body)
		gw := fmt.Sprintf("10.0.2.2:%d", h.Port)
		r = rl(t, u, "run", "--rm", "--network", bypass+",allow_host_loopback=true", "-v", vol, "busybox",
			"sh", "-c", fmt.Sprintf("wget -qO- http://host.containers.internal:%d/ && /nh/nethelper tcp-client %s x", h.Port, gw))
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, body) || local(r.Stderr) != "127.0.0.1" {
			t.Errorf("bypass=true,allow_host_loopback=true: want the host's page and a socket from 127.0.0.1:\n%v", r)
		}
		before := len(h.Clients())
		r = rl(t, u, "run", "--rm", "--network", bypass, "-v", vol, "busybox", "/nh/nethelper", "tcp-client", gw, "x")
		if r.Code != 1 || !strings.Contains(r.Stdout, "connection refused") {
			t.Errorf("bypass=true without allow_host_loopback, TCP to %s: want connection refused:\n%v", gw, r)
		}
		if n := len(h.Clients()); n != before {
			t.Errorf("bypass=true without allow_host_loopback: the host's server got %d request(s)", n-before)
		}

		// Inside the container, and UDP: the container's own network.
		script := `/nh/nethelper tcp-echo 127.0.0.1:9000 > /tmp/l & ` +
			`while ! grep -q listening /tmp/l; do sleep 0.05; done; ` +
			`/nh/nethelper tcp-client 127.0.0.1:9000 in-hello && /nh/nethelper udp-client ` + udpAddr + ` udp-hello`
		r = rl(t, u, "run", "--rm", "--network", bypass, "-v", vol, "busybox", "sh", "-c", script)
		wantUDP := fmt.Sprintf(`peer=%s:\d+ udp-hello`, regexp.QuoteMeta(ns.HostAddr.String()))
		if r.Code != 0 || !strings.Contains(r.Stdout, "peer=127.0.0.1:") || !strings.Contains(r.Stdout, "in-hello") ||
			local(r.Stderr) != "127.0.0.1" || !regexp.MustCompile(wantUDP).MatchString(r.Stdout) {
			t.Errorf("bypass=true, a server on the container's loopback and UDP to the test host: want both echoes:\n%v", r)
		}

		// --userns keep-id (a nested user namespace): taken too, and in
		// what rl exec (nsenter) starts there.
		r = rl(t, u, "run", "--rm", "--userns", "keep-id", "--network", bypass, "-v", vol, "busybox", "/nh/nethelper", "tcp-client", tcpAddr, "tcp-hello")
		if r.Code != 0 || !regexp.MustCompile(echo).MatchString(r.Stdout) || local(r.Stderr) != ns.HostAddr.String() {
			t.Errorf("bypass=true, --userns keep-id: want the echo and local address %s:\n%v", ns.HostAddr, r)
		}
		kname := "bypk-" + u.Name
		if r = rl(t, u, "run", "-d", "--name", kname, "--userns", "keep-id", "--network", bypass, "-v", vol, "busybox", "sleep", "60"); r.Code != 0 {
			t.Fatalf("rl run -d --userns keep-id:\n%v", r)
		}
		defer rl(t, u, "rm", "-f", kname)
		r = rl(t, u, "exec", kname, "/nh/nethelper", "tcp-client", tcpAddr, "tcp-hello")
		if r.Code != 0 || !regexp.MustCompile(echo).MatchString(r.Stdout) || local(r.Stderr) != ns.HostAddr.String() {
			t.Errorf("bypass=true, rl exec into a --userns keep-id container: want the echo and local address %s:\n%v", ns.HostAddr, r)
		}

		// rl exec's processes get host sockets too.
		name := "byp-" + u.Name
		if r = rl(t, u, "run", "-d", "--name", name, "--network", bypass, "-v", vol, "busybox", "sleep", "60"); r.Code != 0 {
			t.Fatalf("rl run -d:\n%v", r)
		}
		defer rl(t, u, "rm", "-f", name)
		for i := 0; i < 2; i++ {
			r = rl(t, u, "exec", name, "/nh/nethelper", "tcp-client", tcpAddr, "tcp-hello")
			if r.Code != 0 || !regexp.MustCompile(echo).MatchString(r.Stdout) || local(r.Stderr) != ns.HostAddr.String() {
				t.Errorf("bypass=true, rl exec (%d): want the echo and local address %s:\n%v", i+1, ns.HostAddr, r)
			}
		}

		// The seccomp listeners stay the supervisor's.
		fds := func(network string) string {
			r := rl(t, u, "run", "--rm", "--network", network, "busybox", "ls", "/proc/self/fd")
			if r.Code != 0 {
				t.Errorf("ls /proc/self/fd with --network %s:\n%v", network, r)
			}
			return r.Stdout
		}
		want := fds("slirp")
		if b := fds(bypass); b != want {
			t.Errorf("the workload's descriptors: %q without bypass, %q with it", want, b)
		}
		if r = rl(t, u, "exec", name, "ls", "/proc/self/fd"); r.Stdout != want {
			t.Errorf("rl exec's descriptors with bypass=true: %q, want %q:\n%v", r.Stdout, want, r)
		}
	})
}

// TestNetBypassPublish: with bypass=true a published TCP port's clients are
// handed to the container's service as the host's own sockets (the
// workload's accept(2) gets the client's socket): the service sees each
// client's own address and port (the test host's, the host loopback
// client's) and its socket's local address is the host's published one,
// not 10.0.2.100; a client inside the container is accepted as it is; a
// blocking accept (busybox httpd) gets its clients too.
func TestNetBypassPublish(t *testing.T) {
	nh := netNeedHelper(t)
	ns := netTestHost(t)
	forEachUser(t, func(t *testing.T, u User) {
		ports := netFreePorts(t, "tcp", 3)
		port, hport, xport := ports[0], ports[1], ports[2]
		uport := netFreePort(t, "udp")
		name := netName("byppub")
		netDetached(t, u, name, "--network", "slirp:bypass=true", "-p", fmt.Sprintf("%d:7000", port),
			"-p", fmt.Sprintf("%d:80", hport), "-p", fmt.Sprintf("%d:7001", xport), "-p", fmt.Sprintf("%d:5353/udp", uport),
			"-v", filepath.Dir(nh)+":/nh:ro", "busybox", "sh", "-c",
			"echo served > /tmp/index.html; httpd -p 80 -h /tmp; /nh/nethelper udp-echo :5353 & exec /nh/nethelper tcp-echo :7000")
		netWaitLogs(t, u, name, "listening")
		client := func(cmd *exec.Cmd) (peer, local string) {
			t.Helper()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			m := regexp.MustCompile(`^peer=(\S+)\nhello\n?$`).FindStringSubmatch(string(out))
			l := regexp.MustCompile(`local=(\S+)`).FindStringSubmatch(stderr.String())
			if err != nil || m == nil || l == nil {
				t.Fatalf("%v: want the peer line and the echo: %q, %v, stderr %q", cmd.Args, out, err, stderr.String())
			}
			return m[1], l[1]
		}
		// From the host's loopback: the service sees the client's own port.
		peer, local := client(exec.Command(nh, "tcp-client", fmt.Sprintf("127.0.0.1:%d", port), "hello"))
		if peer != local {
			t.Errorf("host loopback client %s: the service saw %s, want the client itself (handed over, not spliced)", local, peer)
		}
		// From the host's ::1 too (the doorbell rings from the container's
		// ::1; the supervisor died of a panic binding it once).
		if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
			ln.Close()
			peer, local := client(exec.Command(nh, "tcp-client", fmt.Sprintf("[::1]:%d", port), "hello"))
			if peer != local {
				t.Errorf("host ::1 client %s: the service saw %s, want the client itself", local, peer)
			}
		}
		// From the test host: its own address, at the host's address.
		peer, local = client(ns.Command(nh, "tcp-client", fmt.Sprintf("%s:%d", ns.HostAddr, port), "hello"))
		if peer != local {
			t.Errorf("test host client %s: the service saw %s, want the client itself", local, peer)
		}
		logs := netWaitLogs(t, u, name, regexp.QuoteMeta(ns.NSAddr.String()))
		hostSide := fmt.Sprintf(`tcp peer=%s:\d+ local=%s:%d\n`, regexp.QuoteMeta(ns.NSAddr.String()), regexp.QuoteMeta(ns.HostAddr.String()), port)
		if !regexp.MustCompile(hostSide).MatchString(logs) {
			t.Errorf("the service's log: want the test host's connection on the host's socket (%s):\n%s", hostSide, logs)
		}
		// Inside the container: its own connection, as without bypass.
		r := rl(t, u, "exec", name, "/nh/nethelper", "tcp-client", "10.0.2.100:7000", "hello")
		if r.Code != 0 || !regexp.MustCompile(`^peer=10\.0\.2\.100:\d+\nhello`).MatchString(r.Stdout) {
			t.Errorf("a client in the container: want its echo:\n%v", r)
		}
		logs = netWaitLogs(t, u, name, `local=10\.0\.2\.100:7000`)
		// busybox httpd accepts blocking.
		got, err := netHTTPGet(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", hport))
		if err != nil || got != "served\n" {
			t.Errorf("GET from busybox httpd (a blocking accept) through -p %d:80: %q, %v", hport, got, err)
		}
		// UDP ports stay the stack's (rl-net's), beside the TCP ones.
		out, err := exec.Command(nh, "udp-client", fmt.Sprintf("127.0.0.1:%d", uport), "udp-hello").CombinedOutput()
		if err != nil || !regexp.MustCompile(`^peer=127\.0\.0\.1:\d+ udp-hello\n$`).MatchString(string(out)) {
			t.Errorf("UDP to -p %d/udp beside the handed-over TCP ports: want the echo, got %q, %v", uport, out, err)
		}
		// A service rl exec started: its accept is reported too.
		rlOK(t, u, "exec", "-d", name, "/nh/nethelper", "tcp-echo", ":7001")
		var err2 error
		for i := 0; i < 50; i++ {
			var c net.Conn
			if c, err2 = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", xport)); err2 == nil {
				c.SetDeadline(time.Now().Add(time.Second))
				_, err2 = c.Read(make([]byte, 1)) // the peer line: the service is up
				c.Close()
				if err2 == nil {
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		peer, local = client(exec.Command(nh, "tcp-client", fmt.Sprintf("127.0.0.1:%d", xport), "hello"))
		if peer != local {
			t.Errorf("a service rl exec started, host loopback client %s: the service saw %s, want the client itself", local, peer)
		}
		// httpd waits in accept(2) again: the supervisor must not wait for
		// it in the kernel, where nothing would end its wait at rm.
		start := time.Now()
		if r := rl(t, u, "rm", "-f", name); r.Code != 0 || time.Since(start) > 10*time.Second {
			t.Errorf("rl rm -f with a blocking accept waiting: %v after %v, want it removed at once", r, time.Since(start))
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs)
		}
	})
}
