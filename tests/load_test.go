package tests

// Load (issue 6): many containers at once, and many in a row without
// growth in fds, processes, mounts, disk use or run-dir entries.

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoadConcurrent: 50 `rl run --rm busybox true` at once all succeed
// and leave no container behind.
func TestLoadConcurrent(t *testing.T) {
	u := full
	v, env := otherHome(t, u, registryAddr)
	rlOKEnv(t, v, env, "pull", "-q", "busybox")
	rlOKEnv(t, v, env, "run", "--rm", "busybox", "true")
	before := loadMetrics(t, v, env)
	const n = 50
	results := make([]Result, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = runAs(t, v, runOpts{Env: env, Timeout: 150 * time.Second}, rlBin, "run", "--rm", "busybox", "true")
		}(i)
	}
	wg.Wait()
	took := time.Since(start)
	failed := 0
	for i, r := range results {
		if r.Code != 0 || r.TimedOut {
			failed++
			if failed <= 5 {
				t.Errorf("run %d of %d concurrent: %v", i, n, r)
			}
		}
	}
	t.Logf("%d concurrent rl run --rm busybox true on %d cores: %d failed, all done in %v", n, runtime.NumCPU(), failed, took.Round(time.Millisecond))
	if failed > 0 {
		t.Errorf("%d of %d concurrent runs failed", failed, n)
	}
	if ps := rlEnv(t, v, env, "ps", "-a", "-q"); ps.Code != 0 || ps.Stdout != "" {
		t.Errorf("containers left after the concurrent --rm runs:\n%v", ps)
	}
	time.Sleep(500 * time.Millisecond)
	after := loadMetrics(t, v, env)
	t.Logf("before: %v", before)
	t.Logf("after:  %v", after)
	before.compare(t, after)
	checkStore(t, v.Home, "50 concurrent runs")
}

// TestLoadSequential: RL_LOAD_RUNS (300 by default) `rl run --rm busybox
// true` in a row: no growth.
func TestLoadSequential(t *testing.T) {
	runs := 300
	if s := os.Getenv("RL_LOAD_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("RL_LOAD_RUNS=%q: want a positive number", s)
		}
		runs = n
	}
	u := full
	v, env := otherHome(t, u, registryAddr)
	rlOKEnv(t, v, env, "pull", "-q", "busybox")
	for i := 0; i < 5; i++ { // warm-up: the store's files and dirs exist
		rlOKEnv(t, v, env, "run", "--rm", "busybox", "true")
	}
	before := loadMetrics(t, v, env)
	start := time.Now()
	var mid loadState
	for i := 0; i < runs; i++ {
		r := rlEnv(t, v, env, "run", "--rm", "busybox", "true")
		if r.Code != 0 {
			t.Fatalf("run %d of %d: %v", i+1, runs, r)
		}
		if i == runs/2 {
			mid = loadMetrics(t, v, env)
		}
	}
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	after := loadMetrics(t, v, env)
	t.Logf("%d sequential runs in %v (%v each)", runs, took.Round(time.Millisecond), (took / time.Duration(runs)).Round(100*time.Microsecond))
	t.Logf("before:  %v", before)
	t.Logf("halfway: %v", mid)
	t.Logf("after:   %v", after)
	before.compare(t, after)
	if ps := rlEnv(t, v, env, "ps", "-a", "-q"); ps.Stdout != "" {
		t.Errorf("containers left:\n%v", ps)
	}
	checkStore(t, v.Home, fmt.Sprintf("%d sequential runs", runs))
}

// loadState is what must not grow.
type loadState struct {
	fds, procs, mounts int
	storeKB            int64
	runEntries         int
	runList            []string
}

func (s loadState) String() string {
	return fmt.Sprintf("open fds of the user's processes (this store's) %d, the user's processes %d, mounts seen by a fresh process %d, store %d kB, run-dir entries %d",
		s.fds, s.procs, s.mounts, s.storeKB, s.runEntries)
}

func (s loadState) compare(t *testing.T, after loadState) {
	t.Helper()
	if after.fds > s.fds {
		t.Errorf("open fds grew: %d -> %d", s.fds, after.fds)
	}
	if after.procs > s.procs {
		t.Errorf("processes grew: %d -> %d", s.procs, after.procs)
	}
	if after.mounts > s.mounts {
		t.Errorf("mounts grew: %d -> %d", s.mounts, after.mounts)
	}
	// containers.json and friends are rewritten: allow a page or two.
	if after.storeKB > s.storeKB+64 {
		t.Errorf("store disk use grew: %d kB -> %d kB", s.storeKB, after.storeKB)
	}
	if after.runEntries > s.runEntries {
		t.Errorf("run-dir entries grew: %d -> %d: now %v", s.runEntries, after.runEntries, after.runList)
	}
}

func loadMetrics(t *testing.T, v User, env []string) loadState {
	t.Helper()
	var s loadState
	// The user's processes of this store (other runs may use the user).
	for pid := range storePids(v, v.Home) {
		s.procs++
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		s.fds += len(fds)
	}
	r := runAs(t, v, runOpts{Env: env}, "/bin/cat", "/proc/self/mountinfo")
	if r.Code != 0 {
		t.Fatalf("%v", r)
	}
	s.mounts = strings.Count(r.Stdout, "\n")
	s.storeKB = dirSize(filepath.Join(v.Home, ".local", "share", "rl")) >> 10
	runDir := filepath.Join(strings.TrimPrefix(env[0], "XDG_RUNTIME_DIR="), "rl")
	filepath.WalkDir(runDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != runDir {
			s.runEntries++
			s.runList = append(s.runList, strings.TrimPrefix(p, runDir+"/"))
		}
		return nil
	})
	return s
}
