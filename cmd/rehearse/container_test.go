package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pgcontainer "github.com/rehearse-dev/rehearse/pg/container"
)

// Ctrl-C during `rehearse run --provider container` removes the container:
// there is no reaper, so the CLI must clean up on its way out.
func TestInterruptedContainerRunLeavesNoContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rehearse and starts a container")
	}
	if err := pgcontainer.Available(context.Background()); err != nil {
		t.Skipf("no Docker engine: %v", err)
	}
	if os.Getenv("REHEARSE_SKIP_CONTAINER") == "1" {
		t.Skip("REHEARSE_SKIP_CONTAINER=1 asks to skip the container tests")
	}
	if ok, err := pgcontainer.ImagePresent(context.Background(), pgcontainer.ImageName("")); err != nil || !ok {
		t.Fatalf("image %s missing (%v): run make pg-image, or set REHEARSE_SKIP_CONTAINER=1", pgcontainer.ImageName(""), err)
	}
	bin := buildRehearse(t)
	cmd := exec.Command(bin, "run", "--provider", "container", "--report-dir", t.TempDir(), "../../scenarios")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "PostgreSQL (container) ready") {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatal("rehearse run ended before its container was ready")
		}
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no container ready in 90s")
	}
	if n := containersOf(t, pid); n != 1 {
		t.Fatalf("%d containers labelled with pid %d while running, want 1", n, pid)
	}
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		// Exit 2 proves the signal cut the run short (a finished run exits 0).
		if code := cmd.ProcessState.ExitCode(); code != exitError {
			t.Errorf("exit code %d after SIGINT (%v), want 2", code, err)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("rehearse run did not stop within 60s of SIGINT")
	}
	if n := containersOf(t, pid); n != 0 {
		t.Errorf("%d containers of the interrupted run are left", n)
	}
}

func containersOf(t *testing.T, pid int) int {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+pgcontainer.LabelPID+"="+strconv.Itoa(pid)).Output()
	if err != nil {
		t.Fatal(err)
	}
	return len(strings.Fields(string(out)))
}
