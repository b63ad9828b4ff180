package rootfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/rlcontainers/rl/internal/runcache"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/storage/pkg/configfile"
	"go.podman.io/storage/pkg/homedir"
	"go.podman.io/storage/pkg/unshare"
)

// A short image name's candidates (localCandidates) come from the
// registries configuration: registries.conf, its drop-ins and the aliases
// in them (each parsed with the reference grammar's regular expressions),
// and the user's short-name alias cache. The image library reads and
// parses all of it once per process: ~1.7 ms of CPU in every `rl run
// busybox`, more than creating the container's layer. rl keeps what that
// gave in the store's run dir, keyed by a SHA-256 of every byte the library
// reads, so a change to any of those files, a file added or gone, or
// another CONTAINERS_REGISTRIES_CONF, is a miss.

// shortNameCacheFile is the cache's name in RUNROOT/rl.
const shortNameCacheFile = "short-names.json"

// cachedCandidates is localCandidates(name) through the cache at path.
// Without a key (a configuration that cannot be read; the library will say
// why) it is localCandidates itself.
func cachedCandidates(path, name string) ([]string, error) {
	key, ok := registriesKey()
	if !ok {
		return localCandidates(name)
	}
	var cands []string
	if runcache.Get(path, key, name, &cands) {
		return cands, nil
	}
	cands, err := localCandidates(name)
	if err != nil {
		return nil, err
	}
	// Kept only if the configuration did not change while it was read.
	if after, ok := registriesKey(); ok && after == key {
		runcache.Put(path, key, name, cands)
	}
	return cands, nil
}

// registriesConfig is the image library's registries.conf search
// (sysregistriesv2), which registriesKey reads the same way; its paths are
// checked against the library's own account of them.
func registriesConfig() *configfile.File {
	return &configfile.File{
		Name: "registries", Extension: "conf", EnvironmentName: "CONTAINERS_REGISTRIES_CONF",
		UserId: unshare.GetRootlessUID(),
	}
}

// registriesKey digests everything the image library reads to resolve a
// short name: each registries file it reads (main file, drop-ins, override),
// name and content, in its order, and the short-name alias cache in both
// places the library may keep it. ok is false when the search paths differ
// from the library's (a library that changed its search) or a file cannot
// be read.
func registriesKey() (key string, ok bool) {
	conf := registriesConfig()
	paths, err := configfile.GetSearchPaths(conf)
	if err != nil || fmt.Sprintf("%q", slices.Concat(paths.MainFiles, paths.DropInDirectories)) != sysregistriesv2.ConfigurationSourceDescription(nil) {
		return "", false
	}
	h := sha256.New()
	fmt.Fprintf(h, "rl short names 1\n")
	var buf bytes.Buffer
	add := func(name string, r io.Reader) error {
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		fmt.Fprintf(h, "%q %d\n", name, buf.Len())
		h.Write(buf.Bytes())
		return nil
	}
	for item, err := range configfile.Read(conf) {
		if err != nil || add(item.Name, item.Reader) != nil {
			return "", false
		}
	}
	aliases := []string{filepath.Join("/var/cache", "containers", "short-name-aliases.conf")}
	if cache, err := homedir.GetCacheHome(); err == nil {
		aliases = append(aliases, filepath.Join(cache, "containers", "short-name-aliases.conf"))
	}
	for _, p := range aliases {
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			fmt.Fprintf(h, "%q none\n", p)
			continue
		}
		if err != nil {
			return "", false
		}
		err = add(p, f)
		f.Close()
		if err != nil {
			return "", false
		}
	}
	return hex.EncodeToString(h.Sum(nil)), true
}
