package userns

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// fakeLookPath finds exactly the helpers named.
func fakeLookPath(have ...string) func(string) (string, error) {
	return func(name string) (string, error) {
		for _, h := range have {
			if h == name {
				return "/fake/bin/" + name, nil
			}
		}
		return "", errors.New("not found")
	}
}

// identity writes the given subuid/subgid contents (nil: no file) into a
// temporary directory and returns an Identity for alice (uid 1000, gid 1001).
func identity(t *testing.T, subuid, subgid *string, helpers ...string) Identity {
	t.Helper()
	dir := t.TempDir()
	id := Identity{
		UID: 1000, GID: 1001, User: "alice",
		SubUIDFile: filepath.Join(dir, "subuid"),
		SubGIDFile: filepath.Join(dir, "subgid"),
		LookPath:   fakeLookPath(helpers...),
	}
	for path, text := range map[string]*string{id.SubUIDFile: subuid, id.SubGIDFile: subgid} {
		if text != nil {
			if err := os.WriteFile(path, []byte(*text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return id
}

func ptr(s string) *string { return &s }

func TestMakePlanFull(t *testing.T) {
	id := identity(t,
		ptr("bob:1:2\nalice:100000:65536\n1000:300000:1000\nbroken\n"),
		ptr("alice:200000:5\n"),
		"newuidmap", "newgidmap")
	p := MakePlan(id)
	want := Plan{
		Mode: ModeFull,
		UIDs: []Mapping{
			{ContainerID: 0, HostID: 1000, Size: 1},
			{ContainerID: 1, HostID: 100000, Size: 65536},
			{ContainerID: 65537, HostID: 300000, Size: 1000},
		},
		GIDs: []Mapping{
			{ContainerID: 0, HostID: 1001, Size: 1},
			{ContainerID: 1, HostID: 200000, Size: 5},
		},
		NewUIDMap: "/fake/bin/newuidmap",
		NewGIDMap: "/fake/bin/newgidmap",
		Source:    id.SubUIDFile + " and " + id.SubGIDFile,
		Warnings:  []string{id.SubUIDFile + `:4: expected name:start:count, got 1 field(s) in "broken"`},
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("plan\n%+v\nwant\n%+v", p, want)
	}
	if n := p.Notice(); n != "" {
		t.Errorf("Notice() = %q for a full plan, want empty", n)
	}
}

func TestMakePlanSingle(t *testing.T) {
	entry := ptr("alice:100000:65536\n")
	other := ptr("bob:100000:65536\n")
	both := []string{"newuidmap", "newgidmap"}
	cases := []struct {
		name           string
		subuid, subgid *string
		helpers        []string
		reason, fix    string
	}{
		{"no files", nil, nil, both,
			"%U and %G do not exist",
			"add ranges: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"},
		{"no entry", other, other, both,
			"no entry for alice (uid 1000) in %U or %G",
			"add ranges: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"},
		{"subuid but no subgid", entry, other, both,
			"no entry for alice (uid 1000) in %G",
			"add a range: sudo usermod --add-subgids 100000-165535 alice"},
		{"subuid but no subgid file", entry, nil, both,
			"%G does not exist",
			"add a range: sudo usermod --add-subgids 100000-165535 alice"},
		{"subgid but no subuid", other, ptr("alice:5000:10\n"), both,
			"no entry for alice (uid 1000) in %U",
			"add a range: sudo usermod --add-subuids 5000-5009 alice"},
		{"no newuidmap", entry, entry, []string{"newgidmap"},
			"newuidmap not found in PATH",
			"install newuidmap (Debian/Ubuntu: apt-get install uidmap; Fedora: dnf install shadow-utils)"},
		{"no newgidmap", entry, entry, []string{"newuidmap"},
			"newgidmap not found in PATH",
			"install newgidmap (Debian/Ubuntu: apt-get install uidmap; Fedora: dnf install shadow-utils)"},
		{"nothing at all", nil, nil, nil,
			"%U and %G do not exist; newuidmap not found in PATH; newgidmap not found in PATH",
			"add ranges: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice; " +
				"install newuidmap and newgidmap (Debian/Ubuntu: apt-get install uidmap; Fedora: dnf install shadow-utils)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := identity(t, c.subuid, c.subgid, c.helpers...)
			p := MakePlan(id)
			reason := strings.NewReplacer("%U", id.SubUIDFile, "%G", id.SubGIDFile).Replace(c.reason)
			if p.Mode != ModeSingle || p.Reason != reason || p.Fix != c.fix {
				t.Fatalf("got mode %q\nreason %q\nfix    %q\nwant reason %q\nfix    %q", p.Mode, p.Reason, p.Fix, reason, c.fix)
			}
			if want := []Mapping{{0, 1000, 1}}; !reflect.DeepEqual(p.UIDs, want) {
				t.Errorf("UIDs = %v, want %v", p.UIDs, want)
			}
			if want := []Mapping{{0, 1001, 1}}; !reflect.DeepEqual(p.GIDs, want) {
				t.Errorf("GIDs = %v, want %v", p.GIDs, want)
			}
			if p.NewUIDMap != "" || p.NewGIDMap != "" || p.Source != "single-ID fallback" {
				t.Errorf("helpers %q %q, source %q", p.NewUIDMap, p.NewGIDMap, p.Source)
			}
		})
	}
}

func TestMakePlanUnreadable(t *testing.T) {
	id := identity(t, ptr("alice:1:1\n"), ptr("alice:1:1\n"), "newuidmap", "newgidmap")
	id.SubUIDFile = t.TempDir() // a directory: opens, but reading fails
	p := MakePlan(id)
	if p.Mode != ModeSingle || !strings.Contains(p.Reason, "in "+id.SubUIDFile) {
		t.Fatalf("mode %q reason %q", p.Mode, p.Reason)
	}
}

func TestLayoutLimits(t *testing.T) {
	maps, warnings := layout(Mapping{0, 5, 1}, []Range{{10, 4294967200}, {1, 200}, {1000, 10}}, "f", nil)
	want := []Mapping{{0, 5, 1}, {1, 10, 4294967200}, {4294967201, 1000, 10}}
	if !reflect.DeepEqual(maps, want) || len(warnings) != 1 {
		t.Fatalf("maps %v warnings %v, want %v and one warning", maps, warnings, want)
	}
	many := make([]Range, 400)
	for i := range many {
		many[i] = Range{uint32(i * 10), 10}
	}
	maps, warnings = layout(Mapping{0, 5, 1}, many, "f", nil)
	if len(maps) != maxMapLines || len(warnings) != 1 {
		t.Fatalf("%d lines, warnings %v", len(maps), warnings)
	}
}

func TestHelperArgs(t *testing.T) {
	got := HelperArgs(4242, []Mapping{{0, 1000, 1}, {1, 100000, 65536}})
	want := []string{"4242", "0", "1000", "1", "1", "100000", "65536"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("HelperArgs = %q, want %q", got, want)
	}
}

func TestNotice(t *testing.T) {
	p := Plan{
		Mode:   ModeSingle,
		Reason: "no entry for alice in /etc/subuid",
		Fix:    "sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice",
	}
	want := "rl: notice: using a single-ID user namespace (no entry for alice in /etc/subuid): " +
		"only uid 0 exists in containers and file ownership in images is squashed; " +
		"fix: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"
	if got := p.Notice(); got != want {
		t.Fatalf("Notice() =\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(p.Notice(), "\n") {
		t.Fatal("Notice() must be one line")
	}
}

func TestCloneRefusalFix(t *testing.T) {
	defer func(f func(string) (string, bool)) { procSys = f }(procSys)
	sysctls := map[string]string{}
	procSys = func(name string) (string, bool) { v, ok := sysctls[name]; return v, ok }

	check := func(err error, want string) {
		t.Helper()
		if got := cloneRefusalFix(err); !strings.Contains(got, want) || (want == "" && got != "") {
			t.Errorf("cloneRefusalFix(%v) with %v = %q, want it to contain %q", err, sysctls, got, want)
		}
	}
	defer func(f func() ([]byte, error)) { procSelfStatus = f }(procSelfStatus)
	status := "Name:\trl\nSeccomp:\t0\nSeccomp_filters:\t0\n"
	procSelfStatus = func() ([]byte, error) { return []byte(status), nil }

	wrapped := &os.SyscallError{Syscall: "clone", Err: syscall.EPERM}
	check(syscall.EINVAL, "")
	check(wrapped, "seccomp=unconfined") // among the usual suspects
	// Under a filter (an outer container's), the filter is named.
	status = "Name:\trl\nSeccomp:\t2\nSeccomp_filters:\t1\n"
	check(wrapped, "runs under 1 seccomp filter(s)")
	status = "Name:\trl\nSeccomp:\t0\n"
	sysctls["kernel.apparmor_restrict_unprivileged_userns"] = "1"
	check(wrapped, "kernel.apparmor_restrict_unprivileged_userns=0")
	sysctls["kernel.unprivileged_userns_clone"] = "0"
	check(syscall.EACCES, "kernel.unprivileged_userns_clone=1")
	check(syscall.ENOSPC, "limit is reached")
	sysctls["user.max_user_namespaces"] = "0"
	check(wrapped, "user.max_user_namespaces=")

	e := &Error{Op: "clone", Err: wrapped, Fix: cloneRefusalFix(wrapped)}
	if !errors.Is(e, syscall.EPERM) || !strings.Contains(e.Error(), "fix: ") {
		t.Errorf("Error %q does not unwrap to EPERM or lacks the fix", e)
	}
}

func TestNestedPlan(t *testing.T) {
	id := Identity{UID: 0, GID: 0, User: "root", SubUIDFile: "/nonexistent", SubGIDFile: "/nonexistent",
		LookPath: func(string) (string, error) { return "", errors.New("no") }}
	id.OwnUIDMap, id.OwnGIDMap = "         0          0 4294967295\n", "0 0 4294967295\n"
	if p := MakePlan(id); p.Direct || p.Mode != ModeSingle {
		t.Errorf("root of the initial namespace is not nested: %+v", p)
	}
	// Inside an rl container with a full map: root maps its 65537 ids.
	id.OwnUIDMap = "         0       1002          1\n         1     200000      65536\n"
	id.OwnGIDMap = id.OwnUIDMap
	p := MakePlan(id)
	want := []Mapping{{0, 0, 1}, {1, 1, 65536}}
	if !p.Direct || p.Mode != ModeFull || !reflect.DeepEqual(p.UIDs, want) || !reflect.DeepEqual(p.GIDs, want) || p.Notice() != "" {
		t.Errorf("nested full: %+v", p)
	}
	// Inside a single-ID container: one id.
	id.OwnUIDMap, id.OwnGIDMap = "0 1002 1\n", "0 1002 1\n"
	if p := MakePlan(id); !p.Direct || p.Mode != ModeSingle || len(p.UIDs) != 1 {
		t.Errorf("nested single: %+v", p)
	}
	// Not root inside: the usual plan.
	id.UID = 1000
	if p := MakePlan(id); p.Direct {
		t.Errorf("a non-root user is not given the direct map: %+v", p)
	}
}
