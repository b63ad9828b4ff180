package rootfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rlcontainers/rl/internal/runcache"
	"go.podman.io/storage/pkg/configfile"
	"go.podman.io/storage/pkg/homedir"
	"go.podman.io/storage/pkg/unshare"
)

// A short image name's candidates (Lib.Candidates) come from the
// registries configuration: registries.conf, its drop-ins and the aliases
// in them (each parsed with the reference grammar's regular expressions),
// and the user's short-name alias cache. The image library reads and
// parses all of it once per process: ~1.7 ms of CPU in every `rl run
// busybox`, more than creating the container's layer. rl keeps what that
// gave in the store's run dir, keyed by a SHA-256 of every byte the library
// reads, so a change to any of those files, a file added or gone, or
// another CONTAINERS_REGISTRIES_CONF, is a miss.

// shortNameCacheFile is the cache's name in RUNROOT/rl.
const shortNameCacheFile = "short-names.cache"

// cachedCandidates is Lib.Candidates(name) through the cache at path.
// Without a key (a configuration that cannot be read; the library will say
// why) it is Lib.Candidates itself.
func cachedCandidates(path, name string) ([]string, error) {
	key, ok := registriesKey()
	var cands []string
	if ok && runcache.Get(path, key, name, &cands) {
		return cands, nil
	}
	if Lib.Candidates == nil {
		return nil, errNoLibrary
	}
	cands, cacheable, err := Lib.Candidates(name)
	if err != nil {
		return nil, err
	}
	// Kept only if the library read what the key covers, and the
	// configuration did not change while it did.
	if after, same := registriesKey(); ok && cacheable && same && after == key {
		runcache.Put(path, key, name, cands)
	}
	return cands, nil
}

// RegistriesConfig is the image library's registries.conf search
// (sysregistriesv2), which registriesKey reads the same way; its paths are
// checked against the library's own account of them when the library
// answers (imagelib.Candidates).
func RegistriesConfig() *configfile.File {
	return &configfile.File{
		Name: "registries", Extension: "conf", EnvironmentName: "CONTAINERS_REGISTRIES_CONF",
		UserId: unshare.GetRootlessUID(),
	}
}

// registriesKey digests everything the image library reads to resolve a
// short name: each registries file it reads (main file, drop-ins, override),
// name and content, in its order, and the short-name alias cache in both
// places the library may keep it. ok is false when a file cannot be read.
func registriesKey() (key string, ok bool) {
	conf := RegistriesConfig()
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
