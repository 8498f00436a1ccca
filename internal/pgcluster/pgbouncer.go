package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// BouncerPort names the bouncer's Unix socket (.s.PGSQL.6432), as the port
// of a connection string does.
const BouncerPort = 6432

// Bouncer is a pgbouncer in transaction pooling mode in front of one
// cluster, listening on a Unix socket in its own folder.
type Bouncer struct {
	dir  string
	proc *process
}

// BouncerBin finds pgbouncer: $TAXIWAY_PGBOUNCER_BIN, then $PATH, then
// Debian's /usr/sbin.
func BouncerBin() (string, error) {
	if p := os.Getenv("TAXIWAY_PGBOUNCER_BIN"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
		return "/usr/sbin/pgbouncer", nil
	}
	return "", errors.New("pgbouncer not found: install it (Debian: apt-get install -y pgbouncer) or set TAXIWAY_PGBOUNCER_BIN")
}

// StartBouncer runs pgbouncer in dir (created) in front of target, with
// transaction pooling and at most poolSize server connections per database.
// Clients must not rely on session state between transactions: with pgx,
// set default_query_exec_mode=exec (BouncerDSN does).
func StartBouncer(ctx context.Context, dir string, target *Cluster, poolSize int) (*Bouncer, error) {
	bin, err := BouncerBin()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolving the pgbouncer folder: %w", err)
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the pgbouncer folder: %w", err)
	}
	// The server's trust authentication still wants the user listed.
	files := map[string]string{
		"userlist.txt": fmt.Sprintf("%q \"\"\n", Superuser),
		"pgbouncer.ini": fmt.Sprintf(`[databases]
* = host=%s port=5432
[pgbouncer]
listen_addr =
listen_port = %d
unix_socket_dir = %s
unix_socket_mode = 0700
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 1000
; a server that went away is retried quickly, and a client waiting for
; one gives up within seconds (the services answer 503 and clients retry)
server_login_retry = 1
query_wait_timeout = 10
server_connect_timeout = 5
; pgx sends no session settings that transaction pooling would lose
ignore_startup_parameters = extra_float_digits
admin_users = %s
logfile = %s
`, target.dataDir, BouncerPort, dir, filepath.Join(dir, "userlist.txt"), poolSize, Superuser, filepath.Join(dir, "pgbouncer.log")),
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		if cred != nil {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("handing %s to the postgres user: %w", p, err)
			}
		}
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("handing the pgbouncer folder to the postgres user: %w", err)
		}
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	proc, err := startProcess("pgbouncer", cmd, nil)
	if err != nil {
		return nil, err
	}
	b := &Bouncer{dir: dir, proc: proc}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := proc.waitConnect(wctx, b.DSN("postgres")); err != nil {
		_ = b.Stop()
		log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
		return nil, fmt.Errorf("waiting for pgbouncer in %s: %w\n%s", dir, err, log)
	}
	return b, nil
}

// SocketDir is the folder holding the bouncer's socket.
func (b *Bouncer) SocketDir() string { return b.dir }

// DSN is a connection string for database db through the bouncer.
func (b *Bouncer) DSN(db string) string {
	return BouncerDSN(MultiHostDSN(db, "any", b.dir))
}

// URL is the same as DSN, in URL form.
func (b *Bouncer) URL(db string) string {
	q := url.Values{"host": {b.dir}, "port": {strconv.Itoa(BouncerPort)}, "user": {Superuser}, "default_query_exec_mode": {"exec"}}
	return "postgres:///" + url.PathEscape(db) + "?" + q.Encode()
}

// BouncerDSN adds to dsn (keyword/value form, hosts being bouncers) the
// bouncer's port and the pgx setting that transaction pooling needs:
// statements are sent unnamed, in one round trip, with nothing cached per
// server connection (pgx's default prepares and caches named statements,
// which another client's transaction may later find missing, or present).
func BouncerDSN(dsn string) string {
	return dsn + " port=" + strconv.Itoa(BouncerPort) + " default_query_exec_mode=exec"
}

// Stop stops the bouncer (SIGINT: at once, closing client connections).
func (b *Bouncer) Stop() error { return b.proc.stop(syscall.SIGINT, 10*time.Second) }

// Exited is closed when the bouncer's process has exited.
func (b *Bouncer) Exited() <-chan struct{} { return b.proc.exited }

// Pid is the bouncer's process id.
func (b *Bouncer) Pid() int { return b.proc.cmd.Process.Pid }
