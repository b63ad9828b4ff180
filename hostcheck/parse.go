package hostcheck

import (
	"bufio"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/rlcontainers/rl/rootfs/mounts"
	"github.com/rlcontainers/rl/userns"
)

// ParseOSRelease returns PRETTY_NAME from os-release text (or NAME VERSION
// when PRETTY_NAME is missing), unquoted.
func ParseOSRelease(text string) string {
	vals := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		} else {
			v = strings.Trim(v, `'"`)
		}
		vals[k] = v
	}
	if v := vals["PRETTY_NAME"]; v != "" {
		return v
	}
	return strings.TrimSpace(vals["NAME"] + " " + vals["VERSION"])
}

// Seccomp is the seccomp state of a process (/proc/PID/status).
type Seccomp struct {
	// Mode is 0 (none), 1 (strict) or 2 (filter); -1 when the kernel
	// does not say.
	Mode int `json:"mode"`
	// ModeName is "disabled", "strict", "filter" or "unknown".
	ModeName string `json:"modeName"`
	// Filters is the number of filters installed (Seccomp_filters:,
	// kernel >= 5.9; -1 when not shown).
	Filters int `json:"filters"`
	// LikelySource names where a filter most likely comes from.
	LikelySource string `json:"likelySource,omitempty"`
}

// ParseStatusSeccomp reads Seccomp: and Seccomp_filters: from
// /proc/PID/status text.
func ParseStatusSeccomp(text string) Seccomp {
	var s Seccomp
	s.Mode, s.Filters = userns.ParseSeccompStatus(text)
	switch s.Mode {
	case 0:
		s.ModeName = "disabled"
	case 1:
		s.ModeName = "strict"
	case 2:
		s.ModeName = "filter"
	default:
		s.ModeName = "unknown"
	}
	if s.Mode == 2 && s.Filters == -1 {
		s.Filters = 1 // at least one; the kernel is older than 5.9
	}
	if s.Mode == 2 {
		s.LikelySource = "the outer container runtime's profile (Docker's and podman's default profiles install one filter; Kubernetes' RuntimeDefault likewise)"
	}
	return s
}

// Mount is one line of /proc/PID/mountinfo.
type Mount struct {
	ID, Parent int
	Root       string // the mounted path inside its filesystem
	Point      string // mount point
	Options    string // per-mount options
	FSType     string
	Source     string
	SuperOpts  string
}

// ParseMountinfo parses /proc/PID/mountinfo text; malformed lines are
// skipped.
func ParseMountinfo(r io.Reader) []Mount {
	var ms []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 6 || len(g) < 2 {
			continue
		}
		var m Mount
		m.ID, _ = strconv.Atoi(f[0])
		m.Parent, _ = strconv.Atoi(f[1])
		m.Root, m.Point, m.Options = unescape(f[3]), unescape(f[4]), f[5]
		m.FSType, m.Source = g[0], unescape(g[1])
		if len(g) > 2 {
			m.SuperOpts = g[2]
		}
		ms = append(ms, m)
	}
	return ms
}

// unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ProcMask says whether /proc has mounts over parts of it, as container
// runtimes leave it (Docker masks /proc/kcore, /proc/keys, /proc/timer_list
// ... with /dev/null or a tmpfs and binds /proc/sys read-only). The kernel
// then refuses a fresh proc mount in a new user namespace: it would reveal
// what the mounts hide (fs/namespace.c, mnt_already_visible).
type ProcMask struct {
	Masked bool     `json:"masked"`
	Paths  []string `json:"paths,omitempty"` // the mount points over /proc's contents
}

// MaskedProc finds the mounts over /proc's contents.
func MaskedProc(ms []Mount) ProcMask {
	var p ProcMask
	seen := map[string]bool{}
	for _, m := range ms {
		if !strings.HasPrefix(m.Point, "/proc/") || mounts.EmptyProcDir(m.Point) || seen[m.Point] {
			continue
		}
		seen[m.Point] = true
		p.Paths = append(p.Paths, m.Point)
	}
	sort.Strings(p.Paths)
	p.Masked = len(p.Paths) > 0
	return p
}
