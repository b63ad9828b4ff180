package netconf

import (
	"io"
	"net"
	"sync"
)

// BothWays runs half(a, b) and half(b, a) side by side, each copying its
// source into its destination, and closes both once both are done.
func BothWays[T io.Closer](a, b T, half func(dst, src T)) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		half(a, b)
	}()
	half(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

// Splice copies both ways between two kernel TCP sockets until both
// directions end; io.Copy between *net.TCPConn is splice(2) through a
// pipe, no user-space copy. A clean end of one direction (FIN) becomes a
// FIN on the other side; an error (reset, abort) resets both.
func Splice(a, b *net.TCPConn) {
	BothWays(a, b, spliceHalf)
}

func spliceHalf(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		// Reset both: an abort on one side is one on the other.
		dst.SetLinger(0)
		src.SetLinger(0)
		dst.Close()
		src.Close()
		return
	}
	dst.CloseWrite()
}
