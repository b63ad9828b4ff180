// Package config reads rl's configuration file, rl.conf: the defaults a
// user pins for what rl otherwise decides by itself (the network, the
// storage driver, what to do when a fresh /proc is refused). It is TOML, as
// containers.conf:
//
//	# ~/.config/rl/rl.conf
//	network = "none"          # slirp[:OPTIONS], none or host
//	storage_driver = "vfs"    # overlay or vfs ("" probes)
//	pid_fallback = "fail"     # host-proc or fail
//
// Command-line flags win over the file, the file over rl's defaults; each
// value carries where it came from, for rl info.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Keys of rl.conf.
const (
	KeyNetwork       = "network"
	KeyStorageDriver = "storage_driver"
	KeyPIDFallback   = "pid_fallback"
)

// Keys lists rl.conf's keys in the order rl info shows them.
var Keys = []string{KeyNetwork, KeyStorageDriver, KeyPIDFallback}

// Values of pid_fallback.
const (
	// PIDHostProc runs without a new PID namespace and binds the outer
	// /proc when a fresh proc mount is refused (ps shows the outer
	// processes).
	PIDHostProc = "host-proc"
	// PIDFail fails, naming the option the outer container needs.
	PIDFail = "fail"
)

// Config is rl.conf's values, defaults filled in.
type Config struct {
	// Network is the default of rl run --network: slirp[:OPTIONS], none or
	// host.
	Network string `toml:"network"`
	// StorageDriver is the default of --storage-driver: overlay, vfs, or ""
	// to probe.
	StorageDriver string `toml:"storage_driver"`
	// PIDFallback is what rl run does when a fresh /proc is refused:
	// PIDHostProc or PIDFail.
	PIDFallback string `toml:"pid_fallback"`
}

// Defaults are rl's values when neither the file nor a flag sets one.
func Defaults() Config {
	return Config{Network: "slirp", StorageDriver: "", PIDFallback: PIDHostProc}
}

// Where a value came from, besides the file's path.
const (
	SourceDefault = "default"
	// SourceFlagPrefix starts the source of a value set on the command
	// line: "flag --network".
	SourceFlagPrefix = "flag "
)

// Sources maps each key to where its value came from: SourceDefault, the
// path of the file, or "flag --NAME".
type Sources map[string]string

// Flag records that the command line set key with flag (e.g. "--network").
func (s Sources) Flag(key, flag string) { s[key] = SourceFlagPrefix + flag }

// Get is the value of key in c.
func (c Config) Get(key string) string {
	switch key {
	case KeyNetwork:
		return c.Network
	case KeyStorageDriver:
		return c.StorageDriver
	case KeyPIDFallback:
		return c.PIDFallback
	}
	return ""
}

// Path is the file rl reads: $XDG_CONFIG_HOME/rl/rl.conf, by default
// ~/.config/rl/rl.conf. It is "" when neither XDG_CONFIG_HOME nor HOME is an
// absolute path.
func Path() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home := os.Getenv("HOME")
		if home == "" || !filepath.IsAbs(home) {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "rl", "rl.conf")
}

// Load reads rl.conf (Path): the defaults overridden by the file when it
// exists. A missing file is no error; a malformed one, an unknown key or a
// bad value is, naming the file and the key.
func Load() (Config, Sources, error) {
	return LoadFile(Path())
}

// LoadFile is Load with the file given ("" reads none).
func LoadFile(path string) (Config, Sources, error) {
	cfg := Defaults()
	src := Sources{}
	for _, k := range Keys {
		src[k] = SourceDefault
	}
	if path == "" {
		return cfg, src, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, src, nil
	}
	if err != nil {
		return cfg, src, fmt.Errorf("reading %s: %w", path, err)
	}
	var file struct {
		Network       *string `toml:"network"`
		StorageDriver *string `toml:"storage_driver"`
		PIDFallback   *string `toml:"pid_fallback"`
	}
	md, err := toml.Decode(string(data), &file)
	if err != nil {
		return cfg, src, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var keys []string
		for _, k := range und {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		return cfg, src, fmt.Errorf("%s: unknown key %s: rl.conf knows %s", path, strings.Join(keys, ", "), strings.Join(Keys, ", "))
	}
	set := func(key string, v *string, dst *string) {
		if v != nil {
			*dst = *v
			src[key] = path
		}
	}
	set(KeyNetwork, file.Network, &cfg.Network)
	set(KeyStorageDriver, file.StorageDriver, &cfg.StorageDriver)
	set(KeyPIDFallback, file.PIDFallback, &cfg.PIDFallback)
	if err := cfg.Validate(); err != nil {
		return cfg, src, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, src, nil
}

// Validate checks each value.
func (c Config) Validate() error {
	mode, _, _ := strings.Cut(c.Network, ":")
	switch {
	case mode == "slirp":
	case c.Network == "none" || c.Network == "host":
	default:
		return fmt.Errorf("network = %q: use \"slirp\" (with :OPTIONS as --network takes them), \"none\" or \"host\"", c.Network)
	}
	switch c.StorageDriver {
	case "", "overlay", "vfs":
	default:
		return fmt.Errorf("storage_driver = %q: use \"overlay\" or \"vfs\", or leave it out to probe", c.StorageDriver)
	}
	switch c.PIDFallback {
	case PIDHostProc, PIDFail:
	default:
		return fmt.Errorf("pid_fallback = %q: use %q (bind the outer /proc, no new PID namespace) or %q", c.PIDFallback, PIDHostProc, PIDFail)
	}
	return nil
}
