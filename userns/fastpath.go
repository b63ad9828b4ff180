package userns

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The fast path: an exec in place (execjoin.go) decided once is recorded,
// and the next identical `rl run` command line takes it before Go's
// runtime starts. The host rl's own start (exec, Go's runtime, its package
// inits, the plan and the parse cache) was 1.1-1.5 ms of every rl run
// that had nothing left to decide.
//
// The record is the file FastDir/<FastName(args, rl's file)>: what the host rl
// computed for that command line (the environment it adds, rl-core's path)
// and what that depended on (the keeper, rl's own file, /etc/subuid and
// /etc/subgid). rl's entry point (cmd/rl/entry_amd64.s) reads it when
// argv[1] is "run", $XDG_RUNTIME_DIR is set and the environment holds none
// of rl's own variables (_RL_*, _CONTAINERS_*); it checks the file is the
// user's and not writable by others, that the words are the same, that
// rl's file and the two id files are as recorded, and that the keeper is
// alive (not a reused pid, not a zombie); then it opens the keeper's
// namespace at ExecJoinFD, marks the keeper's record used, makes every
// other descriptor from 3 on close at exec (as the host rl does) and execs
// rl-core with the environment plus the recorded variables: what the host
// rl would have done. Anything else, and any failure, goes on to Go's
// entry and the usual way, which writes the record again.
//
// Layout, little-endian: fastHeader bytes of 8-byte fields (magic, the
// keeper's pid and start time, rl's file's device, inode, mtime seconds
// and nanoseconds and size, /etc/subuid's and /etc/subgid's mtime seconds
// and nanoseconds (zero when missing), then the lengths of the three
// blocks), then the words (argv[1:], each with its NUL), the variables
// (each with its NUL) and rl-core's path (with its NUL).
const (
	fastMagic  = "RLFAST01"
	fastHeader = 120
	// fastMax: the entry point reads the record in one 16 KiB read.
	fastMax = 16384 - 1
	// fastKeep: a directory with more records than this is emptied
	// before the next one is written.
	fastKeep = 64
)

// FastName is the name of the record of args run by the rl binary that
// is file ino on device dev: FNV-1a (64 bits) of each word and its NUL,
// then of dev's and ino's 8 bytes (little-endian), in 16 lowercase hex
// digits, as the entry point computes it. Two rl binaries (two installs,
// an upgrade) keep records of their own.
func FastName(args []string, dev, ino uint64) string {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for _, a := range args {
		for i := 0; i < len(a); i++ {
			h ^= uint64(a[i])
			h *= prime
		}
		h *= prime // the NUL
	}
	for _, v := range []uint64{dev, ino} {
		for i := 0; i < 8; i++ {
			h ^= v >> (8 * i) & 0xff
			h *= prime
		}
	}
	s := strconv.FormatUint(h, 16)
	return strings.Repeat("0", 16-len(s)) + s
}

// FastEnvOK reports whether env may be that of a run on the fast path:
// none of rl's own variables, which the host rl would drop or replace.
func FastEnvOK(env []string) bool {
	for _, kv := range env {
		if fastVariable(kv) {
			return false
		}
	}
	return true
}

func fastVariable(kv string) bool {
	return strings.HasPrefix(kv, "_RL_") || strings.HasPrefix(kv, "_CONTAINERS_")
}

var errFastTooBig = errors.New("the record would be too big")

// fastRecord encodes the record of args, whose exec in place runs path
// with env (the caller's environment, which FastEnvOK, plus rl's own
// variables) in the namespace of the keeper rec, and names it.
func fastRecord(args, env []string, path string, rec keeperRec) (b []byte, name string, err error) {
	var exe, subuid, subgid unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &exe); err != nil {
		return nil, "", err
	}
	_ = unix.Stat("/etc/subuid", &subuid) // zero when missing, as the entry point takes it
	_ = unix.Stat("/etc/subgid", &subgid)
	var words, vars []byte
	for _, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, "", errors.New("a word with a NUL")
		}
		words = append(append(words, a...), 0)
	}
	for _, kv := range env {
		if fastVariable(kv) {
			vars = append(append(vars, kv...), 0)
		}
	}
	p := append([]byte(path), 0)
	b = make([]byte, fastHeader, fastHeader+len(words)+len(vars)+len(p))
	copy(b, fastMagic)
	for i, v := range []uint64{
		uint64(rec.Pid), rec.Start,
		exe.Dev, exe.Ino, uint64(exe.Mtim.Sec), uint64(exe.Mtim.Nsec), uint64(exe.Size),
		uint64(subuid.Mtim.Sec), uint64(subuid.Mtim.Nsec), uint64(subgid.Mtim.Sec), uint64(subgid.Mtim.Nsec),
		uint64(len(words)), uint64(len(vars)), uint64(len(p)),
	} {
		binary.LittleEndian.PutUint64(b[8+8*i:], v)
	}
	b = append(append(append(b, words...), vars...), p...)
	if len(b) > fastMax {
		return nil, "", errFastTooBig
	}
	return b, FastName(args, exe.Dev, exe.Ino), nil
}

// writeFast records args' exec in place in dir (best effort: without a
// record the next run goes the usual way).
func writeFast(dir string, args, env []string, path string, rec keeperRec) error {
	b, name, err := fastRecord(args, env, path, rec)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if names, err := os.ReadDir(dir); err == nil && len(names) >= fastKeep {
		for _, n := range names {
			os.Remove(filepath.Join(dir, n.Name()))
		}
	}
	name = filepath.Join(dir, name)
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
