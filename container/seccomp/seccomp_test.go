package seccomp

import (
	"testing"

	"github.com/rlcontainers/rl/container/caps"
)

// TestCompileDefault: moby's default profile compiles for podman's default
// capabilities, and every syscall with several rules (socket: one per
// address family) ends up in a single group, or all but its first rule
// would be dead code in the filter.
func TestCompileDefault(t *testing.T) {
	prog, err := Compile("", caps.Default)
	if err != nil || len(prog) < 100 {
		t.Fatalf("Compile: %d instructions, %v", len(prog), err)
	}
}
