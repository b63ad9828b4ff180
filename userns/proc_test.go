package userns

import (
	"os/exec"
	"testing"
	"time"
)

// TestProcessStates: a live child is running and alive at its start time;
// once it has exited it is neither, zombie or reaped, and WaitExited
// returns at once for it.
func TestProcessStates(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep(1):", err)
	}
	pid := cmd.Process.Pid
	start, err := StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if !Running(pid) || !ProcessAlive(pid, start) || ProcessAlive(pid, start+1) {
		t.Fatalf("a live child: Running %v, ProcessAlive %v, at another start time %v", Running(pid), ProcessAlive(pid, start), ProcessAlive(pid, start+1))
	}
	cmd.Process.Kill()
	// A zombie until reaped: wait for the kill to take without reaping.
	for deadline := time.Now().Add(5 * time.Second); Running(pid); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the killed child still runs")
		}
	}
	if ProcessAlive(pid, start) {
		t.Error("a zombie is alive")
	}
	t0 := time.Now()
	WaitExited(pid, start, 2*time.Second)
	if d := time.Since(t0); d > time.Second {
		t.Errorf("WaitExited of a single-threaded zombie took %v", d)
	}
	cmd.Wait()
	if Running(pid) || ProcessAlive(pid, start) {
		t.Error("a reaped child is running or alive")
	}
}
