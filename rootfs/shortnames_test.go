package rootfs_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rlcontainers/rl/internal/runcache"
	"github.com/rlcontainers/rl/internal/wire"
	"github.com/rlcontainers/rl/rootfs"
	"github.com/rlcontainers/rl/rootfs/imagelib"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
)

// shortNameEnv points the registries configuration and the short-name
// alias cache at files of the test's own and returns their paths.
func shortNameEnv(t *testing.T) (conf, aliases string) {
	dir := t.TempDir()
	conf = filepath.Join(dir, "registries.conf")
	t.Setenv("CONTAINERS_REGISTRIES_CONF", conf)
	t.Setenv("_CONTAINERS_ROOTLESS_UID", "4242")
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	if err := os.MkdirAll(filepath.Join(dir, "cache", "containers"), 0o700); err != nil {
		t.Fatal(err)
	}
	return conf, filepath.Join(dir, "cache", "containers", "short-name-aliases.conf")
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// A new rl process reads the files afresh; this test process must be
	// told to.
	sysregistriesv2.InvalidateCache()
}

// TestShortNameCache: a short name's candidates come from the cache while
// the registries configuration is unchanged, and are worked out again when
// registries.conf or the alias cache changes.
func TestShortNameCache(t *testing.T) {
	conf, aliases := shortNameEnv(t)
	rootfs.Lib = imagelib.Library
	cache := filepath.Join(t.TempDir(), rootfs.ShortNameCacheFile)
	want := func(name string, w ...string) {
		t.Helper()
		got, err := rootfs.CachedCandidates(cache, name)
		if err != nil || !reflect.DeepEqual(got, w) {
			t.Fatalf("candidates of %s: got %q, %v; want %q", name, got, err, w)
		}
	}

	write(t, conf, "unqualified-search-registries = [\"one.example\"]\n")
	want("box", "localhost/box:latest", "one.example/box:latest", "docker.io/library/box:latest")
	if _, err := os.Stat(cache); err != nil {
		t.Fatalf("no cache written: %v", err)
	}
	// A hit: what the cache holds is what comes back. (The file is
	// internal/runcache's: 'R', then the key the entry is forged under.)
	b, _ := os.ReadFile(cache)
	key := wire.NewDecoder(b, 'R').String()
	runcache.Put(cache, key, "other", []string{"cached.example/other:latest"})
	want("other", "cached.example/other:latest")

	write(t, conf, "unqualified-search-registries = [\"two.example\"]\n")
	want("box", "localhost/box:latest", "two.example/box:latest", "docker.io/library/box:latest")
	want("other", "localhost/other:latest", "two.example/other:latest", "docker.io/library/other:latest")

	write(t, conf, "unqualified-search-registries = [\"two.example\"]\n[aliases]\n\"box\" = \"alias.example/ns/box\"\n")
	want("box", "alias.example/ns/box:latest", "localhost/box:latest", "two.example/box:latest", "docker.io/library/box:latest")

	write(t, aliases, "[aliases]\n\"box\" = \"pulled.example/box\"\n")
	want("box", "pulled.example/box:latest", "localhost/box:latest", "two.example/box:latest", "docker.io/library/box:latest")

	// A name that is not short is itself.
	want("quay.io/a/b", "quay.io/a/b:latest")
}
