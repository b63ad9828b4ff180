package userns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwarded are the signals the parent relays to the child over the pipe.
var forwarded = []os.Signal{
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP,
	syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
}

// Options configure Run.
type Options struct {
	Plan Plan     // from MakePlan
	Path string   // the binary to run as the child; empty: /proc/self/exe
	Args []string // argv of the child, argv[0] included
	Env  []string // environment of the child; Run adds (and overrides) its own variables
	// Standard streams of the child; nil means /dev/null.
	Stdin, Stdout, Stderr *os.File
	// Signals, when set, are forwarded instead of the ones this process
	// gets (Spawn: they come over a control connection).
	Signals <-chan os.Signal
	// Mark, when set, is called at each step of the start (rl's phase
	// trace, RL_TRACE).
	Mark func(phase string)
	// ExtraFiles become the child's fds 5, 6, ... (after the handshake's
	// 3 and 4).
	ExtraFiles []*os.File
	// Payload, when set, runs while the maps are written (the child is
	// starting meanwhile) and its result reaches the child (Child.Payload)
	// before the release. When it fails the child exits quietly and Run
	// returns its error as is, with exit code -1.
	Payload func() ([]byte, error)
	// KeeperDir, when set, is the user's run dir (private to the user,
	// made by the caller), where Run finds (or starts) the keeper whose
	// user namespace the child enters instead of a new one (keeper.go);
	// Keeper is the rl binary to start as one.
	KeeperDir, Keeper string
	// Exec, when the keeper's namespace is there (and was not started
	// just now: it would be the child's child), replaces this process
	// with the child instead of forking it and waiting (execjoin.go): for
	// a child that needs nothing of us once it runs (no terminal to
	// restore, no detach). The payload is made first and reaches the
	// child in the variable PayloadEnv; Stdin, Stdout and Stderr must be
	// our own, and there may be no ExtraFiles.
	Exec       bool
	PayloadEnv string
	// FastDir, with Exec: where the exec in place is recorded for the
	// next run of the same words (fastpath.go), asked once the payload is
	// made (empty: not recorded). The caller answers only for words whose
	// payload depends on them alone, where the entry point looks
	// ($XDG_RUNTIME_DIR/rl/fast), for an environment FastEnvOK, with no
	// warnings to print.
	FastDir func() string
}

// Run executes o.Path (default /proc/self/exe) in a new user and mount namespace, maps it
// according to o.Plan, releases it, forwards signals to it and waits for it.
// Called from the parent, in the host's namespaces. It returns the child's exit
// code (128+N if killed by signal N). A failure to create or map the namespace
// is returned as *Error; the child then exits quietly (see Join).
func Run(o Options) (exitCode int, err error) {
	return run(o, true)
}

// Spawn runs o.Path as a child that joins the caller's own user namespace
// (it makes none, writes no map) but speaks the same handshake, so the
// child's Join, Detach and forwarded signals work as under Run. It runs in
// a process inside an rl user namespace: a container's supervisor starting
// the supervisor of a container that joins its namespaces (docker's
// container:NAME modes need a shared user namespace).
func Spawn(o Options) (exitCode int, err error) {
	return run(o, false)
}

func run(o Options, newNS bool) (exitCode int, err error) {
	if len(o.Args) == 0 {
		return -1, errors.New("userns: Run: no Args (argv[0] is required)")
	}
	if len(o.Plan.UIDs) == 0 || len(o.Plan.GIDs) == 0 {
		return -1, errors.New("userns: Run: the plan has no uid or gid map (use MakePlan)")
	}
	plan := o.Plan
	mark := o.Mark
	if mark == nil {
		mark = func(string) {}
	}
	// The keeper's namespace, when there is one for this plan (or one can
	// be started): the child enters it, and no map is written.
	joinFD := -1
	var joinPlan []byte
	if newNS && !plan.Direct && o.KeeperDir != "" && o.Keeper != "" {
		if fd, rec, started, err := keeperNS(o.KeeperDir, o.Keeper, plan, mark); err == nil {
			joinFD, joinPlan = fd, rec.Plan
			defer unix.Close(joinFD)
			if o.Exec && !started && canExec(o) {
				// Back here only when the exec failed: the usual way.
				if o, err = execJoin(o, rec, plan, joinFD); err != nil {
					return -1, err
				}
			}
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return -1, fmt.Errorf("userns: pipe: %w", err)
	}
	defer w.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		r.Close()
		return -1, fmt.Errorf("userns: pipe: %w", err)
	}
	defer statusR.Close()

	path := o.Path
	if path == "" {
		path = "/proc/self/exe"
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        o.Args,
		ExtraFiles:  append([]*os.File{r, statusW}, o.ExtraFiles...), // fd 3 == childFD, fd 4 == childStatusFD
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: cloneFlags(newNS)},
	}
	if newNS && plan.Direct {
		// Root of the parent namespace writes the maps itself, and Go
		// writes them before the child execs: the child starts as root of
		// its namespace, with its capabilities, no ambient ones needed.
		cmd.SysProcAttr.UidMappings = sysMaps(plan.UIDs)
		cmd.SysProcAttr.GidMappings = sysMaps(plan.GIDs)
		// A namespace whose parent denies setgroups must deny it too
		// (user_namespaces(7)): a single-ID outer container does.
		cmd.SysProcAttr.GidMappingsEnableSetgroups = !setgroupsDenied()
	}
	if o.Stdin != nil {
		cmd.Stdin = o.Stdin
	}
	if o.Stdout != nil {
		cmd.Stdout = o.Stdout
	}
	if o.Stderr != nil {
		cmd.Stderr = o.Stderr
	}

	// Catch signals before the child exists so none is lost (or kills us) while
	// the maps are written; they are relayed after the release.
	sigc := o.Signals
	if sigc == nil {
		own := make(chan os.Signal, 16)
		signal.Notify(own, forwarded...)
		defer signal.Stop(own)
		sigc = own
	}

	var proc *os.Process
	wait := func() (*os.ProcessState, error) {
		err := cmd.Wait()
		return cmd.ProcessState, err
	}
	joined := false
	if joinFD >= 0 {
		mark("host: fork+join+exec child")
		// The child learns the plan the keeper's maps follow from the
		// environment; it has the user's own ids (the env's) of plan.
		files := append([]*os.File{o.Stdin, o.Stdout, o.Stderr}, cmd.ExtraFiles...)
		proc, err = startJoined(path, cmd.Args, childEnv(o.Env, string(joinPlan), plan), files, joinFD)
		// A failure (a seccomp filter refusing setns, as Docker's default
		// profile does) leaves the way without a keeper, which names what
		// stops it.
		if joined = err == nil; joined {
			wait = proc.Wait
		}
	}
	if !joined {
		if err := prepareOwn(cmd, o.Env, plan, newNS && !plan.Direct); err != nil {
			r.Close()
			statusW.Close()
			return -1, err
		}
		mark("host: clone+exec child")
		if err = cmd.Start(); err == nil {
			proc = cmd.Process
		}
	}
	mark("host: child started")
	r.Close()
	statusW.Close()
	if err != nil {
		return -1, &Error{Op: "clone(CLONE_NEWUSER|CLONE_NEWNS) and exec " + path, Err: err, Fix: cloneRefusalFix(err)}
	}

	var changed bool
	var mapErr error
	mapsDone := make(chan struct{})
	go func() {
		defer close(mapsDone)
		if newNS && !plan.Direct && !joined {
			changed, mapErr = writeMaps(proc.Pid, &plan)
		}
	}()
	var payload []byte
	var payErr error
	if o.Payload != nil {
		payload, payErr = o.Payload()
		if payErr == nil && len(payload) > maxPayload {
			payErr = fmt.Errorf("userns: payload of %d bytes, more than %d", len(payload), maxPayload)
		}
	}
	<-mapsDone
	if payErr != nil {
		w.Write([]byte{msgFail})
		w.Close()
		wait()
		return -1, payErr
	}
	if mapErr != nil {
		// Tell the child to leave quietly: the error is reported once, here.
		msg := append([]byte{msgFail}, mapErr.Error()...)
		w.Write(msg)
		w.Close()
		wait()
		return 125, mapErr
	}
	if !joined {
		mark("host: maps written")
	}
	var release []byte
	if o.Payload != nil {
		release = appendSized(release, msgPayload, payload)
	}
	if changed {
		b, err := json.Marshal(plan)
		if err != nil {
			proc.Kill()
			wait()
			return -1, fmt.Errorf("userns: encoding the plan: %w", err)
		}
		release = appendSized(release, msgGoPlan, b)
	} else {
		release = append(release, msgGo)
	}
	if _, err := w.Write(release); err != nil {
		proc.Kill()
		wait()
		return -1, &Error{Op: "releasing the child", Err: err}
	}

	type exit struct {
		st  *os.ProcessState
		err error
	}
	done := make(chan exit, 1)
	go func() {
		st, err := wait()
		done <- exit{st, err}
	}()
	detached := make(chan struct{})
	go func() {
		var b [1]byte
		if n, _ := statusR.Read(b[:]); n == 1 && b[0] == msgDetached {
			close(detached)
		}
	}()
	for {
		select {
		case s, ok := <-sigc:
			if !ok {
				sigc = nil // nobody forwards any more
				continue
			}
			// A write error means the child is exiting; Wait reports that.
			w.Write([]byte{byte(s.(syscall.Signal))})
		case e := <-done:
			mark("host: child exited")
			return exitStatus(e.st, e.err)
		case <-detached:
			// The child lives on without us (rl run -d); it was reparented
			// or will be when we exit.
			proc.Release()
			return 0, nil
		}
	}
}

// canExec says whether o allows an exec in place (Options.Exec).
func canExec(o Options) bool {
	for fd, f := range []*os.File{o.Stdin, o.Stdout, o.Stderr} {
		if f == nil || f.Fd() != uintptr(fd) {
			return false
		}
	}
	return len(o.ExtraFiles) == 0 && o.PayloadEnv != "" && os.Getenv(envNoExec) == ""
}

// execJoin makes o's payload and execs o.Path in place (execJoined). It
// returns only when the payload failed (its error) or the exec did: then
// with o, whose Payload gives the payload made.
func execJoin(o Options, rec keeperRec, plan Plan, nsFD int) (Options, error) {
	var payload []byte
	if o.Payload != nil {
		var err error
		if payload, err = o.Payload(); err != nil {
			return o, err
		}
		o.Payload = func() ([]byte, error) { return payload, nil }
	}
	env := execEnv(o.Env, string(rec.Plan), plan, o.PayloadEnv, payload)
	if o.FastDir != nil {
		if dir := o.FastDir(); dir != "" {
			_ = writeFast(dir, o.Args[1:], env, o.Path, rec)
		}
	}
	if o.Mark != nil {
		o.Mark("host: exec child")
	}
	_ = execJoined(o.Path, o.Args, env, nsFD)
	return o, nil
}

// prepareOwn readies cmd as a child in a namespace of its own (or the
// caller's, Spawn): the plan in its environment and, when its maps are
// written after its exec (mapsAfter), every capability as ambient: the
// kernel computes the capabilities of an exec by a non-root uid from the
// ambient set only, so without them the child would start with none
// (capabilities(7), "Transformation of capabilities during execve").
func prepareOwn(cmd *exec.Cmd, env []string, plan Plan, mapsAfter bool) error {
	planJSON, err := json.Marshal(plan)
	if err != nil {
		return fmt.Errorf("userns: encoding the plan: %w", err)
	}
	cmd.Env = childEnv(env, string(planJSON), plan)
	if mapsAfter {
		cmd.SysProcAttr.AmbientCaps, err = AllCaps()
	}
	return err
}

func cloneFlags(newNS bool) uintptr {
	if newNS {
		return syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS
	}
	return 0
}

// childEnv is env without our variables, then ours.
func childEnv(env []string, planJSON string, plan Plan) []string {
	ours := []string{
		envFD + "=" + strconv.Itoa(childFD),
		envStatusFD + "=" + strconv.Itoa(childStatusFD),
		envPlan + "=" + planJSON,
		envConfigured + "=1",
		envRootlessUID + "=" + strconv.FormatUint(uint64(plan.UIDs[0].HostID), 10),
		envRootlessGID + "=" + strconv.FormatUint(uint64(plan.GIDs[0].HostID), 10),
	}
	out := make([]string, 0, len(env)+len(ours))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !ourVariable(name) {
			out = append(out, kv)
		}
	}
	return append(out, ours...)
}

// ourVariable says whether name is one of the variables Run sets for its
// child (or _RL_NO_EXEC_JOIN, for the rl the child runs again): the
// caller's own value never passes on.
func ourVariable(name string) bool {
	switch name {
	case envFD, envStatusFD, envPlan, envConfigured, envRootlessUID, envRootlessGID, envNoExec:
		return true
	}
	return false
}

// AllCaps lists capabilities 0..cap_last_cap of the running kernel: raising an
// ambient capability the kernel does not know fails with EINVAL, so the
// compile-time constant is only a fallback.
func AllCaps() ([]uintptr, error) {
	last := uintptr(unix.CAP_LAST_CAP)
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("userns: /proc/sys/kernel/cap_last_cap: %q is not a number", b)
		}
		last = uintptr(n)
	}
	caps := make([]uintptr, 0, last+1)
	for c := uintptr(0); c <= last; c++ {
		caps = append(caps, c)
	}
	return caps, nil
}

// writeMaps maps the child pid as plan says. Called from the parent, in the
// host's namespaces. In full mode a failing helper is not fatal: the rest is
// mapped with the single ID and plan is rewritten (Mode, maps, Reason, Fix) to
// say so; changed reports that. An error means no usable map could be written.
func writeMaps(pid int, plan *Plan) (changed bool, err error) {
	if plan.Mode != ModeFull {
		return false, writeSingle(pid, plan.UIDs[0], plan.GIDs[0], true, true)
	}
	// Either helper may fail alone and the single map still be written for that
	// side: a failed newgidmap leaves gid_map unwritten, and the kernel accepts
	// "deny" in setgroups until gid_map is written (user_namespaces(7)).
	// The two helpers write different files: run them side by side (each is
	// a setuid exec, ~1.5 ms).
	gidDone := make(chan error, 1)
	go func() { gidDone <- runHelper(plan.NewGIDMap, pid, plan.GIDs) }()
	uidErr := runHelper(plan.NewUIDMap, pid, plan.UIDs)
	gidErr := <-gidDone
	if gidErr == nil && uidErr == nil {
		return false, nil
	}
	if err := writeSingle(pid, plan.UIDs[0], plan.GIDs[0], uidErr != nil, gidErr != nil); err != nil {
		return false, err
	}
	var reasons []string
	for _, e := range []error{gidErr, uidErr} {
		if e != nil {
			reasons = append(reasons, e.Error())
		}
	}
	if uidErr != nil {
		plan.UIDs = plan.UIDs[:1]
	}
	if gidErr != nil {
		plan.GIDs = plan.GIDs[:1]
	}
	plan.Fix = fmt.Sprintf("check that %s and %s are setuid root and that %s grant these ranges to the user",
		plan.NewUIDMap, plan.NewGIDMap, plan.Source)
	plan.Mode = ModeSingle
	plan.Source = "single-ID fallback"
	plan.Reason = strings.Join(reasons, "; ")
	plan.NewUIDMap, plan.NewGIDMap = "", ""
	return true, nil
}

// runHelper runs newuidmap or newgidmap; its error carries the helper's
// stderr as one line.
func runHelper(path string, pid int, maps []Mapping) error {
	var stderr bytes.Buffer
	cmd := exec.Command(path, HelperArgs(pid, maps)...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(stderr.String()), "\n", "; ")), " ")
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s failed: %s", path, msg)
	}
	return nil
}

// writeSingle writes the one-line maps that the kernel lets an unprivileged
// process write for its own child: its own uid, and its own gid once setgroups
// is denied (user_namespaces(7), since Linux 3.19).
func writeSingle(pid int, uid, gid Mapping, doUID, doGID bool) error {
	proc := "/proc/" + strconv.Itoa(pid) + "/"
	write := func(name, text string) error {
		if err := os.WriteFile(proc+name, []byte(text), 0); err != nil {
			// Kernels before 3.19 have no setgroups file and no such rule.
			if name == "setgroups" && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return &Error{Op: "write " + proc + name, Err: err}
		}
		return nil
	}
	if doGID {
		if err := write("setgroups", "deny"); err != nil {
			return err
		}
	}
	if doUID {
		if err := write("uid_map", mapText([]Mapping{{0, uid.HostID, 1}})); err != nil {
			return err
		}
	}
	if doGID {
		if err := write("gid_map", mapText([]Mapping{{0, gid.HostID, 1}})); err != nil {
			return err
		}
	}
	return nil
}

// exitStatus turns the result of Wait into an exit code, 128+N for signal N.
func exitStatus(st *os.ProcessState, err error) (int, error) {
	if st == nil {
		return -1, fmt.Errorf("userns: waiting for the child: %w", err)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return st.ExitCode(), nil
}

func sysMaps(maps []Mapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(maps))
	for i, m := range maps {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}

// setgroupsDenied reports whether this process's user namespace denies
// setgroups(2).
func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(b)) == "deny"
}
