package userns

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

// joined remembers that Join ran, since it removes the variable Inside reads.
var joined bool

// Inside reports whether this process is the child re-executed by Run (the
// variable _RL_USERNS is set, or Join already consumed it). It runs in the
// child, inside the new user namespace, or on the host, where it says false.
func Inside() bool {
	return joined || os.Getenv(envFD) != ""
}

// Child is the child's side of the handshake with Run.
type Child struct {
	// Plan is the mapping the parent actually wrote: ModeSingle if the helpers
	// failed even when the parent planned ModeFull.
	Plan Plan
	// Signals are the signals the parent forwarded, in order. The channel is
	// closed when the parent is gone (EOF on the pipe).
	Signals <-chan syscall.Signal
	// Payload is what the parent's Options.Payload made, or nil.
	Payload []byte

	status *os.File // to the parent: 'D' on Detach
}

// Detach tells the parent to return (exit status 0) without waiting for us:
// rl run -d. It runs in the child. The caller detaches its own stdio and
// session; the parent's forwarded signals stop.
func (c *Child) Detach() error {
	if c.status == nil {
		return errors.New("userns: Detach: no status pipe from the parent")
	}
	_, err := c.status.Write([]byte{msgDetached})
	c.status.Close()
	c.status = nil
	return err
}

// Join waits until the parent has mapped the namespace and released us. It
// runs in the child, inside the new user namespace, before anything else
// needs an ID (until the release the process's IDs are unmapped).
//
// It removes _RL_USERNS and _RL_USERNS_PLAN from the environment so that the
// processes the child starts do not take themselves for it, and from then on
// relays forwarded signals on Child.Signals. The signals the parent forwards
// are also caught here, until the parent is gone, so that a terminal's direct
// copy (Ctrl-C reaches the whole foreground process group) does not kill the
// child: it acts once, on the forwarded copy. If the parent failed to map the namespace Join returns
// an error matching ErrParentFailed: exit 125 without printing, the parent
// reports the error.
func Join() (*Child, error) {
	fdStr := os.Getenv(envFD)
	if fdStr == execJoinValue {
		return joinExec()
	}
	if fdStr == "" {
		return nil, errors.New("userns: Join: not the child of userns.Run (" + envFD + " is not set)")
	}
	fd, err := strconv.Atoi(fdStr)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("userns: Join: %s=%q is not a file descriptor", envFD, fdStr)
	}
	planJSON := os.Getenv(envPlan)
	statusFD, statusErr := strconv.Atoi(os.Getenv(envStatusFD))
	os.Unsetenv(envFD)
	os.Unsetenv(envStatusFD)
	os.Unsetenv(envPlan)
	joined = true
	// The pipe is ours alone: keep it from the processes we exec.
	syscall.CloseOnExec(fd)
	pipe := os.NewFile(uintptr(fd), "userns-pipe")

	// Catch (and drop) direct copies before the first read: Ctrl-C during the
	// handshake must not kill us either. Notify rather than Ignore, because an
	// ignored signal stays ignored across exec, in the workload.
	absorbed := make(chan os.Signal, 1)
	signal.Notify(absorbed, forwarded...)

	var msg [1]byte
	if _, err := io.ReadFull(pipe, msg[:]); err != nil {
		pipe.Close()
		return nil, fmt.Errorf("%w: the parent left before releasing us (%v)", ErrParentFailed, err)
	}
	var payload []byte
	if msg[0] == msgPayload {
		if payload, err = readSized(pipe, maxPayload); err != nil {
			pipe.Close()
			return nil, fmt.Errorf("%w: reading the payload: %v", ErrParentFailed, err)
		}
		if _, err := io.ReadFull(pipe, msg[:]); err != nil {
			pipe.Close()
			return nil, fmt.Errorf("%w: the parent left before releasing us (%v)", ErrParentFailed, err)
		}
	}
	switch msg[0] {
	case msgGo:
	case msgGoPlan:
		b, err := readSized(pipe, maxPlanJSON)
		if err != nil {
			pipe.Close()
			return nil, fmt.Errorf("%w: reading the plan: %v", ErrParentFailed, err)
		}
		planJSON = string(b)
	case msgFail:
		why, _ := io.ReadAll(io.LimitReader(pipe, 64<<10))
		pipe.Close()
		return nil, fmt.Errorf("%w: %s", ErrParentFailed, why)
	default:
		pipe.Close()
		return nil, fmt.Errorf("userns: Join: unexpected message %q from the parent", msg[0])
	}

	c := &Child{Payload: payload}
	if statusErr == nil && statusFD > 2 {
		syscall.CloseOnExec(statusFD)
		c.status = os.NewFile(uintptr(statusFD), "userns-status")
	}
	if err := json.Unmarshal([]byte(planJSON), &c.Plan); err != nil {
		pipe.Close()
		return nil, fmt.Errorf("userns: Join: decoding the plan: %w", err)
	}
	sigs := make(chan syscall.Signal, 16)
	c.Signals = sigs
	go func() {
		defer pipe.Close()
		defer close(sigs)
		// With the parent gone, nobody forwards: direct signals act again.
		defer signal.Stop(absorbed)
		var b [1]byte
		for {
			if _, err := pipe.Read(b[:]); err != nil {
				return
			}
			sigs <- syscall.Signal(b[0])
		}
	}()
	return c, nil
}

// joinExec is Join in a child the host rl exec'd in place (execjoin.go),
// whose entry point entered the namespace: no parent, no pipe; the plan
// is in the environment and signals come to us directly.
func joinExec() (*Child, error) {
	planJSON := os.Getenv(envPlan)
	os.Unsetenv(envFD)
	os.Unsetenv(envPlan)
	joined = true
	c := &Child{}
	if err := json.Unmarshal([]byte(planJSON), &c.Plan); err != nil {
		return nil, fmt.Errorf("userns: Join: decoding the plan: %w", err)
	}
	c.Signals = CatchSignals()
	return c, nil
}

// CatchSignals catches the signals a parent would forward (a process
// with no parent to forward them: they come to it directly) and relays
// them, in order, on the channel it returns.
func CatchSignals() <-chan syscall.Signal {
	direct := make(chan os.Signal, 16)
	signal.Notify(direct, forwarded...)
	sigs := make(chan syscall.Signal, 16)
	go func() {
		for s := range direct {
			sigs <- s.(syscall.Signal)
		}
	}()
	return sigs
}

// SingleMapped reports whether the current user namespace maps a single uid
// (the fallback without subordinate ids). It runs inside the namespace and
// reads the kernel's map, so it holds for any process in it, not only the
// one that joined.
func SingleMapped() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	var total uint64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			n, _ := strconv.ParseUint(f[2], 10, 64)
			total += n
		}
	}
	return total <= 1
}

// readSized reads a 4-byte big-endian length and that many bytes, at most max.
func readSized(r io.Reader, max uint32) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > max {
		return nil, fmt.Errorf("%d bytes from the parent, more than %d", size, max)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}
