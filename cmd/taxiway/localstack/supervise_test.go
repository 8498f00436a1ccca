package localstack

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a supervisor's progress lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// superviseShell supervises `sh -c script()` (a real process; the script
// is read at each start) with a fast restart policy.
func superviseShell(t *testing.T, progress *lockedBuffer, failed chan error, script func() string) *supervisor {
	t.Helper()
	fast := restartPolicy{First: 20 * time.Millisecond, Max: 100 * time.Millisecond, Limit: 3, Window: time.Minute}
	logPath := filepath.Join(t.TempDir(), "svc.log")
	s, err := superviseWith(context.Background(), fast, "svc", logPath, progress, failed, func(ctx context.Context) (child, error) {
		cmd := exec.Command("sh", "-c", script())
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return launch(ctx, progress, "svc", cmd, func(context.Context) error { return nil }, logPath)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.stop() })
	return s
}

// TestSupervisorRestarts: a process killed from outside (kill -9 by pid)
// is started again and logged; a crash loop ends in a clear message on
// failed after the policy's bounded number of restarts.
func TestSupervisorRestarts(t *testing.T) {
	progress := &lockedBuffer{}
	failed := make(chan error, 1)
	var crash atomic.Bool
	s := superviseShell(t, progress, failed, func() string {
		if crash.Load() {
			return "exit 3"
		}
		return "exec sleep 60"
	})
	pid, ok := s.running()
	if !ok {
		t.Fatal("not running after start")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	again, err := s.waitRestarted(ctx, pid)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress)
	}
	log := progress.String()
	for _, want := range []string{"svc: pid " + strconv.Itoa(pid) + " exited unexpectedly", "svc: restarting in 20ms (restart 1 of at most 3", "svc: restarted as pid " + strconv.Itoa(again)} {
		if !strings.Contains(log, want) {
			t.Errorf("progress lacks %q:\n%s", want, log)
		}
	}

	// From now on every start exits at once: a crash loop.
	crash.Store(true)
	if err := syscall.Kill(again, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "svc exited 4 times within 1m0s: gave up restarting it; see ") {
			t.Errorf("crash loop: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("no give-up after a crash loop:\n%s", progress)
	}
	if _, ok := s.running(); ok {
		t.Error("running after the supervisor gave up")
	}
}

// TestSupervisorStopDoesNotRestart: a stop asked for is not a crash.
func TestSupervisorStopDoesNotRestart(t *testing.T) {
	progress := &lockedBuffer{}
	s := superviseShell(t, progress, make(chan error, 1), func() string { return "exec sleep 60" })
	pid, _ := s.running()
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if now, ok := s.running(); ok || now != pid || strings.Contains(progress.String(), "unexpectedly") {
		t.Errorf("after stop: pid %d (was %d) running %v\n%s", now, pid, ok, progress)
	}
}
