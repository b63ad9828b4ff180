package testenv

import (
	"bytes"
	"crypto/tls"
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

// Registry is a docker-registry process on 127.0.0.1: plain HTTP and open
// (StartRegistry), or HTTPS with basic auth (StartAuthRegistry).
type Registry struct {
	addr string
	opts registryOptions
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// registryOptions are what a registry adds to StartRegistry's plain one.
type registryOptions struct {
	// TLSCert and TLSKey are PEM files; with them the registry serves HTTPS.
	TLSCert, TLSKey string
	// Htpasswd is an htpasswd file (bcrypt); with it every request needs
	// basic auth.
	Htpasswd string
}

// StartRegistry runs `docker-registry serve CONFIG` on 127.0.0.1 on a free port, storing
// blobs under dir/data, with no auth and log level warn (its log goes to
// dir/registry.log). It returns once GET /v2/ answers 200.
func StartRegistry(dir string) (*Registry, error) {
	return startRegistryRetry(dir, registryOptions{})
}

func startRegistryRetry(dir string, o registryOptions) (*Registry, error) {
	if _, err := os.Stat(RegistryBinary); err != nil {
		return nil, fmt.Errorf("%w (install Debian's docker-registry)", err)
	}
	var lastErr error
	// The port is picked by binding :0 and closing; another process may take
	// it before the registry binds, so retry on a fresh port.
	for attempt := 0; attempt < 3; attempt++ {
		r, err := startRegistry(dir, o)
		if err == nil {
			return r, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startRegistry(dir string, o registryOptions) (*Registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, []byte(registryConfig(filepath.Join(dir, "data"), addr, o)), 0o644); err != nil {
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
	r := &Registry{addr: addr, opts: o, cmd: cmd, log: logPath, done: make(chan struct{})}
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

func registryConfig(data, addr string, o registryOptions) string {
	config := fmt.Sprintf(`version: 0.1
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
	if o.TLSCert != "" {
		config += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", o.TLSCert, o.TLSKey)
	}
	if o.Htpasswd != "" {
		config += fmt.Sprintf("auth:\n  htpasswd:\n    realm: rl-testenv\n    path: %s\n", o.Htpasswd)
	}
	return config
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
	scheme, ready := "http", http.StatusOK
	if r.opts.TLSCert != "" {
		scheme = "https"
		// Only asks whether it answers; the certificate is the tests' business.
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	if r.opts.Htpasswd != "" {
		ready = http.StatusUnauthorized
	}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-r.done:
			return fmt.Errorf("docker-registry on %s exited: %s", r.addr, r.logTail())
		default:
		}
		resp, err := client.Get(scheme + "://" + r.addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == ready {
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
