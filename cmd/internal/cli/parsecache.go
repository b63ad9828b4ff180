package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// rl run's command line is parsed by the host rl while rl-core starts
// (ParseRun), and kong's part of that, its model of RunCmd built by
// reflection, was ~1.5 ms of CPU and ~400 page faults of every run, on a
// machine where the two CPUs are the limit. The same command line of the
// same rl parses to the same result when every flag given is one whose
// parse and RunCmd.Validate look at nothing but the command line
// (pureRunFlags): such results are kept, encoded as they go to rl-core, in
// the user's run dir, one file per command line, named by a digest of rl's
// own file and the arguments. A flag that reads the environment or a file
// (-e, --env-file, -v, --security-opt, --authfile), or that the run does
// not take early (--preserve-fds), keeps its command line out: it is
// parsed each time. A cached command line may name a container, a
// hostname or a command's arguments; the files are the user's own (0600,
// in a 0700 directory), and at most maxParsed are kept.

// pureRunFlags are rl run's flags (and the global ones) whose parse
// depends on their values alone. TestPureRunFlags makes every flag of
// RunCmd and Globals be listed here or in impureRunFlags.
var pureRunFlags = map[string]bool{
	"interactive": true, "tty": true, "detach": true, "rm": true, "init": true,
	"stop-timeout": true, "name": true, "workdir": true, "user": true,
	"entrypoint": true, "tmpfs": true, "read-only": true, "hostname": true,
	"pull": true, "network": true, "publish": true, "publish-all": true,
	"dns": true, "dns-search": true, "dns-option": true, "add-host": true,
	"no-hosts": true, "ip": true, "ip6": true, "mac-address": true, "network-alias": true,
	"expose": true, "pid": true, "ipc": true, "uts": true, "cgroupns": true,
	"userns": true, "cap-add": true, "cap-drop": true, "privileged": true,
	"tls-verify": true, "quiet": true, "http-proxy": true,
	"root": true, "runroot": true, "storage-driver": true,
}

// impureRunFlags read rl's environment (-e KEY), files (--env-file,
// --security-opt seccomp=FILE), resolve paths against the working
// directory (-v ./src, --authfile), or are not taken early.
var impureRunFlags = map[string]bool{
	"env": true, "env-file": true, "volume": true, "security-opt": true,
	"authfile": true, "preserve-fds": true,
}

// maxParsed bounds the cache: the entry past it starts it afresh.
const maxParsed = 16

// ParseCache is the cache's entry for one command line (nil: no cache).
type ParseCache struct{ dir, path string }

// NewParseCache names the entry of args (rl run's, after the program name)
// under runDir (the user's run dir, private to the user) for the rl binary
// self. It is nil when runDir is empty or self cannot be read.
func NewParseCache(runDir, self string, args []string) *ParseCache {
	var st syscall.Stat_t
	if runDir == "" || syscall.Stat(self, &st) != nil {
		return nil
	}
	h := sha256.New()
	for _, s := range []string{"rl parse 1", self, strconv.FormatInt(st.Size, 10),
		strconv.FormatInt(st.Mtim.Nano(), 10), strconv.FormatUint(st.Dev, 10), strconv.FormatUint(st.Ino, 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, a := range args {
		h.Write([]byte(strconv.Itoa(len(a))))
		h.Write([]byte{':'})
		h.Write([]byte(a))
	}
	dir := filepath.Join(runDir, "parsed")
	return &ParseCache{dir: dir, path: filepath.Join(dir, hex.EncodeToString(h.Sum(nil)))}
}

// Get is the encoded parse of the command line, if it was kept.
func (c *ParseCache) Get() ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	b, err := os.ReadFile(c.path)
	return b, err == nil && len(b) > 0
}

// Put keeps encoded, the parse of the command line, if every flag given
// is a pure one. Failures are ignored: the next run parses again.
func (c *ParseCache) Put(encoded []byte, given map[string]bool) {
	if c == nil || !Pure(given) {
		return
	}
	if err := os.Mkdir(c.dir, 0o700); err != nil && !os.IsExist(err) {
		return
	}
	if entries, err := os.ReadDir(c.dir); err == nil && len(entries) >= maxParsed {
		for _, e := range entries {
			os.Remove(filepath.Join(c.dir, e.Name()))
		}
	}
	tmp, err := os.CreateTemp(c.dir, ".tmp-")
	if err != nil {
		return
	}
	_, err = tmp.Write(encoded)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
}

// Pure: every flag given is in pureRunFlags.
func Pure(given map[string]bool) bool {
	for f := range given {
		if !pureRunFlags[f] {
			return false
		}
	}
	return true
}
