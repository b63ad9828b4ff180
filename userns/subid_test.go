package userns

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseSubIDs(t *testing.T) {
	const file = `# subordinate ids
alice:100000:65536

bob:200000:65536
1000:300000:1000
  alice : 400000 : 10  
alice:500000
alice:x:10
alice:600000:0
alice:4294967000:65536
alice:4294900000:-1
bob:zzz:1
`
	cases := []struct {
		name     string
		user     string
		uid      int
		ranges   []Range
		warnings []string
	}{
		{
			name:   "by name and by uid, in file order",
			user:   "alice",
			uid:    1000,
			ranges: []Range{{100000, 65536}, {300000, 1000}, {400000, 10}},
			warnings: []string{
				`subuid:7: expected name:start:count, got 2 field(s) in "alice:500000"`,
				`subuid:8: start "x" is not a number below 2^32`,
				`subuid:9: count is 0`,
				`subuid:10: range 4294967000+65536 goes past the largest ID 4294967294`,
				`subuid:11: count "-1" is not a number below 2^32`,
			},
		},
		{
			name:     "by uid only",
			user:     "",
			uid:      1000,
			ranges:   []Range{{300000, 1000}},
			warnings: []string{`subuid:7: expected name:start:count, got 2 field(s) in "alice:500000"`},
		},
		{
			name:   "other users ignored",
			user:   "bob",
			uid:    1001,
			ranges: []Range{{200000, 65536}},
			warnings: []string{
				`subuid:7: expected name:start:count, got 2 field(s) in "alice:500000"`,
				`subuid:12: start "zzz" is not a number below 2^32`,
			},
		},
		{
			name:     "no entry",
			user:     "carol",
			uid:      1002,
			warnings: []string{`subuid:7: expected name:start:count, got 2 field(s) in "alice:500000"`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ranges, warnings := ParseSubIDs(strings.NewReader(file), "subuid", c.user, c.uid)
			if !reflect.DeepEqual(ranges, c.ranges) {
				t.Errorf("ranges = %v, want %v", ranges, c.ranges)
			}
			if !reflect.DeepEqual(warnings, c.warnings) {
				t.Errorf("warnings =\n%s\nwant\n%s", strings.Join(warnings, "\n"), strings.Join(c.warnings, "\n"))
			}
		})
	}
}

func TestParseSubIDsLargestRange(t *testing.T) {
	ranges, warnings := ParseSubIDs(strings.NewReader("a:4294901759:65535\n"), "f", "a", 1)
	if len(warnings) != 0 || !reflect.DeepEqual(ranges, []Range{{4294901759, 65535}}) {
		t.Fatalf("ranges %v, warnings %v: a range ending at 4294967294 is valid", ranges, warnings)
	}
}

func TestReadSubIDs(t *testing.T) {
	dir := t.TempDir()
	ranges, warnings, err := ReadSubIDs(filepath.Join(dir, "missing"), "alice", 1000)
	if ranges != nil || warnings != nil || err != nil {
		t.Fatalf("missing file: got %v %v %v, want nothing", ranges, warnings, err)
	}
	path := filepath.Join(dir, "subuid")
	if err := os.WriteFile(path, []byte("alice:100000:65536\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ranges, _, err = ReadSubIDs(path, "alice", 1000)
	if err != nil || !reflect.DeepEqual(ranges, []Range{{100000, 65536}}) {
		t.Fatalf("got %v %v", ranges, err)
	}
}
