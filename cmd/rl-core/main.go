// Command rl-core runs rl's commands that work on the store (run, ps, rm,
// images, rmi, info). The host-side rl starts it in rl's user namespace; it
// is not meant to be run by hand.
package main

import (
	"os"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"go.podman.io/storage/pkg/reexec"
)

func main() {
	if reexec.Init() {
		return
	}
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
		"ps":      runPs,
		"rm":      runRm,
		"images":  runImages,
		"rmi":     runRmi,
		"info":    runInfo,
		"system":  runSystem,
		"doctor":  runDoctor,
	}))
}
