package netconf

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// splicedPair returns the two client ends of two loopback connections
// whose server ends are joined by Splice, and a channel closed when Splice
// returns.
func splicedPair(t *testing.T) (a, b *net.TCPConn, done chan struct{}) {
	t.Helper()
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var ends [2]*net.TCPConn
	var clients [2]*net.TCPConn
	for i := range ends {
		c, err := net.DialTCP("tcp", nil, l.Addr().(*net.TCPAddr))
		if err != nil {
			t.Fatal(err)
		}
		s, err := l.AcceptTCP()
		if err != nil {
			t.Fatal(err)
		}
		clients[i], ends[i] = c, s
		t.Cleanup(func() { c.Close() })
	}
	done = make(chan struct{})
	go func() {
		defer close(done)
		Splice(ends[0], ends[1])
	}()
	return clients[0], clients[1], done
}

// pattern is n bytes that differ along the stream.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>12)
	}
	return b
}

func TestSpliceBothWaysAndHalfClose(t *testing.T) {
	a, b, done := splicedPair(t)
	up, down := pattern(8<<20+123, 1), pattern(3<<20+7, 2)
	a.SetReadDeadline(time.Now().Add(30 * time.Second))
	b.SetReadDeadline(time.Now().Add(30 * time.Second))
	// Both directions at once, then a's FIN: b reads all of up and EOF
	// while its own stream still reaches a.
	errs := make(chan error, 2)
	go func() {
		_, err := a.Write(up)
		if err == nil {
			err = a.CloseWrite()
		}
		errs <- err
	}()
	go func() {
		_, err := b.Write(down)
		errs <- err
	}()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("b reading: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(up) {
		t.Fatalf("b got %d bytes, not the %d sent", len(got), len(up))
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := b.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(a)
	if err != nil || !bytes.Equal(got, down) {
		t.Fatalf("a got %d bytes (%v), want the %d sent", len(got), err, len(down))
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Splice did not return after both FINs")
	}
}

func TestSpliceResetReachesOtherSide(t *testing.T) {
	a, b, done := splicedPair(t)
	if _, err := a.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(b, buf); err != nil {
		t.Fatal(err)
	}
	a.SetLinger(0)
	a.Close() // a reset, not a FIN
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := b.Read(buf)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("b read %v after a's reset, want ECONNRESET", err)
	}
	<-done
}

// Pipes go back to the pool, or are closed: many connections in turn leave
// no descriptors behind.
func TestSpliceKeepsNoDescriptors(t *testing.T) {
	fds := func() int {
		e, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(e)
	}
	one := func() {
		a, b, done := splicedPair(t)
		if _, err := a.Write(pattern(100<<10, 3)); err != nil {
			t.Fatal(err)
		}
		a.CloseWrite()
		if n, err := io.Copy(io.Discard, b); err != nil || n != 100<<10 {
			t.Fatalf("b read %d (%v)", n, err)
		}
		b.Close()
		a.Close()
		<-done
	}
	// Collections empty the pool (sync.Pool drops what two found unused),
	// and the pipes' cleanups close them: count once the number settles.
	settled := func() int {
		n, prev := fds(), -1
		for i := 0; i < 100 && (i < 4 || n != prev); i++ {
			runtime.GC()
			time.Sleep(20 * time.Millisecond)
			prev, n = n, fds()
		}
		return n
	}
	one()
	before := settled()
	for range 50 {
		one()
	}
	if after := settled(); after > before {
		t.Fatalf("%d descriptors open after 50 spliced connections, %d before", after, before)
	}
}
