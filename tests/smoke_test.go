package tests

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestRegistryServesBusybox checks the harness itself: the test registry
// serves the image it was given, under the digest built offline.
func TestRegistryServesBusybox(t *testing.T) {
	req, err := http.NewRequest("GET", "http://"+registryAddr+"/v2/library/busybox/manifests/latest", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET manifest: %s", resp.Status)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != busyboxManifest {
		t.Fatalf("registry serves %s, built %s", got, busyboxManifest)
	}
}

// TestTmuxHarness checks the terminal helper with busybox's own shell, so a
// failing interactive rl test is about rl.
func TestTmuxHarness(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		m := tmuxRun(t, u, "/bin/busybox", "sh")
		m.Prompt(`.*[$#]`)
		m.Type("echo $((6*7)); id -u")
		m.WaitFor(fmt.Sprintf(`(?m)^42\n%d$`, u.UID), 0)
		m.Type("exit 3")
		if status := m.WaitExit(0); status != 3 {
			t.Fatalf("exit status %d, want 3", status)
		}
	})
}

func TestPullThenImages(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		rlOK(t, u, "pull", "-q", "busybox")
		r := rlOK(t, u, "images")
		if !strings.Contains(r.Stdout, "docker.io/library/busybox") {
			t.Fatalf("rl images does not list docker.io/library/busybox:\n%v", r)
		}
	})
}

func TestRunEcho(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "busybox", "echo", "hello")
		if r.Stdout != "hello\n" {
			t.Fatalf("want stdout \"hello\\n\":\n%v", r)
		}
	})
}

// TestRunPIDUserHostname is the literal check: the workload is PID 1,
// root inside, and the hostname is the container's short id.
func TestRunPIDUserHostname(t *testing.T) {
	forEachUser(t, func(t *testing.T, u User) {
		r := rlOK(t, u, "run", "--rm", "busybox", "sh", "-c", "echo $$; id -u; hostname")
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != 3 || lines[0] != "1" || lines[1] != "0" || !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(lines[2]) {
			t.Fatalf("want 1, 0 and a 12-hex-digit hostname:\n%v", r)
		}
	})
}
