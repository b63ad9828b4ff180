package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/rlcontainers/rl/rootfs/mounts"
)

var envKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[^=\s]+$`) })

// ParseEnv merges --env-file files and -e values, in that order (later
// wins), as docker does. "KEY" alone takes KEY from rl's environment and is
// dropped when unset there.
func ParseEnv(env, files []string) ([]string, error) {
	var out []string
	add := func(kv, where string) error {
		k, v, hasValue := strings.Cut(kv, "=")
		if !envKey().MatchString(k) {
			return fmt.Errorf("invalid environment variable %q%s: use KEY=VALUE", kv, where)
		}
		if !hasValue {
			var ok bool
			if v, ok = os.LookupEnv(k); !ok {
				return nil
			}
		}
		out = append(out, k+"="+v)
		return nil
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("--env-file %s: %v: give an existing, readable file", f, unwrapPathError(err))
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		line := 0
		for sc.Scan() {
			line++
			t := strings.TrimLeft(sc.Text(), " \t")
			if t == "" || strings.HasPrefix(t, "#") {
				continue
			}
			if err := add(t, fmt.Sprintf(" at %s:%d", f, line)); err != nil {
				fh.Close()
				return nil, err
			}
		}
		err = sc.Err()
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("--env-file %s: %w", f, err)
		}
	}
	for _, e := range env {
		if err := add(e, " in -e"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// proxyVars are the variables podman's --http-proxy passes on.
var proxyVars = []string{"http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY"}

// ProxyEnv is rl's proxy variables as KEY=VALUE, those set.
func ProxyEnv() []string {
	var out []string
	for _, k := range proxyVars {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// ParseVolumes checks -v SRC:DST[:OPTIONS] values. Named volumes are not
// supported: SRC must be a host path (absolute, or starting with . or ..).
func ParseVolumes(vols []string) ([]mounts.Volume, error) {
	var out []mounts.Volume
	for _, v := range vols {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("invalid volume %q: use -v SRC:DST[:ro]", v)
		}
		src, dst := parts[0], parts[1]
		if !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, ".") {
			return nil, fmt.Errorf("invalid volume %q: named volumes are not supported; give a host path (absolute or ./relative)", v)
		}
		if !strings.HasPrefix(dst, "/") {
			return nil, fmt.Errorf("invalid volume %q: the destination %q must be an absolute path", v, dst)
		}
		abs, err := filepath.Abs(src)
		if err != nil {
			return nil, fmt.Errorf("invalid volume %q: %w", v, err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("invalid volume %q: %s: %v: create it first", v, abs, unwrapPathError(err))
		}
		vol := mounts.Volume{Source: abs, Target: filepath.Clean(dst), File: !st.IsDir()}
		if len(parts) == 3 {
			for _, o := range strings.Split(parts[2], ",") {
				switch o {
				case "ro":
					vol.ReadOnly = true
				case "rw", "z", "Z", "":
				default:
					return nil, fmt.Errorf("invalid volume %q: unknown option %q (known: ro, rw, z, Z)", v, o)
				}
			}
		}
		out = append(out, vol)
	}
	return out, nil
}

// ParseTmpfs checks --tmpfs DST[:OPTIONS] values.
func ParseTmpfs(list []string) ([]mounts.Tmpfs, error) {
	var out []mounts.Tmpfs
	for _, t := range list {
		dst, opts, _ := strings.Cut(t, ":")
		if !strings.HasPrefix(dst, "/") {
			return nil, fmt.Errorf("invalid --tmpfs %q: the destination must be an absolute path", t)
		}
		out = append(out, mounts.Tmpfs{Target: filepath.Clean(dst), Options: opts})
	}
	// The options are checked where the plan is built.
	if _, err := mounts.Plan(mounts.PlanInput{Tmpfs: out}); err != nil {
		return nil, err
	}
	return out, nil
}

// ValidateNetwork checks the --network mode's name; its options are
// checked where the network stack lives (rl-core).
func ValidateNetwork(mode string) error {
	name, _, _ := strings.Cut(mode, ":")
	switch name {
	case "", "slirp", "slirp4netns", "private", "bridge", "pasta", "none", "host":
		return nil
	case "container":
		return ValidateNamespace("network", mode)
	}
	return fmt.Errorf("unknown --network %q: use slirp[:OPTIONS], none, host or container:NAME", mode)
}

// ValidateNamespace checks a --pid, --ipc, --uts or --cgroupns mode.
func ValidateNamespace(flag, mode string) error {
	switch {
	case mode == "" || mode == "private" || mode == "host":
		return nil
	case mode == "shareable" && flag == "ipc":
		return nil
	case strings.HasPrefix(mode, "container:") && len(mode) > len("container:"):
		return nil
	}
	return fmt.Errorf("invalid --%s %q: use private, host or container:NAME", flag, mode)
}

var hostnameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$`) })

// ValidHostname reports whether name can be a hostname.
func ValidHostname(name string) bool { return hostnameRE().MatchString(name) }

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
