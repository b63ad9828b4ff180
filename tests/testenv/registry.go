package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// RegistryBinary is Debian's docker-registry (package docker-registry).
const RegistryBinary = "/usr/bin/docker-registry"

// Registry is a docker-registry process serving plain HTTP on 127.0.0.1.
type Registry struct {
	addr string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// StartRegistry runs `docker-registry serve CONFIG` on 127.0.0.1 on a free port, storing
// blobs under dir/data, with no auth and log level warn (its log goes to
// dir/registry.log). It returns once GET /v2/ answers 200.
func StartRegistry(dir string) (*Registry, error) {
	if _, err := os.Stat(RegistryBinary); err != nil {
		return nil, fmt.Errorf("%w (install Debian's docker-registry)", err)
	}
	var lastErr error
	// The port is picked by binding :0 and closing; another process may take
	// it before the registry binds, so retry on a fresh port.
	for attempt := 0; attempt < 3; attempt++ {
		r, err := startRegistry(dir)
		if err == nil {
			return r, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startRegistry(dir string) (*Registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, []byte(registryConfig(filepath.Join(dir, "data"), addr)), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	cmd := exec.Command(RegistryBinary, "serve", config)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Killed with the process that started it even when that one dies
	// without cleaning up (a test binary hitting -timeout panics).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", RegistryBinary, err)
	}
	r := &Registry{addr: addr, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(r.done)
	}()
	if err := r.waitReady(20 * time.Second); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

func registryConfig(data, addr string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: rl-testenv
`, data, addr)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (r *Registry) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-r.done:
			return fmt.Errorf("docker-registry on %s exited: %s", r.addr, r.logTail())
		default:
		}
		resp, err := client.Get("http://" + r.addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("docker-registry on %s not ready after %v: %v; log: %s", r.addr, timeout, err, r.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *Registry) logTail() string {
	b, _ := os.ReadFile(r.log)
	b = bytes.TrimSpace(b)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return "(empty)"
	}
	return strings.ReplaceAll(string(b), "\n", " | ")
}

// Addr is the registry's host:port, e.g. 127.0.0.1:41234.
func (r *Registry) Addr() string { return r.addr }

// Stop kills the registry and waits for it; calling it again is harmless.
func (r *Registry) Stop() {
	if r == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.done
}
