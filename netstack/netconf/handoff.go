package netconf

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The stack (package netstack) runs in a process of its own, rl-net
// (cmd/rl-net), started by the supervisor only once the container uses its
// network: WaitForTraffic says when, and the TAP and the published ports'
// sockets go to rl-net as files (Listeners.Files, ListenersFromFiles).

// Files are duplicates of the listeners' sockets, in Ports' order, for
// another process (ListenersFromFiles); the caller closes them.
func (l *Listeners) Files() ([]*os.File, error) {
	if l == nil {
		return nil, nil
	}
	var files []*os.File
	for _, pl := range l.ls {
		var f *os.File
		var err error
		if pl.tcp != nil {
			f, err = pl.tcp.File()
		} else {
			f, err = pl.udp.File()
		}
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("passing on the published port %s: %w", pl.m, err)
		}
		files = append(files, f)
	}
	return files, nil
}

// ListenersFromFiles makes Listeners of sockets that Files made elsewhere,
// with their mappings (Ports); it duplicates them, the caller closes files.
func ListenersFromFiles(ports []PortMapping, files []*os.File) (*Listeners, error) {
	if len(ports) != len(files) {
		return nil, fmt.Errorf("netstack: %d published ports, %d sockets", len(ports), len(files))
	}
	l := &Listeners{}
	for i, m := range ports {
		pl := &portListener{m: m}
		switch m.Proto {
		case "tcp":
			ln, err := net.FileListener(files[i])
			if err != nil {
				l.Close()
				return nil, fmt.Errorf("netstack: the socket of %s: %w", m, err)
			}
			tl, ok := ln.(*net.TCPListener)
			if !ok {
				ln.Close()
				l.Close()
				return nil, fmt.Errorf("netstack: the socket of %s is no TCP listener", m)
			}
			pl.tcp = tl
		case "udp":
			pc, err := net.FilePacketConn(files[i])
			if err != nil {
				l.Close()
				return nil, fmt.Errorf("netstack: the socket of %s: %w", m, err)
			}
			uc, ok := pc.(*net.UDPConn)
			if !ok {
				pc.Close()
				l.Close()
				return nil, fmt.Errorf("netstack: the socket of %s is no UDP socket", m)
			}
			pl.udp = uc
		default:
			l.Close()
			return nil, fmt.Errorf("netstack: unknown protocol %q", m.Proto)
		}
		l.ls = append(l.ls, pl)
	}
	return l, nil
}

// mldv2Reports is the Ethernet address of ff02::16, where the container's
// kernel sends MLDv2 reports on its own when the link comes up and at
// random times after (no stack needs them: rl's answers no multicast).
var mldv2Reports = [6]byte{0x33, 0x33, 0, 0, 0, 0x16}

// maxFrame holds any frame the TAP gives: a GSO frame's 64 KiB and tail,
// and the vnet header.
const maxFrame = VnetHdrSize + GSOMaxSize + TailSize

// WaitForTraffic waits until the container uses its network: a frame on
// the TAP (fd, left open) other than an MLDv2 report, which it returns as
// read (vnet header included, for NewTAPEndpointAfter), or a client at one
// of l's published ports (no frame; the client waits in the socket). MLDv2
// reports read on the way are dropped. It returns ctx's error when ctx ends
// first. The listeners are only polled (through duplicates), and usable as
// before afterwards.
func WaitForTraffic(ctx context.Context, fd int, l *Listeners) ([]byte, error) {
	tap, vnet, err := PollTAP(fd)
	if err != nil {
		return nil, err
	}
	defer tap.Close()
	skip := 0
	if vnet {
		skip = VnetHdrSize
	}

	type event struct {
		frame []byte
		err   error
	}
	// Files' duplicates share the sockets' O_NONBLOCK, so they are in Go's
	// netpoller (a listener's own SyscallConn cannot be read: EINVAL).
	socks, err := l.Files()
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, f := range socks {
			f.Close()
		}
	}()
	events := make(chan event, 1+len(socks))
	var wg sync.WaitGroup
	watch := func(f func() event) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			events <- f()
		}()
	}
	watch(func() event {
		rc, err := tap.SyscallConn()
		if err != nil {
			return event{err: err}
		}
		buf := make([]byte, maxFrame)
		for {
			var n int
			var rerr error
			if err := rc.Read(func(fd uintptr) bool {
				n, rerr = unix.Read(int(fd), buf)
				return rerr != unix.EAGAIN
			}); err != nil {
				return event{err: err} // the deadline below: stopped
			}
			switch {
			case rerr == unix.EINTR:
				continue
			case rerr != nil:
				return event{err: fmt.Errorf("reading the container's TAP: %w", rerr)}
			case n < skip+6:
				continue
			case [6]byte(buf[skip:skip+6]) == mldv2Reports:
				continue
			}
			return event{frame: append([]byte(nil), buf[:n]...)}
		}
	})
	for _, c := range socks {
		watch(func() event {
			raw, err := c.SyscallConn()
			if err != nil {
				return event{err: err}
			}
			waited := false
			err = raw.Read(func(uintptr) bool {
				// The first call only asks to wait for readability (a
				// connection or a datagram), the second says it came.
				defer func() { waited = true }()
				return waited
			})
			return event{err: err}
		})
	}
	var ev event
	select {
	case ev = <-events:
	case <-ctx.Done():
		ev.err = ctx.Err()
	}
	// Wake the other watchers (on their duplicates) and wait for them.
	past := time.Unix(1, 0)
	tap.SetReadDeadline(past)
	for _, c := range socks {
		c.SetReadDeadline(past)
	}
	wg.Wait()
	if ev.err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return ev.frame, ev.err
}

// Handoff is what the supervisor tells rl-net, as JSON on their control
// socket (rl-net's fd 3), with the TAP as fd 4, the published ports'
// sockets (Ports' order) from fd 5 on, and the container's network
// namespace after them when NetNS (SpliceLoopback).
type Handoff struct {
	Config Config        `json:"config"`
	Ports  []PortMapping `json:"ports,omitempty"`
	First  []byte        `json:"first,omitempty"` // the frame WaitForTraffic read
	NetNS  bool          `json:"netns,omitempty"`
}
