package localstack

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"
)

// restartPolicy says how a supervisor restarts a part that exits on its
// own: after a delay that doubles from First up to Max; a part that has
// exited more than Limit times within Window is in a crash loop, and the
// supervisor gives up on it (which stops the whole stack: `taxiway local`
// exits with the reason).
type restartPolicy struct {
	First, Max time.Duration
	Limit      int
	Window     time.Duration
}

// defaultRestarts is `taxiway local`'s policy: back within a second after
// a crash; five restarts in two minutes (backoff 0.5, 1, 2, 4, 8 s) before
// it gives up.
func defaultRestarts() restartPolicy {
	return restartPolicy{First: 500 * time.Millisecond, Max: 10 * time.Second, Limit: 5, Window: 2 * time.Minute}
}

// child is one run of a supervised part: a service's process or a
// Postgres server.
type child interface {
	Exited() <-chan struct{}
	Pid() int
	Stop() error
}

// supervisor keeps one part running: it restarts the part whenever its
// process exits without having been asked to, with backoff, and reports on
// failed once it gives up.
type supervisor struct {
	name     string
	logPath  string
	progress io.Writer
	// start launches the part and returns once it is ready; a child it
	// returns with an error is stopped again.
	start  func(context.Context) (child, error)
	failed chan<- error
	policy restartPolicy

	mu       sync.Mutex
	cur      child
	quit     chan struct{} // closed by halt
	loopDone chan struct{}
}

// supervise starts the part and keeps it running. A failure of this first
// start is returned, not retried: it is a configuration error more often
// than not.
func supervise(ctx context.Context, name, logPath string, progress io.Writer, failed chan<- error,
	start func(context.Context) (child, error)) (*supervisor, error) {
	return superviseWith(ctx, defaultRestarts(), name, logPath, progress, failed, start)
}

// superviseWith is supervise with another restart policy.
func superviseWith(ctx context.Context, policy restartPolicy, name, logPath string, progress io.Writer, failed chan<- error,
	start func(context.Context) (child, error)) (*supervisor, error) {
	c, err := start(ctx)
	if err != nil {
		if c != nil {
			_ = c.Stop()
		}
		return nil, err
	}
	s := &supervisor{name: name, logPath: logPath, progress: progress, start: start, failed: failed,
		policy: policy, cur: c, quit: make(chan struct{}), loopDone: make(chan struct{})}
	go s.loop()
	return s, nil
}

// superviseCommand runs a service under a supervisor; build makes the
// command for each run, and the ready check that launch waits for.
func superviseCommand(ctx context.Context, name, logPath string, progress io.Writer, failed chan<- error,
	build func() (*exec.Cmd, func(context.Context) error, error)) (*supervisor, error) {
	return supervise(ctx, name, logPath, progress, failed, func(ctx context.Context) (child, error) {
		cmd, ready, err := build()
		if err != nil {
			return nil, err
		}
		return launch(ctx, progress, name, cmd, ready, logPath)
	})
}

func (s *supervisor) loop() {
	defer close(s.loopDone)
	// restartCtx ends when the supervisor is halted, so that a restart in
	// progress does not hold up a stop.
	restartCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.quit
		cancel()
	}()
	var exits []time.Time
	for {
		cur := s.current()
		select {
		case <-s.quit:
			return
		case <-cur.Exited():
		}
		fmt.Fprintf(s.progress, "%s: pid %d exited unexpectedly (log: %s)\n", s.name, cur.Pid(), s.logPath)
		for {
			now := time.Now()
			exits = append(exits, now)
			p := s.policy
			for len(exits) > 0 && now.Sub(exits[0]) > p.Window {
				exits = exits[1:]
			}
			if len(exits) > p.Limit {
				err := fmt.Errorf("%s exited %d times within %v: gave up restarting it; see %s", s.name, len(exits), p.Window, s.logPath)
				fmt.Fprintln(s.progress, err)
				select {
				case s.failed <- err:
				default: // the stack is stopping for an earlier one
				}
				return
			}
			delay := min(p.First<<(len(exits)-1), p.Max)
			fmt.Fprintf(s.progress, "%s: restarting in %v (restart %d of at most %d within %v)\n", s.name, delay, len(exits), p.Limit, p.Window)
			select {
			case <-s.quit:
				return
			case <-time.After(delay):
			}
			c, err := s.start(restartCtx)
			if err == nil {
				s.mu.Lock()
				s.cur = c
				s.mu.Unlock()
				fmt.Fprintf(s.progress, "%s: restarted as pid %d\n", s.name, c.Pid())
				break
			}
			if c != nil {
				_ = c.Stop()
			}
			select {
			case <-s.quit:
				return
			default:
			}
			fmt.Fprintf(s.progress, "%s: restart failed: %v\n", s.name, err)
		}
	}
}

func (s *supervisor) current() child {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// running reports the pid of the part's current process and whether it
// runs (it is always ready then: a restart becomes current only once ready).
func (s *supervisor) running() (pid int, ok bool) {
	c := s.current()
	select {
	case <-c.Exited():
		return c.Pid(), false
	default:
		return c.Pid(), true
	}
}

// halt ends the supervision and returns the current child, for the caller
// to stop (gracefully or otherwise) without a restart following.
func (s *supervisor) halt() child {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.loopDone
	return s.current()
}

// stop ends the supervision and stops the part gracefully. A nil
// supervisor is already stopped.
func (s *supervisor) stop() error {
	if s == nil {
		return nil
	}
	return s.halt().Stop()
}

// waitRestarted waits until the part runs a ready process other than pid
// old, and returns its pid.
func (s *supervisor) waitRestarted(ctx context.Context, old int) (int, error) {
	for {
		if pid, ok := s.running(); ok && pid != old {
			return pid, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s not back: %w", s.name, ctx.Err())
		case <-s.loopDone:
			return 0, fmt.Errorf("%s is no longer supervised", s.name)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
