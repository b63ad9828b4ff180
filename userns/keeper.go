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
// Its record, DIR/keeper (DIR the user's run dir), names it (pid and
// start time, so a reused pid is not taken for it) and the plan it was
// made for; three lines, "PID START", planKey of that plan, and the JSON
// of the plan its maps follow, for the child (_RL_USERNS_PLAN): reading it
// decodes no JSON, which in the host rl would be the first use of
// encoding/json's decoder (~0.2 ms). A record for another plan
// (/etc/subuid changed), or a keeper that is gone, makes the next command
// start a new one (and stop the old one, whose namespace lives on while
// containers are in it). A keeper that
// got the single-ID fallback (a helper failed) is not reused: the next
// command tries the helpers again, as without a keeper. A keeper leaves
// when its record was not used for keeperIdle, or names another keeper.
const (
	KeeperArg    = "__rl-keeper"
	keeperRecord = "keeper"
	keeperLock   = "keeper.lock"
	keeperIdle   = 15 * time.Minute
	keeperCheck  = time.Minute
)

type keeperRec struct {
	Pid   int
	Start uint64 // /proc/PID/stat's starttime
	Key   string // planKey of the plan it was made for; fallbackKey when it got the single-ID fallback
	Plan  []byte // JSON of the plan its maps follow
}

// fallbackKey is the key of a keeper that got the single-ID fallback: no
// plan's, so that it is not reused.
const fallbackKey = "fallback"

func (r keeperRec) format() []byte {
	b := strconv.AppendInt(nil, int64(r.Pid), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, r.Start, 10)
	b = append(append(append(b, '\n'), r.Key...), '\n')
	return append(append(b, r.Plan...), '\n')
}

// readRecord reads and parses the record at path.
func readRecord(path string) (keeperRec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return keeperRec{}, err
	}
	return parseRecord(b)
}

func parseRecord(b []byte) (keeperRec, error) {
	var r keeperRec
	lines := strings.SplitN(strings.TrimSuffix(string(b), "\n"), "\n", 3)
	if len(lines) != 3 {
		return r, errNoKeeper
	}
	pid, start, ok := strings.Cut(lines[0], " ")
	var err1, err2 error
	r.Pid, err1 = strconv.Atoi(pid)
	r.Start, err2 = strconv.ParseUint(start, 10, 64)
	if !ok || err1 != nil || err2 != nil || r.Pid <= 0 {
		return r, errNoKeeper
	}
	r.Key, r.Plan = lines[1], []byte(lines[2])
	return r, nil
}

// planKey says what a keeper made for p maps, with which helpers.
func planKey(p Plan) string {
	b := append([]byte(p.Mode), ' ')
	b = append(append(b, p.NewUIDMap...), ' ')
	b = append(append(b, p.NewGIDMap...), ' ')
	for _, maps := range [][]Mapping{p.UIDs, p.GIDs} {
		for _, m := range maps {
			b = strconv.AppendUint(b, uint64(m.ContainerID), 10)
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(m.HostID), 10)
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(m.Size), 10)
			b = append(b, ',')
		}
		b = append(b, ';')
	}
	return string(b)
}

// errNoKeeper: no keeper can be used; the caller makes a namespace of its
// own, the way that reports its failures.
var errNoKeeper = errors.New("no keeper")

// keeperNS opens the user namespace of the keeper in dir for plan
// (starting one when needed, as keeper, the rl binary) and returns it
// with the keeper's record (its pid, start time and the JSON of the plan
// its maps follow).
func keeperNS(dir, keeper string, plan Plan, mark func(string)) (fd int, rec keeperRec, started bool, err error) {
	key := planKey(plan)
	if fd, rec, err := openKeeper(dir, key, true); err == nil {
		return fd, rec, false, nil
	}
	lock, err := os.OpenFile(filepath.Join(dir, keeperLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return -1, rec, false, errNoKeeper
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return -1, rec, false, errNoKeeper
	}
	// Another command may have started one while we waited.
	if fd, rec, err := openKeeper(dir, key, false); err == nil {
		return fd, rec, false, nil
	}
	stopKeeper(dir)
	fd, rec, err = startKeeper(dir, keeper, plan)
	mark("host: keeper started")
	return fd, rec, err == nil, err
}

// openKeeper opens the namespace of the keeper dir's record names, if that
// keeper is alive and was made for the plan of key (and got it). touch
// marks the record used (the keeper leaves when it is not).
func openKeeper(dir, key string, touch bool) (int, keeperRec, error) {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Getuid() {
		return -1, keeperRec{}, errNoKeeper
	}
	path := filepath.Join(dir, keeperRecord)
	rec, err := readRecord(path)
	if err != nil || rec.Key != key {
		return -1, keeperRec{}, errNoKeeper
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(rec.Pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, keeperRec{}, errNoKeeper
	}
	// Opened first, checked after: the namespace is that keeper's if the
	// process is still it (not a reused pid, not a zombie whose parent, the
	// rl that started it, still runs) now.
	if !ProcessAlive(rec.Pid, rec.Start) {
		unix.Close(fd)
		return -1, keeperRec{}, errNoKeeper
	}
	if touch {
		now := time.Now()
		os.Chtimes(path, now, now)
	}
	return fd, rec, nil
}

// stopKeeper ends the keeper dir's record names (if it is still that
// process) and removes the record. Its namespace lives on as long as
// processes are in it.
func stopKeeper(dir string) {
	path := filepath.Join(dir, keeperRecord)
	if rec, err := readRecord(path); err == nil && ProcessAlive(rec.Pid, rec.Start) {
		unix.Kill(rec.Pid, unix.SIGKILL)
	}
	os.Remove(path)
}

// KeeperPid is the pid of the keeper dir's record names, when it runs and
// this process is in its user namespace (rl info).
func KeeperPid(dir string) (int, bool) {
	rec, err := readRecord(filepath.Join(dir, keeperRecord))
	if err != nil || !ProcessAlive(rec.Pid, rec.Start) {
		return 0, false
	}
	theirs, err1 := os.Readlink("/proc/" + strconv.Itoa(rec.Pid) + "/ns/user")
	ours, err2 := os.Readlink("/proc/self/ns/user")
	if err1 != nil || err2 != nil || theirs != ours {
		return 0, false
	}
	return rec.Pid, true
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
func startKeeper(dir, keeper string, plan Plan) (int, keeperRec, error) {
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
		return -1, keeperRec{}, errNoKeeper
	}
	pid := cmd.Process.Pid
	fail := func() (int, keeperRec, error) {
		cmd.Process.Kill()
		cmd.Wait()
		return -1, keeperRec{}, errNoKeeper
	}
	got := plan
	changed, err := writeMaps(pid, &got)
	if err != nil {
		return fail()
	}
	rec := keeperRec{Pid: pid, Key: planKey(plan)}
	if changed {
		rec.Key = fallbackKey
	}
	if rec.Plan, err = json.Marshal(got); err != nil {
		return fail()
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail()
	}
	if rec.Start, err = StartTime(pid); err == nil {
		tmp := filepath.Join(dir, keeperRecord+".tmp")
		if err = os.WriteFile(tmp, rec.format(), 0o600); err == nil {
			err = os.Rename(tmp, filepath.Join(dir, keeperRecord))
		}
	}
	if err != nil {
		unix.Close(fd)
		return fail()
	}
	// Not waited for: it outlives us (reparented to init or a subreaper).
	cmd.Process.Release()
	return fd, rec, nil
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
	if rec, err := readRecord(path); err != nil || rec.Pid != me {
		return true
	}
	st, err := os.Stat(path)
	return err != nil || now.Sub(st.ModTime()) > keeperIdle
}
