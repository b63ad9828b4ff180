package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// NetNS is a test host: a network namespace joined to the host's by a veth
// pair on a private /30 of its own. The host side has HostAddr, the
// namespace side NSAddr; the namespace has lo up and no other route than its
// /30, so what runs in it can talk only to the host. Made as root with
// iproute2 (`ip netns add`, `ip link add ... type veth`).
type NetNS struct {
	Name     string     // the namespace, for `ip netns exec`
	HostIf   string     // the veth end in the host's namespace
	NSIf     string     // the veth end in the namespace
	HostAddr netip.Addr // address of HostIf (.1 of the /30)
	NSAddr   netip.Addr // address of NSIf (.2 of the /30)
}

var netnsCount atomic.Int32

// NewNetNS makes a test host on the first /30 of 192.168.250.0/24 that no
// interface of the host uses yet (two test runs at once get different ones).
// Close removes it; the caller must arrange that it runs (t.Cleanup).
func NewNetNS() (*NetNS, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("NewNetNS: making a network namespace needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("%w (install Debian's iproute2)", err)
	}
	n := netnsCount.Add(1)
	id := fmt.Sprintf("%d%d", os.Getpid()%100000, n)
	ns := &NetNS{
		Name:   "rltest-" + id,
		HostIf: "rlh" + id, // interface names: at most 15 bytes
		NSIf:   "rln" + id,
	}
	used := map[netip.Prefix]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok && ipn.IP.To4() != nil {
					p, _ := ip.Prefix(30)
					used[p] = true
				}
			}
		}
	}
	for last := 0; last < 256; last += 4 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, 250, byte(last)}), 30)
		if used[p] {
			continue
		}
		ns.HostAddr = netip.AddrFrom4([4]byte{192, 168, 250, byte(last + 1)})
		ns.NSAddr = netip.AddrFrom4([4]byte{192, 168, 250, byte(last + 2)})
		break
	}
	if !ns.HostAddr.IsValid() {
		return nil, fmt.Errorf("NewNetNS: every /30 of 192.168.250.0/24 is in use on this host")
	}
	steps := [][]string{
		{"netns", "add", ns.Name},
		{"link", "add", ns.HostIf, "type", "veth", "peer", "name", ns.NSIf, "netns", ns.Name},
		{"addr", "add", ns.HostAddr.String() + "/30", "dev", ns.HostIf},
		{"link", "set", ns.HostIf, "up"},
		{"-n", ns.Name, "addr", "add", ns.NSAddr.String() + "/30", "dev", ns.NSIf},
		{"-n", ns.Name, "link", "set", ns.NSIf, "up"},
		{"-n", ns.Name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			ns.Close()
			return nil, fmt.Errorf("ip %s: %w\n%s", strings.Join(s, " "), err, out)
		}
	}
	// The host side's address is usable once DAD-free IPv4 is up: wait until
	// the namespace can reach it (ARP), at most 5 s.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command("ip", "netns", "exec", ns.Name, "ping", "-c", "1", "-W", "1", ns.HostAddr.String()).CombinedOutput()
		if err == nil {
			break
		}
		if _, lerr := exec.LookPath("ping"); lerr != nil || time.Now().After(deadline) {
			if lerr == nil {
				ns.Close()
				return nil, fmt.Errorf("test host %s cannot ping %s: %v\n%s", ns.Name, ns.HostAddr, err, out)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ns, nil
}

// Command is name args... run in the namespace (`ip netns exec`), as root.
func (ns *NetNS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Close removes the namespace and the veth pair (deleting one end deletes
// both; removing the namespace deletes its end). It tolerates what is gone
// already, and kills nothing: stop what runs in the namespace first.
func (ns *NetNS) Close() error {
	var errs []string
	if _, err := net.InterfaceByName(ns.HostIf); err == nil {
		if out, err := exec.Command("ip", "link", "del", ns.HostIf).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Sprintf("ip link del %s: %v: %s", ns.HostIf, err, out))
		}
	}
	if _, err := os.Stat(filepath.Join("/run/netns", ns.Name)); err == nil {
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Sprintf("ip netns del %s: %v: %s", ns.Name, err, out))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// Server is a background process (a NetHelper server) whose first output
// line said it was ready.
type Server struct {
	Cmd *exec.Cmd
	out *lockedBuffer
}

// StartServer starts cmd, which must print one line when it is ready to
// serve (NetHelper's servers print "listening ADDR"), and waits up to 10 s
// for that line. The rest of its stdout and stderr is kept for Output.
func StartServer(cmd *exec.Cmd) (*Server, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &Server{Cmd: cmd, out: &lockedBuffer{}}
	cmd.Stderr = s.out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		br := bufio.NewReader(stdout)
		line, err := br.ReadString('\n')
		if err != nil {
			ready <- fmt.Errorf("%s: no ready line: %v (output: %q)", strings.Join(cmd.Args, " "), err, line+s.out.String())
		} else {
			s.out.Write([]byte(line))
			ready <- nil
		}
		io.Copy(s.out, br)
	}()
	select {
	case err := <-ready:
		if err != nil {
			s.Stop()
			return nil, err
		}
	case <-time.After(10 * time.Second):
		s.Stop()
		return nil, fmt.Errorf("%s: not ready after 10 s", strings.Join(cmd.Args, " "))
	}
	return s, nil
}

// Output is what the server printed so far (the ready line included).
func (s *Server) Output() string { return s.out.String() }

// Stop kills the server and waits for it.
func (s *Server) Stop() {
	if s.Cmd.Process != nil {
		s.Cmd.Process.Kill()
		s.Cmd.Wait()
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// BuildNetHelper compiles nethelper, a small static program (standard
// library only) for network tests, to dir/nethelper (mode 0755): it runs on
// the host, in a test network namespace and inside a busybox container
// (bind-mounted). Modes:
//
//	nethelper tcp-echo ADDR        accept; per connection write "peer=IP:PORT\n" then echo;
//	                               log "tcp peer=IP:PORT local=IP:PORT" on stdout
//	nethelper udp-echo ADDR        answer each datagram with "peer=IP:PORT DATA"; log it on stdout
//	nethelper dns ADDR IPV4        answer every DNS query with one A record IPV4 (none for other types)
//	nethelper tcp-client ADDR MSG  connect, send MSG, half-close, print the reply;
//	                               on failure print "error: ERR" and exit 1; stderr: "elapsed=MSms",
//	                               and once connected "local=IP:PORT" (the socket's own address)
//	nethelper udp-client ADDR MSG  send MSG, print the reply (3 tries of 2 s)
//	nethelper ping IPV4            ICMP echo from an unprivileged ICMP socket (no
//	                               CAP_NET_RAW: net.ipv4.ping_group_range must allow
//	                               the caller's group); print "reply from IP" (3 tries of 2 s)
//
// Servers print "listening ADDR" on stdout once bound.
func BuildNetHelper(dir string) (string, error) {
	src, err := os.MkdirTemp(dir, ".nethelper-src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(netHelperSource), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module nethelper\n\ngo 1.21\n"), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "nethelper")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build nethelper: %w\n%s", err, b)
	}
	return out, os.Chmod(out, 0o755)
}

const netHelperSource = `package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: nethelper tcp-echo|udp-echo|dns|tcp-client|udp-client|ping ADDR [ARG]")
		os.Exit(2)
	}
	mode, addr := os.Args[1], os.Args[2]
	arg := ""
	if len(os.Args) > 3 {
		arg = os.Args[3]
	}
	switch mode {
	case "tcp-echo":
		tcpEcho(addr)
	case "udp-echo":
		udpEcho(addr)
	case "dns":
		dns(addr, arg)
	case "tcp-client":
		tcpClient(addr, arg)
	case "udp-client":
		udpClient(addr, arg)
	case "ping":
		ping(addr)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		os.Exit(2)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "nethelper:", err)
	os.Exit(1)
}

func tcpEcho(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fail(err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			fail(err)
		}
		fmt.Printf("tcp peer=%s local=%s\n", c.RemoteAddr(), c.LocalAddr())
		go func(c net.Conn) {
			defer c.Close()
			fmt.Fprintf(c, "peer=%s\n", c.RemoteAddr())
			io.Copy(c, c)
		}(c)
	}
}

func udpEcho(addr string) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		fail(err)
	}
	fmt.Printf("listening %s\n", pc.LocalAddr())
	buf := make([]byte, 65536)
	for {
		k, from, err := pc.ReadFrom(buf)
		if err != nil {
			fail(err)
		}
		fmt.Printf("udp peer=%s data=%q\n", from, buf[:k])
		pc.WriteTo(append([]byte("peer="+from.String()+" "), buf[:k]...), from)
	}
}

func dns(addr, ip string) {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		fail(fmt.Errorf("dns: want an IPv4 answer, not %q", ip))
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		fail(err)
	}
	fmt.Printf("listening %s\n", pc.LocalAddr())
	buf := make([]byte, 65536)
	for {
		k, from, err := pc.ReadFrom(buf)
		if err != nil {
			fail(err)
		}
		q := buf[:k]
		if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
			continue
		}
		// The question: labels up to the root, then type and class.
		i := 12
		for i < len(q) && q[i] != 0 {
			i += int(q[i]) + 1
		}
		if i+5 > len(q) {
			continue
		}
		end := i + 5
		qtype := binary.BigEndian.Uint16(q[i+1:])
		r := make([]byte, 0, 512)
		r = append(r, q[0], q[1])                 // id
		r = append(r, 0x80|(q[2]&0x01), 0x80)     // QR, RD copied; RA; rcode 0
		r = append(r, 0, 1)                       // QDCOUNT
		answer := qtype == 1 || qtype == 255
		if answer {
			r = append(r, 0, 1) // ANCOUNT
		} else {
			r = append(r, 0, 0)
		}
		r = append(r, 0, 0, 0, 0) // NSCOUNT, ARCOUNT
		r = append(r, q[12:end]...)
		if answer {
			b := a.As4()
			r = append(r, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, b[0], b[1], b[2], b[3])
		}
		fmt.Printf("dns query from=%s type=%d\n", from, qtype)
		pc.WriteTo(r, from)
	}
}

func tcpClient(addr, msg string) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	defer func() { fmt.Fprintf(os.Stderr, "elapsed=%dms\n", time.Since(start).Milliseconds()) }()
	if err != nil {
		fmt.Printf("error: %v\n", err)
		fmt.Fprintf(os.Stderr, "elapsed=%dms\n", time.Since(start).Milliseconds())
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "local=%s\n", c.LocalAddr())
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(msg))
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	os.Stdout.Write(b)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		os.Exit(1)
	}
}

func udpClient(addr, msg string) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		fail(err)
	}
	buf := make([]byte, 65536)
	for try := 0; try < 3; try++ {
		c.Write([]byte(msg))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		k, err := c.Read(buf)
		if err == nil {
			os.Stdout.Write(buf[:k])
			fmt.Println()
			return
		}
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			fmt.Printf("error: %v\n", err)
			os.Exit(1)
		}
	}
	fmt.Println("error: no reply after 3 tries")
	os.Exit(1)
}

func ping(addr string) {
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Is4() {
		fail(fmt.Errorf("ping: %q is not an IPv4 address", addr))
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, syscall.IPPROTO_ICMP)
	if err != nil {
		fmt.Printf("error: ICMP socket: %v\n", err)
		os.Exit(1)
	}
	tv := syscall.Timeval{Sec: 2}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		fail(err)
	}
	to := &syscall.SockaddrInet4{Addr: ip.As4()}
	// An echo request; the kernel sets its identifier and checksum.
	req := []byte{8, 0, 0, 0, 0, 0, 0, 1, 'r', 'l'}
	buf := make([]byte, 1500)
	for try := 0; try < 3; try++ {
		if err := syscall.Sendto(fd, req, 0, to); err != nil {
			fmt.Printf("error: sendto: %v\n", err)
			os.Exit(1)
		}
		n, from, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			continue
		}
		if f, ok := from.(*syscall.SockaddrInet4); ok && n >= 8 && buf[0] == 0 {
			fmt.Printf("reply from %v\n", netip.AddrFrom4(f.Addr))
			return
		}
	}
	fmt.Println("error: no reply after 3 tries")
	os.Exit(1)
}
`
