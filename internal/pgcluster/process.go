package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// process is a server this package started (postgres or pgbouncer): it
// remembers how the process ended, for every later reader.
type process struct {
	name   string
	cmd    *exec.Cmd
	done   chan error    // the exit, put back by every reader
	exited chan struct{} // closed at the exit, for supervisors
}

// startProcess starts cmd; afterExit (may be nil) runs once it has exited.
func startProcess(name string, cmd *exec.Cmd, afterExit func()) (*process, error) {
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan error, 1), exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		if afterExit != nil {
			afterExit()
		}
		p.done <- err
		close(p.exited)
	}()
	return p, nil
}

// waitConnect polls dsn every 100 ms until a connection answers a ping,
// the process exits, or ctx ends.
func (p *process) waitConnect(ctx context.Context, dsn string) error {
	for {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
			if err == nil {
				return nil
			}
		}
		select {
		case exit := <-p.done:
			p.done <- exit
			return fmt.Errorf("%s exited: %v", p.name, exit)
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends sig and waits up to grace for the exit, killing the process
// after that. An exit status is no error: the signal asked for the exit.
func (p *process) stop(sig syscall.Signal, grace time.Duration) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling %s: %w", p.name, err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return err
		}
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("%s did not stop within %s; killed", p.name, grace)
	}
}
