package container

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/rlcontainers/rl/container/initproc"
	"golang.org/x/sys/unix"
)

// TestReadInitReportAfterReset: an init that failed and left with the spec
// unread in its socket (the kernel then reports ECONNRESET once, before
// what is queued) still gets its report read; one that left without a
// report is a failure, not a started workload.
func TestReadInitReportAfterReset(t *testing.T) {
	pair := func() (int, int) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fds[0], fds[1]
	}
	none := func(string, *os.File) { t.Error("no file was sent") }

	ours, theirs := pair()
	report, _ := json.Marshal(initproc.InitError{Message: "/dev/net/tun: permission denied", Code: 125})
	unix.Write(theirs, report)
	unix.Write(ours, []byte(`{"spec":1}`)) // never read
	unix.Close(theirs)
	ie, err := readInit(ours, none)
	unix.Close(ours)
	if err != nil || ie == nil || ie.Code != 125 || ie.Message != "/dev/net/tun: permission denied" {
		t.Fatalf("report behind a reset: got %+v, %v", ie, err)
	}

	ours, theirs = pair()
	unix.Write(ours, []byte(`{"spec":1}`))
	unix.Close(theirs)
	ie, err = readInit(ours, none)
	unix.Close(ours)
	if err == nil || ie != nil {
		t.Fatalf("an init gone without a report: got %+v, %v; want an error", ie, err)
	}

	ours, theirs = pair()
	unix.Close(theirs) // the exec, with the spec read
	if ie, err = readInit(ours, none); err != nil || ie != nil {
		t.Fatalf("a clean EOF: got %+v, %v; want the workload running", ie, err)
	}
	unix.Close(ours)
}
