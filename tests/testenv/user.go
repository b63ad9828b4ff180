package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// RangeSize is the number of subordinate ids EnsureUser grants.
const RangeSize = 65536

// EnsureUser, run as root, creates the user name if missing (useradd -m -s
// /bin/sh) and sets its subordinate ids: with withRanges, /etc/subuid and
// /etc/subgid hold exactly "name:start:65536" for it; without, no line for
// it at all (useradd on Debian adds one by itself). It returns the user's
// uid and primary gid.
func EnsureUser(name string, withRanges bool, start uint32) (uid, gid int, err error) {
	if os.Geteuid() != 0 {
		return 0, 0, fmt.Errorf("EnsureUser %s: must run as root", name)
	}
	u, err := user.Lookup(name)
	if err != nil {
		if out, err := exec.Command("useradd", "-m", "-s", "/bin/sh", name).CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("useradd %s: %w: %s", name, err, bytes.TrimSpace(out))
		}
		if u, err = user.Lookup(name); err != nil {
			return 0, 0, err
		}
	}
	if uid, err = strconv.Atoi(u.Uid); err != nil {
		return 0, 0, err
	}
	if gid, err = strconv.Atoi(u.Gid); err != nil {
		return 0, 0, err
	}
	line := ""
	if withRanges {
		line = fmt.Sprintf("%s:%d:%d", name, start, RangeSize)
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		if err := setSubIDs(f, []string{name, u.Uid}, line); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// setSubIDs rewrites path without the lines whose first field is one of
// owners (name or numeric uid), then appends line if not empty.
func setSubIDs(path string, owners []string, line string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(old))
	for sc.Scan() {
		first, _, _ := strings.Cut(sc.Text(), ":")
		drop := false
		for _, o := range owners {
			drop = drop || strings.TrimSpace(first) == o
		}
		if !drop {
			out.WriteString(sc.Text() + "\n")
		}
	}
	if line != "" {
		out.WriteString(line + "\n")
	}
	if bytes.Equal(out.Bytes(), old) {
		return nil
	}
	tmp := path + ".rl-testenv"
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// chownLike gives paths the owner of ref.
func chownLike(ref fs.FileInfo, paths ...string) error {
	st, ok := ref.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("no owner for %s", ref.Name())
	}
	for _, p := range paths {
		if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	return nil
}

// MakeHome creates dir (mode 0700) owned by uid:gid, every ancestor it
// creates being 0755, for a test user's fresh HOME.
func MakeHome(dir string, uid, gid int) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	return os.Chown(dir, uid, gid)
}
