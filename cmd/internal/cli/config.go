package cli

import (
	"github.com/alecthomas/kong"
	"github.com/rlcontainers/rl/config"
)

// ApplyConfig fills the defaults rl.conf pins (config.Load) into c where the
// command line did not set them: rl run's --network and the global
// --storage-driver. A flag the user passed wins, and is recorded in src as
// the value's source (src may be nil). pid_fallback = "fail" makes an
// unset --pid private. given are the flags the command line set (Given):
// --network has a default ("slirp") that cannot be told from an explicit
// --network slirp otherwise.
func ApplyConfig(c *CLI, given map[string]bool, cfg config.Config, src config.Sources) {
	if given["network"] {
		if src != nil {
			src.Flag(config.KeyNetwork, "--network")
		}
	} else if cfg.Network != "" {
		c.Run.Network = cfg.Network
	}
	// pid_fallback = "fail": an unset --pid means private, so a masked
	// /proc fails with the fix instead of falling back to the outer PIDs.
	if !given["pid"] && cfg.PIDFallback == "fail" {
		c.Run.PID = "private"
	}
	if given["storage-driver"] {
		if src != nil {
			src.Flag(config.KeyStorageDriver, "--storage-driver")
		}
	} else if cfg.StorageDriver != "" {
		c.StorageDriver = cfg.StorageDriver
	}
}

// Given are the names of the flags kong parsed: it appends a trace to
// kctx.Path for each.
func Given(kctx *kong.Context) map[string]bool {
	given := map[string]bool{}
	for _, p := range kctx.Path {
		if p.Flag != nil {
			given[p.Flag.Name] = true
		}
	}
	return given
}
