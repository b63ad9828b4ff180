package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/internal/helper"
	"github.com/rlcontainers/rl/internal/runcache"
	"github.com/rlcontainers/rl/rootfs"
	"golang.org/x/sys/unix"
)

// The container's seccomp filter is compiled by rl-image (`rl-image
// __seccomp`, container/seccomp), not here: the compiler's libraries cost
// every process that links them ~0.4 ms of package set-up, on rl run's
// critical path, and the compiling itself ~0.3 ms more. The programs are
// kept in the run dir (RUNDIR/rl/seccomp.cache, internal/runcache) under a
// key of the kernel release (moby's profile has rules for minimum kernels),
// the architecture and the compiler (rl-image's file: a new rl brings a
// new one, and starts the file afresh); each entry is named by a digest of
// the rest they depend on: a profile's bytes (or moby's default) and the
// capabilities. A miss costs one rl-image start (~10 ms). (With the
// compiler in each entry's name instead, every rebuild or install added an
// entry that was never used again, and every run parsed them all: 21 of
// them, 105 kB, on a machine that had seen a few builds.)

// seccompCacheFile is the cache's name in RUNROOT/rl.
const seccompCacheFile = "seccomp.cache"

// imageHelper is rl-image's name, beside rl-core.
const imageHelper = "rl-image"

// seccompFilter is the container's filter: moby's default profile for its
// capabilities unless --privileged or seccomp=unconfined, or its own file.
func seccompFilter(rt *Runtime, rec rootfs.Record) (initproc.Program, error) {
	if rec.Privileged || rec.Seccomp == "unconfined" {
		return nil, nil
	}
	var body []byte
	if rec.Seccomp != "" {
		var err error
		if body, err = os.ReadFile(rec.Seccomp); err != nil {
			return nil, fmt.Errorf("--security-opt seccomp=%s: %w", rec.Seccomp, err)
		}
	}
	compiler, fi, err := helperBeside(imageHelper)
	if err != nil {
		return nil, fmt.Errorf("%s, which compiles the container's seccomp filter, is not beside rl-core (%v): reinstall rl (make install), or use --security-opt seccomp=unconfined", imageHelper, err)
	}
	caps := recordCaps(rec)
	path := filepath.Join(rt.Store.RunRoot(), "rl", seccompCacheFile)
	key, keyed := kernelKey()
	key += " " + compilerID(compiler, fi)
	name := seccompEntry(body, caps)
	var prog initproc.Program
	if keyed && runcache.Get(path, key, name, &prog) && len(prog) > 0 {
		return prog, nil
	}
	if prog, err = compileSeccomp(compiler, body, caps); err != nil {
		if body != nil {
			return nil, fmt.Errorf("--security-opt seccomp=%s: %w", rec.Seccomp, err)
		}
		return nil, err
	}
	if keyed {
		runcache.Put(path, key, name, prog)
	}
	return prog, nil
}

// kernelKey names what every program depends on but the compiler: the
// kernel's release and the architecture.
func kernelKey() (string, bool) {
	var uts unix.Utsname
	if unix.Uname(&uts) != nil {
		return "", false
	}
	return fmt.Sprintf("rl seccomp 1 %s %s", unix.ByteSliceToString(uts.Release[:]), runtime.GOARCH), true
}

// compilerID names the compiler's file (path, size, modification time,
// inode): another rl (a new install, another build) is another entry.
func compilerID(path string, fi os.FileInfo) string {
	id := fmt.Sprintf("%q %d %d", path, fi.Size(), fi.ModTime().UnixNano())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id += fmt.Sprintf(" %d:%d", st.Dev, st.Ino)
	}
	return id
}

// seccompEntry is a digest of the profile's bytes (nil: moby's default)
// and the capabilities, in their order.
func seccompEntry(body []byte, caps []string) string {
	h := sha256.New()
	if body == nil {
		h.Write([]byte("default\n"))
	} else {
		fmt.Fprintf(h, "profile %d\n", len(body))
		h.Write(body)
	}
	fmt.Fprintf(h, "\n%q", caps)
	return hex.EncodeToString(h.Sum(nil))
}

// compileSeccomp has rl-image compile the filter.
func compileSeccomp(path string, body []byte, caps []string) (initproc.Program, error) {
	args := []string{initproc.CompileSeccompArg}
	if body != nil {
		args = append(args, "--profile")
	}
	out, err := helper.Output(context.Background(), path, append(args, caps...), body)
	if err != nil {
		return nil, err
	}
	var prog initproc.Program
	if err := json.Unmarshal(out, &prog); err != nil || len(prog) == 0 {
		return nil, fmt.Errorf("compiling the seccomp filter (%s): no program came back (%v): reinstall rl (make install), or use --security-opt seccomp=unconfined", path, err)
	}
	return prog, nil
}

// helperBeside is the path of one of rl's helpers beside this binary (a
// build tree, or libexec/rl in an install), and the file's stat.
func helperBeside(name string) (string, os.FileInfo, error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	p := filepath.Join(filepath.Dir(self), name)
	fi, err := os.Stat(p)
	if err != nil {
		return "", nil, err
	}
	return p, fi, nil
}
