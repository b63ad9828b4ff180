// Command rl-core runs rl's commands that work on the store (run, ps, rm,
// images, rmi, info). The host-side rl starts it in rl's user namespace; it
// is not meant to be run by hand.
package main

import (
	"math"
	"os"
	"runtime/debug"
	"time"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/internal/trace"
	"github.com/rlcontainers/rl/rootfs"
	"go.podman.io/storage/pkg/reexec"
)

func main() {
	trace.Start(os.Stderr)
	trace.Mark("core: main")
	if reexec.Init() {
		return
	}
	if err := checkExecJoin(); err != nil {
		os.Exit(cli.Report(os.Stderr, err))
	}
	tuneGC()
	rootfs.Lib = imageLibrary()
	os.Exit(session.Main(cli.Core, map[string]session.Command{
		"run":     runRun,
		"start":   runStart,
		"exec":    runExec,
		"stop":    runStop,
		"kill":    runKill,
		"wait":    runWait,
		"logs":    runLogs,
		"attach":  runAttach,
		"inspect": runInspect,
		"port":    runPort,
		"ps":      runPs,
		"rm":      runRm,
		"rmi":     runRmi,
		"info":    runInfo,
		"system":  runSystem,
		"doctor":  runDoctor,
	}))
}

// tuneGC: most rl-core processes live a few milliseconds (ps, images, the
// start of rl run: ~4 MB allocated, one collection of ~1 ms), in which Go's
// collector only costs time: it is off for the first second, with a memory
// limit as the bound (a pull in that second collects against the limit). A
// process still running then is a supervisor, which lives as long as its
// container: it collects at 25 % growth rather than Go's 100 %, to stay
// small (the network's buffers are rl-net's, which collects at 25 % too).
// Lowering GOGC at once instead would start a collection on rl run's
// start-up path.
func tuneGC() {
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(startMemoryLimit)
	time.AfterFunc(time.Second, func() {
		debug.SetGCPercent(supervisorGCPercent)
		debug.SetMemoryLimit(math.MaxInt64)
	})
}

const (
	startMemoryLimit    = 12 << 20
	supervisorGCPercent = 25
)
