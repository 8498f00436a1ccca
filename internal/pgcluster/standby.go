package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartStandby makes a hot standby of primary by streaming replication and
// starts it. When opts.DataDir holds no cluster yet, it is filled with
// `pg_basebackup -R` (which writes standby.signal and primary_conninfo);
// otherwise the standby restarts on the data it has. Name becomes the
// standby's cluster_name, which is the application_name the primary sees,
// so that `synchronous_standby_names = 'NAME'` on the primary makes it
// synchronous.
func StartStandby(ctx context.Context, primary *Cluster, name string, opts Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("resolving the standby's data folder: %w", err)
	}
	opts.DataDir = dataDir
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		cred, err := serverCredential()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("creating the standby's data folder: %w", err)
		}
		if cred != nil {
			if err := os.Chown(dataDir, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("handing the standby's data folder to the postgres user: %w", err)
			}
		}
		args := []string{"-D", dataDir, "-h", primary.dataDir, "-U", Superuser,
			"-X", "stream", "-R", "--checkpoint=fast"}
		if opts.Fast {
			args = append(args, "--no-sync")
		}
		bb := exec.CommandContext(ctx, filepath.Join(bin, "pg_basebackup"), args...)
		bb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := bb.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("pg_basebackup of %s into %s: %w\n%s", primary.dataDir, dataDir, err, out)
		}
		// The primary's socket lives in its data folder, so the copy holds
		// its lock file, which would stop the standby from starting.
		locks, _ := filepath.Glob(filepath.Join(dataDir, ".s.PGSQL.*"))
		for _, l := range locks {
			if err := os.Remove(l); err != nil {
				return nil, fmt.Errorf("removing the primary's socket lock from the copy: %w", err)
			}
		}
	}
	settings := map[string]string{
		"cluster_name": name,
		// Long reads on the standby are not cancelled by the vacuum of rows
		// they still need; the primary keeps those rows a little longer.
		"hot_standby_feedback": "on",
		// After the primary restarts, reconnect within a second rather than
		// five: with synchronous replication, commits wait until it does.
		"wal_retrieve_retry_interval": "1s",
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	opts.Settings = settings
	return Start(ctx, opts)
}

// Promote turns a standby into a primary and waits until it accepts writes.
func (c *Cluster) Promote(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connecting to the standby to promote it: %w", err)
	}
	defer conn.Close(ctx)
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_promote(true, 60)").Scan(&ok); err != nil {
		return fmt.Errorf("promoting the standby: %w", err)
	}
	if !ok {
		return errors.New("promoting the standby: not done within 60s")
	}
	return nil
}

// InRecovery reports whether the server is a standby.
func (c *Cluster) InRecovery(ctx context.Context) (bool, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return false, fmt.Errorf("connecting to postgres: %w", err)
	}
	defer conn.Close(ctx)
	var rec bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
		return false, fmt.Errorf("asking whether postgres is a standby: %w", err)
	}
	return rec, nil
}

// WaitStreaming waits until the primary sees standby name streaming, with
// the given sync_state ("sync", "async", or "" for either).
func (c *Cluster) WaitStreaming(ctx context.Context, name, syncState string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last error
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			var state, sync string
			err = conn.QueryRow(ctx, `SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1`, name).Scan(&state, &sync)
			conn.Close(ctx)
			if err == nil && state == "streaming" && (syncState == "" || sync == syncState) {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("standby %s is %s (%s)", name, state, sync)
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for standby %s to stream: %w (last: %v)", name, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SocketDir is the folder holding the server's Unix socket: what goes in a
// connection string's host.
func (c *Cluster) SocketDir() string { return c.dataDir }

// MultiHostDSN is a keyword/value connection string for database db on the
// servers listening in socketDirs, tried in order, keeping the first whose
// session matches targetSessionAttrs (read-write, prefer-standby, ...). A
// promoted standby is so found without restarting the client.
func MultiHostDSN(db, targetSessionAttrs string, socketDirs ...string) string {
	quote := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	return fmt.Sprintf("host=%s user=%s dbname=%s target_session_attrs=%s",
		quote(strings.Join(socketDirs, ",")), quote(Superuser), quote(db), targetSessionAttrs)
}

// SetSynchronousStandbys sets synchronous_standby_names on a running primary
// (ALTER SYSTEM and a reload): "" makes replication asynchronous again.
// Commits wait for a listed standby's flush once it streams; with none
// streaming they wait, so set it only once the standby is up.
func (c *Cluster) SetSynchronousStandbys(ctx context.Context, names string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connecting to the primary: %w", err)
	}
	defer conn.Close(ctx)
	stmt := "ALTER SYSTEM RESET synchronous_standby_names"
	if names != "" {
		stmt = "ALTER SYSTEM SET synchronous_standby_names = " + quoteLiteral(names)
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("setting synchronous_standby_names: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("reloading the configuration: %w", err)
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// StopImmediate stops the server the way a crash does: no checkpoint, and
// standbys get nothing more than they already had (SIGQUIT, immediate
// shutdown). Committed data survives on disk; the next start recovers it.
func (c *Cluster) StopImmediate() error { return c.proc.stop(syscall.SIGQUIT, 30*time.Second) }
