package userns

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A keeper is a process that holds the user's rl user namespace between
// commands, as podman's pause process does: `rl __rl-keeper DIR`, started
// in a new user namespace mapped as the plan says, in a session of its own,
// doing nothing. Later commands enter that namespace (startJoined) instead
// of making and mapping one each: newuidmap and newgidmap, two setuid
// execs, ran on every command's critical path before.
//
// Its record, DIR/keeper.json (DIR the user's run dir), names it (pid and
// start time, so a reused pid is not taken for it) and the plan it was
// made for. A record for another plan (/etc/subuid changed), or a keeper
// that is gone, makes the next command start a new one (and stop the old
// one, whose namespace lives on while containers are in it). A keeper that
// got the single-ID fallback (a helper failed) is not reused: the next
// command tries the helpers again, as without a keeper. A keeper leaves
// when its record was not used for keeperIdle, or names another keeper.
const (
	KeeperArg    = "__rl-keeper"
	keeperRecord = "keeper.json"
	keeperLock   = "keeper.lock"
	keeperIdle   = 15 * time.Minute
	keeperCheck  = time.Minute
)

type keeperRec struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"` // /proc/PID/stat's starttime
	Asked Plan   `json:"asked"` // the plan it was made for
	Plan  Plan   `json:"plan"`  // the maps it got
}

// errNoKeeper: no keeper can be used; the caller makes a namespace of its
// own, the way that reports its failures.
var errNoKeeper = errors.New("no keeper")

// samePlan: a and b map the same ids with the same helpers.
func samePlan(a, b Plan) bool {
	key := func(p Plan) string {
		b, _ := json.Marshal(struct {
			Mode, NewUIDMap, NewGIDMap string
			UIDs, GIDs                 []Mapping
		}{p.Mode, p.NewUIDMap, p.NewGIDMap, p.UIDs, p.GIDs})
		return string(b)
	}
	return key(a) == key(b)
}

// keeperNS opens the user namespace of the keeper in dir for plan
// (starting one when needed, as keeper, the rl binary) and returns it
// with the plan its maps follow.
func keeperNS(dir, keeper string, plan Plan, mark func(string)) (int, Plan, error) {
	if fd, p, err := openKeeper(dir, plan, true); err == nil {
		return fd, p, nil
	}
	lock, err := os.OpenFile(filepath.Join(dir, keeperLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return -1, Plan{}, errNoKeeper
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return -1, Plan{}, errNoKeeper
	}
	// Another command may have started one while we waited.
	if fd, p, err := openKeeper(dir, plan, false); err == nil {
		return fd, p, nil
	}
	stopKeeper(dir)
	fd, p, err := startKeeper(dir, keeper, plan)
	mark("host: keeper started")
	return fd, p, err
}

// openKeeper opens the namespace of the keeper dir's record names, if that
// keeper is alive and was made for plan (and got it). touch marks the
// record used (the keeper leaves when it is not).
func openKeeper(dir string, plan Plan, touch bool) (int, Plan, error) {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Getuid() {
		return -1, Plan{}, errNoKeeper
	}
	path := filepath.Join(dir, keeperRecord)
	b, err := os.ReadFile(path)
	if err != nil {
		return -1, Plan{}, errNoKeeper
	}
	var rec keeperRec
	if json.Unmarshal(b, &rec) != nil || rec.Pid <= 0 || !samePlan(rec.Asked, plan) || rec.Plan.Mode != rec.Asked.Mode {
		return -1, Plan{}, errNoKeeper
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(rec.Pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, Plan{}, errNoKeeper
	}
	// Opened first, checked after: the namespace is that keeper's if the
	// process is still it (not a reused pid, not a zombie whose parent, the
	// rl that started it, still runs) now.
	if !isKeeper(rec) {
		unix.Close(fd)
		return -1, Plan{}, errNoKeeper
	}
	if touch {
		now := time.Now()
		os.Chtimes(path, now, now)
	}
	return fd, rec.Plan, nil
}

// isKeeper: the process rec names runs (not a zombie) and started when
// recorded.
func isKeeper(rec keeperRec) bool {
	state, start, err := procStart(rec.Pid)
	return err == nil && state != "Z" && state != "X" && start == rec.Start
}

// procStart is the state and the start time (clock ticks since boot) of
// process pid: fields 3 and 22 of /proc/PID/stat, counted after the
// command name, which may hold spaces and parentheses.
func procStart(pid int) (state string, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 20 {
		return "", 0, errors.New("/proc/" + strconv.Itoa(pid) + "/stat: unexpected format")
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return f[0], start, err
}

// stopKeeper ends the keeper dir's record names (if it is still that
// process) and removes the record. Its namespace lives on as long as
// processes are in it.
func stopKeeper(dir string) {
	path := filepath.Join(dir, keeperRecord)
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var rec keeperRec
	if json.Unmarshal(b, &rec) == nil && rec.Pid > 0 {
		if isKeeper(rec) {
			unix.Kill(rec.Pid, unix.SIGKILL)
		}
	}
	os.Remove(path)
}

// StopKeeper ends the user's keeper, if any (rl system migrate): the next
// command starts a new one, with the maps /etc/subuid and /etc/subgid
// give then.
func StopKeeper(dir string) error {
	lock, err := os.OpenFile(filepath.Join(dir, keeperLock), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	stopKeeper(dir)
	return nil
}

// startKeeper starts a keeper, maps its namespace, records it and opens
// its namespace. Called with the lock held.
func startKeeper(dir, keeper string, plan Plan) (int, Plan, error) {
	cmd := &exec.Cmd{
		Path: keeper,
		Args: []string{"rl-keeper", KeeperArg, dir},
		Env:  []string{},
		Dir:  "/",
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWUSER,
			Setsid:     true,
		},
	}
	if err := cmd.Start(); err != nil {
		return -1, Plan{}, errNoKeeper
	}
	pid := cmd.Process.Pid
	fail := func() (int, Plan, error) {
		cmd.Process.Kill()
		cmd.Wait()
		return -1, Plan{}, errNoKeeper
	}
	got := plan
	if _, err := writeMaps(pid, &got); err != nil {
		return fail()
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail()
	}
	_, start, err := procStart(pid)
	if err != nil {
		unix.Close(fd)
		return fail()
	}
	b, err := json.Marshal(keeperRec{Pid: pid, Start: start, Asked: plan, Plan: got})
	if err == nil {
		tmp := filepath.Join(dir, keeperRecord+".tmp")
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, filepath.Join(dir, keeperRecord))
		}
	}
	if err != nil {
		unix.Close(fd)
		return fail()
	}
	// Not waited for: it outlives us (reparented to init or a subreaper).
	cmd.Process.Release()
	return fd, got, nil
}

// Keep is the keeper's main (rl __rl-keeper DIR): it holds its namespace
// until keeperDone.
func Keep(dir string) int {
	path := filepath.Join(dir, keeperRecord)
	for {
		time.Sleep(keeperCheck)
		if keeperDone(path, os.Getpid(), time.Now()) {
			return 0
		}
	}
}

// keeperDone: the keeper me, whose record is path, is no longer wanted at
// now: its record is gone, names another process, or was not used for
// keeperIdle.
func keeperDone(path string, me int, now time.Time) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return true
	}
	var rec keeperRec
	if json.Unmarshal(b, &rec) != nil || rec.Pid != me {
		return true
	}
	st, err := os.Stat(path)
	return err != nil || now.Sub(st.ModTime()) > keeperIdle
}
