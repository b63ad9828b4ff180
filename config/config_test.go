package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rl.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadMissingFileIsDefaults(t *testing.T) {
	cfg, src, err := LoadFile(filepath.Join(t.TempDir(), "nope.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg != Defaults() {
		t.Errorf("cfg = %+v, want defaults %+v", cfg, Defaults())
	}
	for _, k := range Keys {
		if src[k] != SourceDefault {
			t.Errorf("source of %s = %q, want default", k, src[k])
		}
	}
}

func TestLoadFile(t *testing.T) {
	p := write(t, "# pinned for CI\nnetwork = \"none\"\npid_fallback = \"fail\"\n")
	cfg, src, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Network: "none", StorageDriver: "", PIDFallback: PIDFail}
	if cfg != want {
		t.Errorf("cfg = %+v, want %+v", cfg, want)
	}
	if src[KeyNetwork] != p || src[KeyPIDFallback] != p || src[KeyStorageDriver] != SourceDefault {
		t.Errorf("sources = %v", src)
	}
	src.Flag(KeyNetwork, "--network")
	if src[KeyNetwork] != "flag --network" {
		t.Errorf("after Flag: %q", src[KeyNetwork])
	}
}

func TestLoadSlirpOptions(t *testing.T) {
	cfg, _, err := LoadFile(write(t, `network = "slirp:mtu=1500"`))
	if err != nil || cfg.Network != "slirp:mtu=1500" {
		t.Fatalf("cfg %+v, err %v", cfg, err)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{`network = "bridge"`, `network = "bridge"`},
		{`storage_driver = "btrfs"`, `storage_driver = "btrfs"`},
		{`pid_fallback = "maybe"`, `pid_fallback = "maybe"`},
		{`netwrok = "none"`, "unknown key netwrok"},
		{`network = `, "rl.conf"},
	} {
		_, _, err := LoadFile(write(t, tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tc.text, err, tc.want)
		}
	}
}

func TestPathHonoursXDG(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/x/conf")
	if p := Path(); p != "/x/conf/rl/rl.conf" {
		t.Errorf("Path = %q", p)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/home/u")
	if p := Path(); p != "/home/u/.config/rl/rl.conf" {
		t.Errorf("Path = %q", p)
	}
	t.Setenv("HOME", "relative")
	if p := Path(); p != "" {
		t.Errorf("Path = %q, want empty", p)
	}
}
