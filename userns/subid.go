package userns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// Range is one subordinate ID range from /etc/subuid or /etc/subgid:
// host IDs Start to Start+Count-1.
type Range struct{ Start, Count uint32 }

// ParseSubIDs parses /etc/subuid-format text (name_or_uid:start:count per line)
// and returns the ranges that belong to the user, matched by name or by numeric
// uid, in file order. It is pure and runs on either side; MakePlan calls it from
// the parent, in the host's namespaces.
//
// Blank lines and '#' comments are skipped. Malformed lines are skipped with a
// warning "file:line: problem": a wrong field count always (the owner cannot be
// told), a bad start or count only on the user's own lines (other users'
// mistakes are not this user's concern).
func ParseSubIDs(r io.Reader, file string, user string, uid int) (ranges []Range, warnings []string) {
	uidStr := strconv.Itoa(uid)
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		warn := func(format string, a ...any) {
			warnings = append(warnings, fmt.Sprintf("%s:%d: ", file, n)+fmt.Sprintf(format, a...))
		}
		f := strings.Split(line, ":")
		if len(f) != 3 {
			warn("expected name:start:count, got %d field(s) in %q", len(f), line)
			continue
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		if f[0] == "" || !(f[0] == user && user != "" || f[0] == uidStr) {
			continue
		}
		start, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			warn("start %q is not a number below 2^32", f[1])
			continue
		}
		count, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			warn("count %q is not a number below 2^32", f[2])
			continue
		}
		if count == 0 {
			warn("count is 0")
			continue
		}
		// The last ID must stay below 4294967295, which the kernel reserves as
		// the invalid ID (-1) and refuses in a map.
		if start+count > 1<<32-1 {
			warn("range %d+%d goes past the largest ID 4294967294", start, count)
			continue
		}
		ranges = append(ranges, Range{Start: uint32(start), Count: uint32(count)})
	}
	if err := sc.Err(); err != nil {
		warnings = append(warnings, fmt.Sprintf("%s:%d: stopped reading: %v", file, n+1, err))
	}
	return ranges, warnings
}

// ReadSubIDs reads path and returns the user's ranges (see ParseSubIDs).
// A missing file is not an error: it yields no ranges. Called from the parent,
// in the host's namespaces.
func ReadSubIDs(path, user string, uid int) ([]Range, []string, error) {
	ranges, warnings, _, err := readSubIDs(path, user, uid)
	return ranges, warnings, err
}

// readSubIDs is ReadSubIDs that also tells whether the file exists, so that
// MakePlan can name the right cause.
func readSubIDs(path, user string, uid int) (ranges []Range, warnings []string, exists bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, true, err
	}
	defer f.Close()
	ranges, warnings = ParseSubIDs(f, path, user, uid)
	return ranges, warnings, true, nil
}
