// Package helper asks one of rl's helper binaries (rl-image) a question
// whose answer it writes on stdout: rl-core's way to what it does not link.
package helper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Output runs the helper at path with args (argv[0] is its base name),
// stdin as its input when not nil, and returns what it wrote on stdout.
// When it fails, the line it wrote on stderr (without rl's "rl: ": its
// cause and fix) is the error. A killed caller does not leave it running.
func Output(ctx context.Context, path string, args []string, stdin []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Args[0] = filepath.Base(path)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimPrefix(strings.TrimSpace(stderr.String()), "rl: "); msg != "" {
			return nil, errors.New(msg)
		}
		return nil, fmt.Errorf("running %s: %w (it said nothing): reinstall rl (make install)", path, err)
	}
	return stdout.Bytes(), nil
}
