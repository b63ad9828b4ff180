package userns

import (
	"bufio"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envTestMode selects what the re-executed test binary does in the child.
const envTestMode = "_RL_USERNS_TEST_MODE"

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == KeeperArg {
		os.Exit(Keep(os.Args[2]))
	}
	if Inside() {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// childMain runs in the child, inside the new user namespace: the re-executed
// test binary. It reports what it sees on stdout.
func childMain() int {
	c, err := Join()
	if errors.Is(err, ErrParentFailed) {
		return 125 // the parent reports the error
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	uidMap, _ := os.ReadFile("/proc/self/uid_map")
	gidMap, _ := os.ReadFile("/proc/self/gid_map")
	fmt.Printf("mode=%s\neuid=%d\nenv=%q\nuid_map:\n%sgid_map:\n%s", c.Plan.Mode, os.Geteuid(), os.Getenv(envFD)+os.Getenv(envPlan), uidMap, gidMap)
	if c.Payload != nil {
		fmt.Printf("payload=%q\n", c.Payload)
	}
	if os.Getenv(envTestMode) == "ns" {
		ns, _ := os.Readlink("/proc/self/ns/user")
		mnt, _ := os.Readlink("/proc/self/ns/mnt")
		fmt.Printf("userns=%s\nmntns=%s\n", ns, mnt)
	}
	if os.Getenv(envTestMode) != "signal" {
		return 0
	}
	fmt.Printf("pid=%d\nready\n", os.Getpid())
	select {
	case s, ok := <-c.Signals:
		fmt.Printf("signal=%d ok=%v\n", s, ok)
		return 7
	case <-time.After(10 * time.Second):
		fmt.Println("no signal")
		return 1
	}
}

// runChild calls Run with plan and returns the exit code and the child's
// stdout and stderr; it skips the test when the kernel refuses the namespace.
func runChild(t *testing.T, plan Plan, mode string, whileRunning func(stdout *bufio.Reader), payload ...func() ([]byte, error)) (int, string, string, error) {
	return runChildIn(t, Options{Plan: plan}, mode, whileRunning, payload...)
}

// runChildIn is runChild with more of the options (o's Plan, KeeperDir,
// Keeper).
func runChildIn(t *testing.T, base Options, mode string, whileRunning func(stdout *bufio.Reader), payload ...func() ([]byte, error)) (int, string, string, error) {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		o := base
		o.Args = []string{os.Args[0]}
		o.Env = append(os.Environ(), envTestMode+"="+mode)
		o.Stdout, o.Stderr = outW, errW
		if len(payload) > 0 {
			o.Payload = payload[0]
		}
		code, err := Run(o)
		outW.Close()
		errW.Close()
		done <- result{code, err}
	}()
	stderr := make(chan string, 1)
	go func() { b, _ := io.ReadAll(errR); stderr <- string(b) }()
	out := bufio.NewReader(outR)
	if whileRunning != nil {
		whileRunning(out)
	}
	rest, _ := io.ReadAll(out)
	res := <-done
	var e *Error
	if errors.As(res.err, &e) && strings.HasPrefix(e.Op, "clone") &&
		(errors.Is(e, syscall.EPERM) || errors.Is(e, syscall.EACCES) || errors.Is(e, syscall.ENOSPC)) {
		t.Skipf("the kernel refuses clone(CLONE_NEWUSER) to this user here: %v", res.err)
	}
	return res.code, string(rest), <-stderr, res.err
}

func singlePlan(t *testing.T) Plan {
	id := CurrentIdentity()
	id.SubUIDFile = t.TempDir() + "/none"
	id.SubGIDFile = id.SubUIDFile
	return MakePlan(id)
}

func TestRunSingle(t *testing.T) {
	plan := singlePlan(t)
	code, out, stderr, err := runChild(t, plan, "", nil)
	if err != nil || code != 0 {
		t.Fatalf("Run: code %d, err %v, stderr %q", code, err, stderr)
	}
	t.Logf("child output:\n%s", out)
	want := fmt.Sprintf("mode=single\neuid=0\nenv=\"\"\nuid_map:\n%10d %10d %10d\ngid_map:\n%10d %10d %10d\n",
		0, os.Getuid(), 1, 0, os.Getgid(), 1)
	if out != want {
		t.Fatalf("child output\n%s\nwant\n%s", out, want)
	}
}

// TestRunCurrentPlan runs with the plan the machine gives the current user:
// full when it has subordinate ranges and the helpers (run it as such a user
// to cover newuidmap), single otherwise.
func TestRunCurrentPlan(t *testing.T) {
	plan := MakePlan(CurrentIdentity())
	code, out, stderr, err := runChild(t, plan, "", nil)
	if err != nil || code != 0 {
		t.Fatalf("Run: code %d, err %v, stderr %q", code, err, stderr)
	}
	t.Logf("plan %s (%s), child output:\n%s", plan.Mode, plan.Reason, out)
	if !strings.Contains(out, "mode="+plan.Mode+"\neuid=0\n") {
		t.Fatalf("child output\n%s\nwant mode %s and euid 0", out, plan.Mode)
	}
	if plan.Mode == ModeFull {
		for _, m := range plan.UIDs {
			if line := fmt.Sprintf("%10d %10d %10d\n", m.ContainerID, m.HostID, m.Size); !strings.Contains(out, line) {
				t.Errorf("uid_map lacks %q", line)
			}
		}
	}
}

func TestRunFullFallsBack(t *testing.T) {
	plan := singlePlan(t)
	plan.Mode = ModeFull
	plan.NewUIDMap, plan.NewGIDMap = "/bin/false", "/bin/false"
	code, out, stderr, err := runChild(t, plan, "", nil)
	if err != nil || code != 0 {
		t.Fatalf("Run: code %d, err %v, stderr %q", code, err, stderr)
	}
	if !strings.HasPrefix(out, "mode=single\neuid=0\n") {
		t.Fatalf("child output\n%s\nwant the single mode the parent fell back to", out)
	}
}

// TestRunPayload: the parent's payload reaches the child before the
// release, with the plan as written and with the plan of a fallback.
func TestRunPayload(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		plan := singlePlan(t)
		if fallback {
			plan.Mode = ModeFull
			plan.NewUIDMap, plan.NewGIDMap = "/bin/false", "/bin/false"
		}
		big := strings.Repeat("x", 200<<10) // more than a pipe holds
		code, out, stderr, err := runChild(t, plan, "", nil, func() ([]byte, error) { return []byte("parsed:" + big), nil })
		if err != nil || code != 0 {
			t.Fatalf("fallback %v: Run: code %d, err %v, stderr %q", fallback, code, err, stderr)
		}
		if !strings.HasPrefix(out, "mode=single\neuid=0\n") || !strings.Contains(out, fmt.Sprintf("payload=%q\n", "parsed:"+big)) {
			t.Fatalf("fallback %v: child output\n%.300s\nwant mode single and the payload", fallback, out)
		}
	}
}

// TestRunPayloadFailure: a payload that fails sends the child away
// quietly, and Run returns its error as is.
func TestRunPayloadFailure(t *testing.T) {
	bad := errors.New("bad command line")
	code, out, stderr, err := runChild(t, singlePlan(t), "", nil, func() ([]byte, error) { return nil, bad })
	if err != bad || code != -1 {
		t.Fatalf("Run: code %d, err %v; want -1 and the payload's error", code, err)
	}
	if out != "" || stderr != "" {
		t.Fatalf("child: stdout %q, stderr %q; want silence", out, stderr)
	}
}

func TestRunMapFailure(t *testing.T) {
	plan := singlePlan(t)
	// The kernel refuses to map onto ID 4294967295, the invalid ID, for anyone.
	plan.UIDs[0].HostID = 1<<32 - 1
	code, out, stderr, err := runChild(t, plan, "", nil)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Op, "uid_map") {
		t.Fatalf("Run: err %v, want an *Error writing uid_map", err)
	}
	if code != 125 || out != "" || stderr != "" {
		t.Fatalf("child: code %d, stdout %q, stderr %q; want 125 and silence", code, out, stderr)
	}
}

func TestRunForwardsSignals(t *testing.T) {
	plan := singlePlan(t)
	code, out, stderr, err := runChild(t, plan, "signal", func(stdout *bufio.Reader) {
		pid := 0
		for {
			line, err := stdout.ReadString('\n')
			if err != nil {
				t.Errorf("child ended before it was ready: %v", err)
				return
			}
			fmt.Sscanf(line, "pid=%d", &pid)
			if line == "ready\n" {
				break
			}
		}
		// What a terminal's Ctrl-C does to the child directly: Join absorbs it.
		syscall.Kill(pid, syscall.SIGINT)
		time.Sleep(50 * time.Millisecond)
		// To ourselves: Run catches it and relays it as one byte.
		syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	})
	if err != nil || code != 7 {
		t.Fatalf("Run: code %d, err %v, stderr %q, out %q", code, err, stderr, out)
	}
	if want := fmt.Sprintf("signal=%d ok=true\n", syscall.SIGUSR1); out != want {
		t.Fatalf("child said %q, want %q", out, want)
	}
}

// TestImports enforces the design's rule: userns uses the standard library
// and golang.org/x/sys/unix only.
func TestImports(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if strings.Contains(first, ".") && path != "golang.org/x/sys/unix" {
				t.Errorf("%s imports %s: userns may import only the standard library and golang.org/x/sys/unix", name, path)
			}
		}
	}
}
