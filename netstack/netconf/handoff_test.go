package netconf

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// frameLink is a socketpair that keeps frame boundaries, as a TAP does:
// the test writes frames to one end and WaitForTraffic reads the other.
func frameLink(t *testing.T) (guest, ours int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func frame(dst [6]byte, payload string) []byte {
	f := append(dst[:], 2, 0, 0, 0, 0, 1, 0x86, 0xdd)
	return append(f, payload...)
}

func TestWaitForTrafficSkipsMLD(t *testing.T) {
	guest, ours := frameLink(t)
	arp := frame([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "who has 10.0.2.2")
	for _, f := range [][]byte{frame(mldv2Reports, "report"), frame(mldv2Reports, "report"), arp} {
		if _, err := unix.Write(guest, f); err != nil {
			t.Fatal(err)
		}
	}
	got, err := WaitForTraffic(context.Background(), ours, nil)
	if err != nil || !bytes.Equal(got, arp) {
		t.Fatalf("WaitForTraffic = %q, %v; want the first frame that is no MLDv2 report, %q", got, err, arp)
	}
	// The fd is the caller's still.
	if _, err := unix.FcntlInt(uintptr(ours), unix.F_GETFD, 0); err != nil {
		t.Errorf("WaitForTraffic closed the TAP's fd: %v", err)
	}
}

func TestWaitForTrafficPublishedPort(t *testing.T) {
	_, ours := frameLink(t)
	l, err := Listen([]PortMapping{
		{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1")},
		{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ports := l.Ports()
	for i, p := range ports {
		// One port at a time: the other's client stays queued.
		one := &Listeners{ls: l.ls[i : i+1]}
		done := make(chan error, 1)
		go func() {
			_, err := WaitForTraffic(context.Background(), ours, one)
			done <- err
		}()
		select {
		case err := <-done:
			t.Fatalf("%s: WaitForTraffic returned before any traffic: %v", p, err)
		case <-time.After(100 * time.Millisecond):
		}
		c, err := net.Dial(p.Proto, netip.AddrPortFrom(p.HostIP, p.HostPort).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if p.Proto == "udp" {
			c.Write([]byte("ping"))
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: a client came, WaitForTraffic still waits", p)
		}
	}
	// The client is still there for whoever serves the port: the
	// listeners are as they were (and pass on as files).
	files, err := l.Files()
	if err != nil {
		t.Fatal(err)
	}
	l2, err := ListenersFromFiles(ports, files)
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if got := l2.Ports(); len(got) != 2 || got[0] != ports[0] || got[1] != ports[1] {
		t.Errorf("ListenersFromFiles ports %v, want %v", got, ports)
	}
	l2.ls[0].tcp.SetDeadline(time.Now().Add(5 * time.Second))
	if c, err := l2.ls[0].tcp.Accept(); err != nil {
		t.Errorf("accepting the waiting client through the passed-on listener: %v", err)
	} else {
		c.Close()
	}
	l2.ls[1].udp.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	if n, _, err := l2.ls[1].udp.ReadFrom(buf); err != nil || string(buf[:n]) != "ping" {
		t.Errorf("the waiting datagram through the passed-on socket: %q, %v", buf[:n], err)
	}
	if _, err := ListenersFromFiles(ports, nil); err == nil {
		t.Error("ListenersFromFiles with no files: want an error")
	}
}

func TestWaitForTrafficCancelled(t *testing.T) {
	_, ours := frameLink(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := WaitForTraffic(ctx, ours, nil); err != context.Canceled {
		t.Errorf("WaitForTraffic after cancel: %v, want context.Canceled", err)
	}
}
