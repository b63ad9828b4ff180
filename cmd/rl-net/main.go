// Command rl-net NAME runs the user-mode network of the container NAME: gVisor's stack on
// the container's TAP, NAT to the host, the DNS relay and the published
// ports (package netstack). The container's supervisor starts it once the
// container first uses its network (netconf.WaitForTraffic) and hands it
// what it needs (netconf.Handoff); it is not meant to be run by hand.
//
// It links the stack and nothing of the store, so the network's memory is
// the stack's. It lives exactly as long as its control socket (fd 3): when
// the supervisor closes it, or dies, rl-net stops the stack and exits.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/rlcontainers/rl/netstack"
	"github.com/rlcontainers/rl/netstack/netconf"
	"golang.org/x/sys/unix"
)

// Fds as the supervisor passes them (netconf.Handoff).
const (
	ctlFD       = 3
	tapFD       = 4
	firstPortFD = 5
)

func main() {
	// The stack's buffers come and go at line rate: collect often, as the
	// supervisor did when it ran the stack itself.
	debug.SetGCPercent(25)
	// One processor, as slirp4netns and pasta have one thread: a frame from
	// the container crosses four goroutines (the TAP reader, gVisor's TCP
	// processor, the relay to the host socket, the queue to the TAP), and
	// with a processor each the hand-offs wake threads (3x the context
	// switches, a third more CPU a byte). Against two processors on 2 CPUs
	// (iperf3, 3 interleaved rounds): NAT container->host 10.4 -> 12.2
	// Gbit/s, host->container level (14.2 -> 14.4), -p spliced 1.05x and
	// 1.10x; rl-net's peak RSS in a host->container stream 14.2 -> 11.8 MB.
	// The relays' system calls are raw (netstack.rawSend, netconf.Splice)
	// so that none hands the processor off, and the TAP reader yields now
	// and then (tapLink.readLoop). GOMAXPROCS in the environment still
	// decides.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "rl-net:", err)
		os.Exit(1)
	}
}

func run() error {
	buf := make([]byte, 256<<10)
	n, err := unix.Read(ctlFD, buf)
	if err != nil || n == 0 {
		return fmt.Errorf("reading the handoff from the supervisor: %v (rl-net is started by rl, not by hand)", err)
	}
	var h netconf.Handoff
	if err := json.Unmarshal(buf[:n], &h); err != nil {
		return fmt.Errorf("the supervisor's handoff: %w", err)
	}
	st, err := start(h)
	reply := "ok"
	if err != nil {
		reply = err.Error()
	}
	if _, werr := unix.Write(ctlFD, []byte(reply)); werr != nil {
		return fmt.Errorf("answering the supervisor: %v (%s)", werr, reply)
	}
	if err != nil {
		os.Exit(1) // the supervisor reports it
	}
	go releaseWhenIdle(st, idleRelease)
	// Until the supervisor closes its end (or exits).
	for {
		n, err := unix.Read(ctlFD, buf)
		if n == 0 || (err != nil && err != unix.EINTR) {
			break
		}
	}
	return st.Close()
}

func start(h netconf.Handoff) (*netstack.Stack, error) {
	var files []*os.File
	for i := range h.Ports {
		files = append(files, os.NewFile(uintptr(firstPortFD+i), "published port"))
	}
	l, err := netconf.ListenersFromFiles(h.Ports, files)
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("the published ports: %w", err)
	}
	ep, err := netstack.NewTAPEndpointAfter(tapFD, h.Config.MTU, h.First)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("the container's TAP: %w", err)
	}
	st, err := netstack.New(h.Config, ep, l)
	if err != nil {
		return nil, fmt.Errorf("starting the container's network: %w", err)
	}
	if h.NetNS {
		st.SpliceLoopback(os.NewFile(uintptr(firstPortFD+len(h.Ports)), "netns"))
	}
	return st, nil
}

// idleRelease is how long the network must be quiet, after traffic, before
// rl-net gives its free memory back.
const idleRelease = 5 * time.Second

// releaseWhenIdle returns the heap's free pages to the kernel once no packet
// has crossed the stack for a whole period after some did: the Go runtime
// keeps them otherwise, and an idle container's rl-net stayed at its peak
// (14 MB after an iperf3 burst, for minutes) instead of ~7 MB.
func releaseWhenIdle(st *netstack.Stack, period time.Duration) {
	var last uint64
	busy := false
	for range time.Tick(period) {
		ip := st.Stats().IP
		n := ip.PacketsReceived.Value() + ip.PacketsSent.Value()
		if n != last {
			last, busy = n, true
			continue
		}
		if busy {
			// Twice: the first collection moves the stack's buffer pools
			// (sync.Pool) to their victim caches, the second frees them.
			runtime.GC()
			debug.FreeOSMemory()
			busy = false
		}
	}
}
