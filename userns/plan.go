package userns

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
)

// Modes of a Plan.
const (
	// ModeFull maps container 0 to the user and 1.. to the subordinate ranges,
	// written by the setuid helpers newuidmap and newgidmap.
	ModeFull = "full"
	// ModeSingle maps container 0 to the user and nothing else; the parent
	// writes it itself, which the kernel allows an unprivileged process.
	ModeSingle = "single"
)

// maxMapLines is the kernel's limit on lines in uid_map/gid_map (since 4.15).
const maxMapLines = 340

// Mapping is one line of /proc/PID/uid_map or gid_map.
type Mapping struct{ ContainerID, HostID, Size uint32 }

// Plan is how the user namespace will be mapped, decided on the host before it
// exists, so that it can be tested without privileges and shown to the user.
// It travels to the child as JSON.
type Plan struct {
	Mode      string    // ModeFull or ModeSingle
	UIDs      []Mapping // uid_map: container 0 -> the user's uid (size 1); 1.. -> the subuid ranges, consecutive
	GIDs      []Mapping // gid_map, same layout with the gid and the subgid ranges
	NewUIDMap string    // path of newuidmap when Mode is ModeFull
	NewGIDMap string    // path of newgidmap when Mode is ModeFull
	Source    string    // where the maps came from, e.g. "/etc/subuid and /etc/subgid" or "single-ID fallback"
	Reason    string    // ModeSingle: why, e.g. "no entry for alice (uid 1000) in /etc/subuid"
	Fix       string    // ModeSingle: what the user can do about it
	Warnings  []string  // malformed lines met in the subordinate ID files
	// Direct: rl runs as root of a user namespace already (nested in a
	// container) and maps the ids it has itself, no helpers needed.
	Direct bool
}

// Identity is the host user a Plan is made for, and where to look things up.
type Identity struct {
	UID, GID   int
	User       string                       // login name; may be empty if unknown
	SubUIDFile string                       // default /etc/subuid
	SubGIDFile string                       // default /etc/subgid
	LookPath   func(string) (string, error) // default exec.LookPath
	// OwnUIDMap and OwnGIDMap are the caller's own /proc/self/uid_map and
	// gid_map: not the identity of the initial namespace means rl runs
	// nested, in a user namespace of an outer container.
	OwnUIDMap, OwnGIDMap string
}

// initialMap is uid_map in the initial user namespace.
const initialMap = "0 0 4294967295"

// CurrentIdentity describes the calling user. Called from the parent, in the
// host's namespaces. The name comes from the user database, else $USER, else
// the numeric uid (what usermod then needs to be told by hand).
func CurrentIdentity() Identity {
	id := Identity{
		UID:        os.Getuid(),
		GID:        os.Getgid(),
		SubUIDFile: "/etc/subuid",
		SubGIDFile: "/etc/subgid",
		LookPath:   exec.LookPath,
	}
	if b, err := os.ReadFile("/proc/self/uid_map"); err == nil {
		id.OwnUIDMap = string(b)
	}
	if b, err := os.ReadFile("/proc/self/gid_map"); err == nil {
		id.OwnGIDMap = string(b)
	}
	if u, err := user.LookupId(strconv.Itoa(id.UID)); err == nil && u.Username != "" {
		id.User = u.Username
	} else if name := os.Getenv("USER"); name != "" {
		id.User = name
	} else {
		id.User = strconv.Itoa(id.UID)
	}
	return id
}

// MakePlan decides between the full and the single-ID map. Called from the
// parent, in the host's namespaces; it reads files and PATH but changes nothing.
// Full needs at least one subuid range, one subgid range, and both newuidmap
// and newgidmap; otherwise the plan is single, with every missing piece named
// in Reason and its remedy in Fix.
func MakePlan(id Identity) Plan {
	if id.SubUIDFile == "" {
		id.SubUIDFile = "/etc/subuid"
	}
	if id.SubGIDFile == "" {
		id.SubGIDFile = "/etc/subgid"
	}
	if id.LookPath == nil {
		id.LookPath = exec.LookPath
	}
	who := id.User
	if who == "" {
		who = strconv.Itoa(id.UID)
	}
	self := func(hostID int) Mapping { return Mapping{ContainerID: 0, HostID: uint32(hostID), Size: 1} }

	if p, ok := nestedPlan(id); ok {
		return p
	}
	var p Plan
	var reasons, fixes []string
	subUIDs, subGIDs := p.readRanges(id, who, &reasons)
	switch {
	case len(subUIDs) == 0 && len(subGIDs) == 0:
		fixes = append(fixes, fmt.Sprintf("add ranges: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", who))
	case len(subUIDs) == 0:
		fixes = append(fixes, fmt.Sprintf("add a range: sudo usermod --add-subuids %s %s", suggest(subGIDs), who))
	case len(subGIDs) == 0:
		fixes = append(fixes, fmt.Sprintf("add a range: sudo usermod --add-subgids %s %s", suggest(subUIDs), who))
	}

	var missing []string
	for _, helper := range []string{"newuidmap", "newgidmap"} {
		path, err := id.LookPath(helper)
		if err != nil {
			reasons = append(reasons, helper+" not found in PATH")
			missing = append(missing, helper)
			continue
		}
		if helper == "newuidmap" {
			p.NewUIDMap = path
		} else {
			p.NewGIDMap = path
		}
	}
	if len(missing) > 0 {
		fixes = append(fixes, fmt.Sprintf("install %s (Debian/Ubuntu: apt-get install uidmap; Fedora: dnf install shadow-utils)", strings.Join(missing, " and ")))
	}

	if len(reasons) == 0 {
		p.Mode = ModeFull
		p.Source = id.SubUIDFile + " and " + id.SubGIDFile
		p.UIDs, p.Warnings = layout(self(id.UID), subUIDs, id.SubUIDFile, p.Warnings)
		p.GIDs, p.Warnings = layout(self(id.GID), subGIDs, id.SubGIDFile, p.Warnings)
		return p
	}
	p.Mode = ModeSingle
	p.Source = "single-ID fallback"
	p.UIDs = []Mapping{self(id.UID)}
	p.GIDs = []Mapping{self(id.GID)}
	p.NewUIDMap, p.NewGIDMap = "", ""
	p.Reason = strings.Join(reasons, "; ")
	p.Fix = strings.Join(fixes, "; ")
	return p
}

// readRanges reads both subordinate ID files, adding a reason for each that
// gives the user nothing; the same problem in both files is named once.
func (p *Plan) readRanges(id Identity, who string, reasons *[]string) (subUIDs, subGIDs []Range) {
	type result struct {
		ranges []Range
		exists bool
		err    error
	}
	read := func(path string) result {
		ranges, warnings, exists, err := readSubIDs(path, id.User, id.UID)
		p.Warnings = append(p.Warnings, warnings...)
		return result{ranges, exists, err}
	}
	u, g := read(id.SubUIDFile), read(id.SubGIDFile)
	noEntry := func(r result) bool { return r.err == nil && r.exists && len(r.ranges) == 0 }
	switch {
	case !u.exists && !g.exists:
		*reasons = append(*reasons, fmt.Sprintf("%s and %s do not exist", id.SubUIDFile, id.SubGIDFile))
		return nil, nil
	case noEntry(u) && noEntry(g):
		*reasons = append(*reasons, fmt.Sprintf("no entry for %s (uid %d) in %s or %s", who, id.UID, id.SubUIDFile, id.SubGIDFile))
		return nil, nil
	}
	for _, x := range []struct {
		path string
		r    result
	}{{id.SubUIDFile, u}, {id.SubGIDFile, g}} {
		switch {
		case x.r.err != nil:
			*reasons = append(*reasons, fmt.Sprintf("cannot read %s: %v", x.path, x.r.err))
		case !x.r.exists:
			*reasons = append(*reasons, x.path+" does not exist")
		case len(x.r.ranges) == 0:
			*reasons = append(*reasons, fmt.Sprintf("no entry for %s (uid %d) in %s", who, id.UID, x.path))
		}
	}
	return u.ranges, g.ranges
}

// suggest proposes, for the missing file, the range the other file already
// has, since most systems keep subuid and subgid identical.
func suggest(have []Range) string {
	r := have[0]
	return fmt.Sprintf("%d-%d", r.Start, uint64(r.Start)+uint64(r.Count)-1)
}

// layout places self at container ID 0 and the ranges after it, consecutively.
// Ranges that would push container IDs past 4294967294, or the map past the
// kernel's line limit, are dropped with a warning.
func layout(self Mapping, ranges []Range, file string, warnings []string) ([]Mapping, []string) {
	maps := []Mapping{self}
	next := uint64(1)
	for i, r := range ranges {
		if len(maps) == maxMapLines {
			warnings = append(warnings, fmt.Sprintf("%s: only the first %d ranges fit in a user namespace map; %d ignored", file, maxMapLines-1, len(ranges)-i))
			break
		}
		if next+uint64(r.Count) > 1<<32-1 {
			warnings = append(warnings, fmt.Sprintf("%s: range %d+%d ignored: container IDs would pass 4294967294", file, r.Start, r.Count))
			continue
		}
		maps = append(maps, Mapping{ContainerID: uint32(next), HostID: r.Start, Size: r.Count})
		next += uint64(r.Count)
	}
	return maps, warnings
}

// HelperArgs returns the arguments (without the program name) of newuidmap or
// newgidmap for process pid: the pid, then one "container host size" triple
// per mapping. Called from the parent, in the host's namespaces.
func HelperArgs(pid int, maps []Mapping) []string {
	args := []string{strconv.Itoa(pid)}
	for _, m := range maps {
		args = append(args,
			strconv.FormatUint(uint64(m.ContainerID), 10),
			strconv.FormatUint(uint64(m.HostID), 10),
			strconv.FormatUint(uint64(m.Size), 10))
	}
	return args
}

// Notice returns "" for a full plan, else one line for stderr saying that the
// namespace has a single ID, why, what that costs, and the fix.
func (p *Plan) Notice() string {
	if p.Mode == ModeFull {
		return ""
	}
	s := "rl: notice: using a single-ID user namespace"
	if p.Reason != "" {
		s += " (" + p.Reason + ")"
	}
	s += ": only uid 0 exists in containers and file ownership in images is squashed"
	if p.Fix != "" {
		s += "; fix: " + p.Fix
	}
	return s
}

// mapText renders maps in the format of /proc/PID/uid_map.
func mapText(maps []Mapping) string {
	var b strings.Builder
	for _, m := range maps {
		fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
	}
	return b.String()
}

// nestedPlan is the plan of rl running as root of a user namespace that is
// not the initial one (inside a container): the new namespace gets the ids
// this one has, mapped to themselves, written directly (root of the parent
// namespace may map any of its ids; no setuid helper is needed, or there).
func nestedPlan(id Identity) (Plan, bool) {
	if id.UID != 0 || id.OwnUIDMap == "" || strings.Join(strings.Fields(id.OwnUIDMap), " ") == initialMap {
		return Plan{}, false
	}
	uids, gids := identityOf(id.OwnUIDMap), identityOf(id.OwnGIDMap)
	if len(uids) == 0 || len(gids) == 0 {
		return Plan{}, false
	}
	p := Plan{
		Mode: ModeFull, Direct: true, UIDs: uids, GIDs: gids,
		Source: "the enclosing user namespace (rl nested in a container): its ids, mapped to themselves",
	}
	if len(uids) == 1 && uids[0].Size == 1 {
		p.Mode = ModeSingle
		p.Reason = "the enclosing container maps a single id"
		p.Fix = "run the outer container with a full id range (for rl: /etc/subuid and /etc/subgid ranges for its user)"
	}
	return p, true
}

// identityOf maps each range a uid_map gives this namespace to itself.
func identityOf(ownMap string) []Mapping {
	var out []Mapping
	for _, line := range strings.Split(strings.TrimSpace(ownMap), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		in, err1 := strconv.ParseUint(f[0], 10, 32)
		size, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || size == 0 {
			continue
		}
		out = append(out, Mapping{ContainerID: uint32(in), HostID: uint32(in), Size: uint32(size)})
	}
	return out
}
