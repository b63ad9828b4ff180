package netstack

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
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
	ep, err := NewTAPEndpoint(tapFDs[0], cfg.MTU)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	parent.Write([]byte{1})

	if err := cmd.Wait(); err != nil {
		t.Fatalf("the container side failed: %v\n%s", err, out.String())
	}
	t.Logf("through a real TAP:\n%s", out.String())
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// tapChild runs in the re-executed binary: it sets the link up, sends the
// TAP fd over fd 3, waits for the stack, then streams through the gateway.
func tapChild(port string) error {
	sock := 3
	fd, err := link.SetupGuest(DefaultConfig().Link())
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
	return nil
}
