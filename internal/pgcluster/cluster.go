// Package pgcluster runs a private Postgres cluster from the machine's
// Postgres binaries: for the local stack (`make run`) and for tests. The
// cluster listens only on a Unix socket inside its own 0700 data folder, so
// no other local user can reach it and no TCP port can clash.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Superuser is the role initdb creates; the local stack and tests connect as it.
const Superuser = "taxiway"

// Options says where the cluster lives and how it is tuned.
type Options struct {
	// DataDir holds the cluster; it is created and initialised when empty,
	// and reused as it is otherwise.
	DataDir string
	// Fast turns off durability (fsync, synchronous commit) for tests.
	Fast bool
	// LogPath receives the server's output; empty means DataDir + ".log".
	LogPath string
	// Settings are extra server settings (name to value, as for
	// `postgres -c name=value`), applied after the defaults and Fast so
	// that they win; benchmarks use them to tune the server.
	Settings map[string]string
}

// Cluster is a running Postgres server owned by this process.
type Cluster struct {
	dataDir string
	proc    *process
}

// BinDir finds the directory holding initdb and postgres: $TAXIWAY_PG_BIN,
// then the newest /usr/lib/postgresql/*/bin, then $PATH.
func BinDir() (string, error) {
	if d := os.Getenv("TAXIWAY_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("postgres server binaries not found: install them (Debian: apt-get install -y postgresql) or set TAXIWAY_PG_BIN")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initialises the cluster if needed and starts it, waiting until it
// accepts connections. When the caller is root, the server runs as the
// unprivileged "postgres" user, since Postgres refuses to run as root.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("resolving data folder: %w", err)
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data folder: %w", err)
	}
	if cred != nil {
		// The parent must be traversable by the server's user.
		if err := os.Chown(dataDir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("handing data folder to the postgres user: %w", err)
		}
		if err := os.Chmod(filepath.Dir(dataDir), 0o755); err != nil {
			return nil, fmt.Errorf("opening the data folder's parent to the postgres user: %w", err)
		}
		if err := checkTraversable(filepath.Dir(dataDir), cred); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		args := []string{"-D", dataDir, "-U", Superuser, "--auth=trust", "-E", "UTF8", "--locale=C"}
		if opts.Fast {
			args = append(args, "--no-sync")
		}
		init := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...)
		init.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := init.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb in %s: %w\n%s", dataDir, err, out)
		}
	}

	logPath := opts.LogPath
	if logPath == "" {
		logPath = dataDir + ".log"
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening postgres log: %w", err)
	}
	args := []string{"-D", dataDir,
		"-c", "listen_addresses=",
		"-c", "unix_socket_directories=" + dataDir,
		"-c", "unix_socket_permissions=0700",
		"-c", "max_connections=200",
	}
	if opts.Fast {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	names := make([]string, 0, len(opts.Settings))
	for name := range opts.Settings {
		names = append(names, name)
	}
	sort.Strings(names) // a stable command line
	for _, name := range names {
		args = append(args, "-c", name+"="+opts.Settings[name])
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig stops the server if this process dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	proc, err := startProcess("postgres", cmd, func() { logFile.Close() })
	if err != nil {
		logFile.Close()
		return nil, err
	}
	c := &Cluster{dataDir: dataDir, proc: proc}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := proc.waitConnect(wctx, c.URL("postgres")); err != nil {
		_ = c.Stop()
		tail, _ := os.ReadFile(logPath)
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return nil, fmt.Errorf("waiting for postgres in %s: %w\n%s", dataDir, err, tail)
	}
	return c, nil
}

// serverCredential is nil when the caller may run Postgres itself, and the
// postgres user's identity when the caller is root.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs an unprivileged 'postgres' user for the server (installing Debian's postgresql package creates it): %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// checkTraversable fails clearly when the server's user cannot reach dir
// (say, a checkout under root's 0700 home), instead of initdb's bare
// "Permission denied".
func checkTraversable(dir string, cred *syscall.Credential) error {
	for d := dir; ; d = filepath.Dir(d) {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			return fmt.Errorf("checking %s: %w", d, err)
		}
		ok := st.Mode&0o001 != 0 ||
			(st.Uid == cred.Uid && st.Mode&0o100 != 0) ||
			(st.Gid == cred.Gid && st.Mode&0o010 != 0)
		if !ok {
			return fmt.Errorf("the postgres user cannot enter %s, so it cannot reach the data folder below it: make it traversable (chmod o+x %s) or put the data folder elsewhere", d, d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// URL is a connection string for database db as the superuser.
func (c *Cluster) URL(db string) string {
	q := url.Values{"host": {c.dataDir}, "user": {Superuser}}
	return "postgres:///" + url.PathEscape(db) + "?" + q.Encode()
}

// EnsureDatabase creates database db unless it exists.
func (c *Cluster) EnsureDatabase(ctx context.Context, db string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists); err != nil {
		return fmt.Errorf("looking up database %s: %w", db, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %s: %w", db, err)
	}
	return nil
}

// Stop shuts the server down fast (active transactions are rolled back,
// committed data is kept) and waits for it to exit.
func (c *Cluster) Stop() error { return c.proc.stop(syscall.SIGINT, 30*time.Second) }

// Exited is closed once the server has exited, stopped or not.
func (c *Cluster) Exited() <-chan struct{} { return c.proc.exited }

// Pid is the server's (the postmaster's) process id.
func (c *Cluster) Pid() int { return c.proc.cmd.Process.Pid }
