package tests

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestDoctor: rl doctor passes on this machine for both users, with the
// subordinate ranges ok for the user that has them and degraded, with the
// usermod line, for the one without.
func TestDoctor(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "doctor")
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		statusRE := regexp.MustCompile(`^(ok|degraded|broken) +[a-z-]+ +\S`)
		for _, l := range lines {
			if !statusRE.MatchString(l) {
				t.Errorf("line %q is not STATUS NAME DETAIL\n%v", l, r)
			}
		}
		sub := lineNamed(lines, "subid-ranges")
		if u.Name == full.Name {
			if !strings.HasPrefix(sub, "ok ") {
				t.Errorf("subid-ranges for %s: %q\n%v", u.Name, sub, r)
			}
		} else if !strings.HasPrefix(sub, "degraded ") || !strings.Contains(sub, "usermod --add-subuids") || !strings.Contains(sub, u.Name) {
			t.Errorf("subid-ranges for %s: %q, want degraded naming usermod --add-subuids\n%v", u.Name, sub, r)
		}
		for _, name := range []string{"userns", "newuidmap", "storage", "proc", "tun", "seccomp", "bypass", "run-dir", "cgroups"} {
			if lineNamed(lines, name) == "" {
				t.Errorf("no %s line\n%v", name, r)
			}
		}
		// This kernel has all bypass=true needs (TestNetBypass uses it).
		if l := lineNamed(lines, "bypass"); !strings.HasPrefix(l, "ok ") {
			t.Errorf("bypass: %q, want ok\n%v", l, r)
		}
	})
}

// lineNamed is the doctor line whose check is name, or "".
func lineNamed(lines []string, name string) string {
	for _, l := range lines {
		if f := strings.Fields(l); len(f) >= 2 && f[1] == name {
			return l
		}
	}
	return ""
}

// TestDoctorJSON: rl doctor --format json is an array of checks.
func TestDoctorJSON(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "doctor", "--format", "json")
		var checks []struct{ Name, Status, Detail, Cause, Fix string }
		if err := json.Unmarshal([]byte(r.Stdout), &checks); err != nil {
			t.Fatalf("not JSON: %v\n%v", err, r)
		}
		found := false
		for _, c := range checks {
			if c.Status != "ok" && c.Status != "degraded" && c.Status != "broken" {
				t.Errorf("check %s: status %q", c.Name, c.Status)
			}
			if c.Status != "ok" && (c.Cause == "" || c.Fix == "") && c.Name != "run-dir" {
				t.Errorf("check %s is %s without cause and fix: %+v", c.Name, c.Status, c)
			}
			if c.Name == "subid-ranges" {
				found = true
				want := "ok"
				if u.Name != full.Name {
					want = "degraded"
				}
				if c.Status != want {
					t.Errorf("subid-ranges: %+v, want %s", c, want)
				}
			}
		}
		if !found {
			t.Errorf("no subid-ranges check\n%v", r)
		}
	})
}

// TestDoctorInfoJSON: rl info --format json has each section, and shows
// rl.conf's values with their sources.
func TestDoctorInfoJSON(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "info", "--format", "json")
		var info struct {
			Host struct {
				RlVersion, Kernel, Distro string
				Seccomp                   struct{ ModeName string }
				Proc                      struct{ Masked bool }
				Cgroup                    struct{ Version string }
				UserNamespaceSysctls      []struct{ Name string }
				Devices                   []struct {
					Path   string
					Exists bool
				}
			}
			IDMappings struct {
				Mode, Source string
				UIDMap       []struct{ ContainerID, HostID, Size uint32 }
				Newuidmap    struct {
					Path  string
					Found bool
				}
			}
			Store  struct{ Driver, DriverReason, Root, RunRoot, RunRootReason, DataDir, RunDir string }
			Config struct {
				File   string
				Values []struct{ Key, Value, Source string }
			}
		}
		if err := json.Unmarshal([]byte(r.Stdout), &info); err != nil {
			t.Fatalf("not JSON: %v\n%v", err, r)
		}
		h := info.Host
		if h.RlVersion == "" || h.Kernel == "" || h.Distro == "" || h.Seccomp.ModeName == "" || h.Cgroup.Version == "" ||
			len(h.UserNamespaceSysctls) != 3 || len(h.Devices) != 2 {
			t.Errorf("host: %+v\n%v", h, r)
		}
		m := info.IDMappings
		wantMode := "full"
		if u.Name != full.Name {
			wantMode = "single"
		}
		if m.Mode != wantMode || m.Source == "" || len(m.UIDMap) == 0 || m.UIDMap[0].HostID != uint32(u.UID) {
			t.Errorf("idMappings: %+v, want mode %s\n%v", m, wantMode, r)
		}
		s := info.Store
		if s.Driver == "" || s.DriverReason == "" || s.Root == "" || s.RunRoot == "" || s.RunRootReason == "" || s.DataDir == "" {
			t.Errorf("store: %+v", s)
		}
		if len(info.Config.Values) != 3 || info.Config.Values[0].Key != "network" || info.Config.Values[0].Source == "" {
			t.Errorf("config: %+v", info.Config)
		}
	})
}
