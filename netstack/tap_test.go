package netstack

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlcontainers/rl/netstack/link"
)

// tapChildEnv marks the re-executed test binary that plays the container:
// root of a new user namespace with its own network namespace and a real TAP.
const tapChildEnv = "RL_NETSTACK_TAP_CHILD"

func TestMain(m *testing.M) {
	if port := os.Getenv(tapChildEnv); port != "" {
		if err := tapChild(port); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestTAP runs the whole path on a real TAP: a child in new user and network
// namespaces calls link.SetupGuest and hands the TAP fd over SCM_RIGHTS, as
// the container's init does; the stack runs here, in the host's network
// namespace; the child's kernel TCP then reaches a server on the host's
// loopback through the gateway and streams both ways.
func TestTAP(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs user namespaces and /dev/net/tun")
	}
	if fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
		t.Skipf("/dev/net/tun is unusable here: %v", &link.TunError{Op: "open /dev/net/tun", Err: err})
	} else {
		unix.Close(fd)
	}
	size := int64(256 << 20)
	if testing.Verbose() {
		size = 2 << 30
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// The first 8 bytes say how much to send back after reading
			// everything the client sends before its FIN.
			go func() {
				defer c.Close()
				var n int64
				if binary.Read(c, binary.BigEndian, &n) != nil {
					return
				}
				io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, make([]byte, 1<<20))
				io.CopyN(struct{ io.Writer }{c}, zeros{}, n)
			}()
		}
	}()

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	parent, child := os.NewFile(uintptr(fds[0]), "parent"), os.NewFile(uintptr(fds[1]), "child")
	defer parent.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", tapChildEnv, ln.Addr().(*net.TCPAddr).Port), "RL_TAP_SIZE="+strconv.FormatInt(size, 10))
	cmd.ExtraFiles = []*os.File{child}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSPC) {
			t.Skipf("cannot create a user namespace here: %v", err)
		}
		t.Fatal(err)
	}
	child.Close()
	defer cmd.Wait()

	// Receive the TAP fd, start the stack, tell the child to go on.
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(parent.Fd()), buf, oob, 0)
	if err != nil || oobn == 0 {
		cmd.Wait()
		if strings.HasPrefix(out.String(), "SKIP: ") {
			t.Skip(strings.TrimPrefix(out.String(), "SKIP: "))
		}
		t.Fatalf("receiving the TAP fd: %v\n%s", err, out.String())
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		t.Fatal(err)
	}
	tapFDs, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	cfg := allowLoopback()
	cfg.MTU = tapMTU()
	ep, err := NewTAPEndpoint(tapFDs[0], cfg.MTU)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen([]PortMapping{{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), GuestPort: tapPublished}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, ep, l)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	parent.Write([]byte{1})

	// The child listens on the published port once its NAT streams are
	// done; then this side, a client on the host, uploads through -p.
	if _, err := parent.Read(buf); err == nil {
		c, err := net.Dial("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), l.Ports()[0].HostPort).String())
		if err != nil {
			t.Fatal(err)
		}
		io.CopyBuffer(struct{ io.Writer }{c}, io.LimitReader(zeros{}, size), make([]byte, 1<<20))
		c.Close()
	}

	if err := cmd.Wait(); err != nil {
		t.Fatalf("the container side failed: %v\n%s", err, out.String())
	}
	t.Logf("through a real TAP:\n%s", out.String())
	st := s.Stats()
	t.Logf("TCP segments: received %d, sent %d", st.TCP.ValidSegmentsReceived.Value(), st.TCP.SegmentsSent.Value())
	// The stack's side of the memory (with the test's server and client,
	// which share this process): the peak resident set.
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				t.Logf("peak RSS of the stack's process: %s", strings.Join(strings.Fields(l)[1:], " "))
			}
		}
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// tapMTU is the link's MTU in the whole-path test: RL_TAP_MTU, or the
// default. A small one (1500) checks TSO both ways: 64 KiB segments cross
// the link whatever the MTU.
func tapMTU() uint32 {
	if m, err := strconv.ParseUint(os.Getenv("RL_TAP_MTU"), 10, 32); err == nil {
		return uint32(m)
	}
	return DefaultConfig().MTU
}

// tapPublished is the container port the whole-path test publishes.
const tapPublished = 5201

// tapChild runs in the re-executed binary: it sets the link up, sends the
// TAP fd over fd 3, waits for the stack, then streams through the gateway.
func tapChild(port string) error {
	sock := 3
	lc := DefaultConfig().Link()
	lc.MTU = tapMTU()
	fd, err := link.SetupGuest(lc)
	if err != nil {
		var te *link.TunError
		if errors.As(err, &te) {
			fmt.Println("SKIP:", err)
			return nil
		}
		return err
	}
	if err := unix.Sendmsg(sock, []byte{0}, unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("sending the TAP fd: %w", err)
	}
	unix.Close(fd)
	if _, err := unix.Read(sock, make([]byte, 1)); err != nil {
		return err
	}
	size, _ := strconv.ParseInt(os.Getenv("RL_TAP_SIZE"), 10, 64)

	start := time.Now()
	c, err := net.DialTimeout("tcp", "10.0.2.2:"+port, 5*time.Second)
	if err != nil {
		return fmt.Errorf("connecting to the host through the gateway: %w", err)
	}
	defer c.Close()
	fmt.Printf("connect: %v\n", time.Since(start))
	w := bufio.NewWriterSize(c, 1<<20)
	binary.Write(w, binary.BigEndian, size)
	start = time.Now()
	if _, err := io.CopyN(w, zeros{}, size); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	w.Flush()
	c.(*net.TCPConn).CloseWrite()
	up := time.Since(start)
	start = time.Now()
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, make([]byte, 1<<20))
	if err != nil || n != size {
		return fmt.Errorf("download: %d of %d bytes: %v", n, size, err)
	}
	down := time.Since(start)
	gbit := func(d time.Duration) float64 { return float64(size) * 8 / d.Seconds() / 1e9 }
	fmt.Printf("container -> host: %.1f Gbit/s (%d MiB in %v)\n", gbit(up), size>>20, up.Round(time.Millisecond))
	fmt.Printf("host -> container: %.1f Gbit/s (%d MiB in %v)\n", gbit(down), size>>20, down.Round(time.Millisecond))

	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", tapPublished))
	if err != nil {
		return err
	}
	defer ln.Close()
	if _, err := unix.Write(sock, []byte{2}); err != nil {
		return err
	}
	pc, err := ln.Accept()
	if err != nil {
		return err
	}
	defer pc.Close()
	start = time.Now()
	n, err = io.CopyBuffer(io.Discard, struct{ io.Reader }{pc}, make([]byte, 1<<20))
	if err != nil || n != size {
		return fmt.Errorf("published port: %d of %d bytes: %v", n, size, err)
	}
	pub := time.Since(start)
	fmt.Printf("host -> container through -p: %.1f Gbit/s (%d MiB in %v)\n", gbit(pub), size>>20, pub.Round(time.Millisecond))
	return nil
}
