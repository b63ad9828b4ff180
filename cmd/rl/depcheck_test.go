package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/rlcontainers/rl"

// imports lists the packages pkg depends on: every one (transitively) with
// deps, else those it imports itself.
func imports(t *testing.T, pkg string, transitive bool) []string {
	t.Helper()
	if !transitive {
		out, err := exec.Command("go", "list", "-tags", "containers_image_openpgp", "-f", `{{join .Imports "\n"}}`, pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		var direct []string
		for _, p := range strings.Fields(string(out)) {
			if strings.Contains(strings.Split(p, "/")[0], ".") {
				direct = append(direct, p)
			}
		}
		return direct
	}
	out, err := exec.Command("go", "list", "-tags", "containers_image_openpgp", "-deps", "-json=ImportPath,Standard", pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	var deps []string
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Standard   bool
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if !p.Standard && p.ImportPath != pkg {
			deps = append(deps, p.ImportPath)
		}
	}
	return deps
}

// TestImportRules keeps the layout's promises (DESIGN.md): userns and the
// container init stay small, netstack never touches storage, rootfs never
// touches netstack, and only cmd/ uses kong.
func TestImportRules(t *testing.T) {
	rules := []struct {
		pkg     string
		allowed []string // prefixes of non-standard imports allowed
		denied  []string // prefixes denied
	}{
		{pkg: module + "/userns", allowed: []string{"golang.org/x/sys/unix"}, denied: []string{"go.podman.io/", "gvisor.dev/"}},
		{pkg: module + "/netstack", allowed: []string{"golang.org/x/sys/", "gvisor.dev/gvisor/"}, denied: []string{"go.podman.io/"}},
		// The container side of the network runs in the container's init.
		{pkg: module + "/netstack/link", allowed: []string{"golang.org/x/sys/"}, denied: []string{"gvisor.dev/"}},
		// rl-init must start in a millisecond: no storage, no image library.
		{pkg: module + "/container/initproc", denied: []string{"go.podman.io/", "github.com/alecthomas/kong", "gvisor.dev/"}},
		{pkg: module + "/rootfs", denied: []string{module + "/netstack", "github.com/alecthomas/kong"}},
		{pkg: module + "/container", denied: []string{"github.com/alecthomas/kong", "go.podman.io/image/v5/copy"}},
		// The host side and the container's init start in ~2 ms: no store.
		{pkg: module + "/cmd/rl", denied: []string{"go.podman.io/", "gvisor.dev/"}},
		// rl run's hot path: the image library (its reference grammar's
		// regular expressions: ~0.6 ms of package set-up; the copy pipeline:
		// ~3 ms) and the seccomp compiler (~0.4 ms) are rl-image's.
		{pkg: module + "/cmd/rl-core", denied: []string{"go.podman.io/image/", "github.com/elastic/go-seccomp-bpf", "github.com/moby/profiles"}},
	}
	for _, r := range rules {
		// What a package imports itself is limited by allowed; what it
		// links at all, by denied.
		for _, dep := range imports(t, r.pkg, false) {
			if r.allowed != nil && !strings.HasPrefix(dep, module+"/") && !hasPrefix(dep, r.allowed) {
				t.Errorf("%s imports %s; only %v are allowed", r.pkg, dep, r.allowed)
			}
		}
		for _, dep := range imports(t, r.pkg, true) {
			if hasPrefix(dep, r.denied) {
				t.Errorf("%s links %s, which it must not", r.pkg, dep)
			}
		}
	}
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if s == strings.TrimSuffix(p, "/") || strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// TestOnlyCmdExitsAndPrints: library packages return errors; only cmd/
// prints to the terminal and calls os.Exit (DESIGN.md).
func TestOnlyCmdExitsAndPrints(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "containers_image_openpgp", "-f", "{{.Dir}} {{join .GoFiles \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{"os.Exit(", "fmt.Print", "os.Stdout", "os.Stderr", "log.Fatal", "log.Print"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		dir := fields[0]
		if strings.Contains(dir, "/cmd/") || strings.Contains(dir, "/tests") {
			continue
		}
		for _, f := range fields[1:] {
			src, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range forbidden {
				if strings.Contains(string(src), bad) {
					t.Errorf("%s/%s uses %s: return an error (or take a writer) instead", dir, f, bad)
				}
			}
		}
	}
}
