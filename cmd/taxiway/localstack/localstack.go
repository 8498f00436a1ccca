// Package localstack runs the whole Taxiway stack on one machine without
// Docker: a private Postgres cluster under the checkout, the token service,
// the core and the Caddy gateway as child processes. `taxiway local` (what
// `make run` calls) and the end-to-end tests start the stack through Start,
// so the tests exercise exactly what users run.
package localstack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/cmd/taxiway/deployment"
	"github.com/taxiway/taxiway/internal/pgcluster"
)

// Database is the database the stack's parts share inside the cluster.
const Database = "taxiway"

// Service names, as Stop/StartService take them.
const (
	TokenService = "tokenservice"
	Core         = "core"
	Gateway      = "gateway"
)

// Config says where the stack keeps its data, which binaries it runs and
// which loopback ports it uses.
type Config struct {
	// DataDir keeps the Postgres cluster, Caddy's state and the logs
	// between runs.
	DataDir string
	// TaxiwayBin runs the token service and the core (its subcommands).
	TaxiwayBin string
	// GatewayBin is Caddy built with the taxii_auth module (cmd/gateway).
	GatewayBin string
	// Caddyfile is the gateway's configuration (the repository's root Caddyfile).
	Caddyfile string
	// SeedFile is a sync YAML applied at every start (idempotent): the demo
	// account, API root and collection.
	SeedFile string
	// Ports on 127.0.0.1. GatewayOps is the gateway's ops listener: its
	// metrics, read-only. Caddy's admin API is on no port at all, only on
	// a Unix socket in DataDir (see AdminSocket).
	GatewayPort, GatewayOpsPort int
	CorePort, CoreOpsPort       int
	TokenPort, TokenOpsPort     int
	// TokenTTL is the token lifetime in seconds; 0 keeps the service's default.
	TokenTTL int
	// Env is added to every service's environment, after the stack's own.
	Env []string
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
}

// Defaults are the ports README documents.
func Defaults(root string) Config {
	return Config{
		DataDir:        filepath.Join(root, ".data"),
		TaxiwayBin:     filepath.Join(root, "bin", "taxiway"),
		GatewayBin:     filepath.Join(root, "bin", "gateway"),
		Caddyfile:      filepath.Join(root, "Caddyfile"),
		SeedFile:       filepath.Join(root, "deploy", "demo.yaml"),
		GatewayPort:    9000,
		GatewayOpsPort: 2019,
		CorePort:       9010, CoreOpsPort: 9011,
		TokenPort: 9020, TokenOpsPort: 9021,
	}
}

// Stack is a running local stack. Each part runs under a supervisor that
// restarts it when it exits on its own (supervise.go).
type Stack struct {
	cfg      Config
	mu       sync.Mutex // guards cluster (replaced by a restart)
	cluster  *pgcluster.Cluster
	postgres *supervisor
	services map[string]*supervisor
	// failed receives why the stack cannot go on: a part in a crash loop.
	failed chan error
	// identityKey is shared by the gateways and the core (a fresh random
	// one per start): the core refuses identity headers without the
	// gateway's signature, so no other local process can claim a user.
	identityKey string
	// extraGateways are the ports of gateways started by StartGateway.
	extraGateways map[string][2]int
}

// process is one run of a service's command.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start brings the whole stack up and returns once the gateway answers.
// On failure everything started so far is stopped again.
func Start(ctx context.Context, cfg Config) (st *Stack, err error) {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	for _, bin := range []string{cfg.TaxiwayBin, cfg.GatewayBin} {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("binary %s is missing: build it first (make build): %w", bin, err)
		}
	}
	for _, p := range []int{cfg.GatewayPort, cfg.GatewayOpsPort, cfg.CorePort, cfg.CoreOpsPort, cfg.TokenPort, cfg.TokenOpsPort} {
		if err := portFree(p); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", cfg.DataDir, err)
	}
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return nil, err
	}

	st = &Stack{cfg: cfg, services: map[string]*supervisor{}, extraGateways: map[string][2]int{},
		identityKey: rand.Text() + rand.Text(), failed: make(chan error, 1)}
	defer func() {
		if err != nil {
			_ = st.Stop()
		}
	}()

	fmt.Fprintf(cfg.Progress, "postgres: starting the cluster in %s\n", st.pgDir())
	if err := st.startPostgres(ctx); err != nil {
		return st, err
	}
	if err := st.prepareDatabase(ctx); err != nil {
		return st, err
	}
	for _, name := range []string{TokenService, Core, Gateway} {
		if err := st.StartService(ctx, name); err != nil {
			return st, err
		}
	}
	return st, nil
}

func (st *Stack) pgDir() string { return filepath.Join(st.cfg.DataDir, "postgres") }

// DatabaseURL is the URL the services use.
func (st *Stack) DatabaseURL() string { return st.pg().URL(Database) }

func (st *Stack) pg() *pgcluster.Cluster {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.cluster
}

// GatewayURL is the stack's public address.
func (st *Stack) GatewayURL() string { return "http://127.0.0.1:" + strconv.Itoa(st.cfg.GatewayPort) }

// startPostgres starts the cluster under a supervisor: a server that
// exits on its own is started again on the same data (crash recovery).
func (st *Stack) startPostgres(ctx context.Context) error {
	logPath := filepath.Join(st.cfg.DataDir, "logs", "postgres.log")
	s, err := supervise(ctx, "postgres", logPath, st.cfg.Progress, st.failed, func(ctx context.Context) (child, error) {
		c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: st.pgDir(), LogPath: logPath})
		if err != nil {
			return nil, err
		}
		st.mu.Lock()
		st.cluster = c
		st.mu.Unlock()
		return c, nil
	})
	st.postgres = s
	return err
}

// prepareDatabase creates the database, migrates both parts and applies the
// seed file.
func (st *Stack) prepareDatabase(ctx context.Context) error {
	return prepareDatabase(ctx, st.pg(), st.cfg.SeedFile, st.cfg.Progress)
}

// prepareDatabase creates the stack's database on pg, migrates both parts
// and applies seedFile (when not empty).
func prepareDatabase(ctx context.Context, pg *pgcluster.Cluster, seedFile string, progress io.Writer) error {
	if err := pg.EnsureDatabase(ctx, Database); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, pg.URL(Database))
	if err != nil {
		return fmt.Errorf("connecting to the stack's database: %w", err)
	}
	defer pool.Close()
	applied, err := deployment.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "postgres: ready, %d migrations applied\n", len(applied))
	if seedFile == "" {
		return nil
	}
	f, err := deployment.Load(seedFile)
	if err != nil {
		return err
	}
	if _, err := deployment.Apply(ctx, pool, f, false); err != nil {
		return fmt.Errorf("applying %s: %w", seedFile, err)
	}
	fmt.Fprintf(progress, "postgres: demo data from %s in place\n", seedFile)
	return nil
}

// StopPostgres stops the cluster, as an operator's restart or an outage
// would; StartPostgres brings it back on the same data.
func (st *Stack) StopPostgres() error { return st.postgres.stop() }

// StartPostgres starts the cluster again after StopPostgres.
func (st *Stack) StartPostgres(ctx context.Context) error { return st.startPostgres(ctx) }

// AdminSocket is the Unix socket of the Caddy admin API of the gateway
// started as name (Gateway, or a name given to StartGateway).
func (st *Stack) AdminSocket(name string) string {
	if name == Gateway {
		return adminSocket(filepath.Join(st.cfg.DataDir, "caddy"))
	}
	return adminSocket(filepath.Join(st.cfg.DataDir, name))
}

// command builds the child process for a service.
func (st *Stack) command(name string) (*exec.Cmd, func(context.Context) error) {
	cfg := st.cfg
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	opsURL := func(p int) string { return "http://" + addr(p) + "/metrics" }
	env := append(os.Environ(),
		"TAXIWAY_DATABASE_URL="+st.DatabaseURL(),
		"TAXIWAY_CORE_LISTEN="+addr(cfg.CorePort),
		"TAXIWAY_CORE_OPS_LISTEN="+addr(cfg.CoreOpsPort),
		"TAXIWAY_TOKEN_LISTEN="+addr(cfg.TokenPort),
		"TAXIWAY_TOKEN_OPS_LISTEN="+addr(cfg.TokenOpsPort),
		"TAXIWAY_CORE_UPSTREAM="+addr(cfg.CorePort),
		"TAXIWAY_TOKEN_UPSTREAM="+addr(cfg.TokenPort),
		"TAXIWAY_GATEWAY_SITE=:"+strconv.Itoa(cfg.GatewayPort),
		"TAXIWAY_GATEWAY_BIND=127.0.0.1",
		"TAXIWAY_GATEWAY_OPS_BIND=127.0.0.1",
		"TAXIWAY_GATEWAY_OPS_PORT="+strconv.Itoa(cfg.GatewayOpsPort),
		"TAXIWAY_GATEWAY_ADMIN="+adminListen(st.AdminSocket(Gateway)),
		// Caddy keeps its state (autosaved config, local CA) under the checkout.
		"XDG_DATA_HOME="+filepath.Join(cfg.DataDir, "caddy", "data"),
		"XDG_CONFIG_HOME="+filepath.Join(cfg.DataDir, "caddy", "config"),
		"TAXIWAY_IDENTITY_KEY="+st.identityKey,
	)
	if cfg.TokenTTL > 0 {
		env = append(env, "TAXIWAY_TOKEN_TTL="+strconv.Itoa(cfg.TokenTTL))
	}
	env = append(env, cfg.Env...)

	var cmd *exec.Cmd
	var ready func(context.Context) error
	switch name {
	case TokenService:
		cmd = exec.Command(cfg.TaxiwayBin, "tokenservice")
		ready = httpReady("http://"+addr(cfg.TokenOpsPort)+"/readyz", http.StatusOK)
	case Core:
		cmd = exec.Command(cfg.TaxiwayBin, "core")
		ready = httpReady("http://"+addr(cfg.CoreOpsPort)+"/readyz", http.StatusOK)
	case Gateway:
		cmd = exec.Command(cfg.GatewayBin, "run", "--config", cfg.Caddyfile, "--adapter", "caddyfile")
		ready = gatewayReady(st.GatewayURL(), opsURL(cfg.GatewayOpsPort))
	default:
		ports, ok := st.extraGateways[name]
		if !ok {
			return nil, nil
		}
		cmd = exec.Command(cfg.GatewayBin, "run", "--config", cfg.Caddyfile, "--adapter", "caddyfile")
		env = append(env,
			"TAXIWAY_GATEWAY_SITE=:"+strconv.Itoa(ports[0]),
			"TAXIWAY_GATEWAY_OPS_PORT="+strconv.Itoa(ports[1]),
			"TAXIWAY_GATEWAY_ADMIN="+adminListen(st.AdminSocket(name)),
			"XDG_DATA_HOME="+filepath.Join(cfg.DataDir, name, "data"),
			"XDG_CONFIG_HOME="+filepath.Join(cfg.DataDir, name, "config"))
		ready = gatewayReady(st.GatewayURLOf(name), opsURL(ports[1]))
	}
	cmd.Env = env
	// A process group of its own: Ctrl-C reaches only `taxiway local`, which
	// then stops the services in order. Pdeathsig covers a crash of ours.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	return cmd, ready
}

// StartGateway starts another gateway process named name (a replica, as
// behind a load balancer) on port, with its ops listener on opsPort,
// and waits until it is ready. Stop stops it with the rest.
func (st *Stack) StartGateway(ctx context.Context, name string, port, opsPort int) error {
	switch name {
	case TokenService, Core, Gateway:
		return fmt.Errorf("%s names a service of the stack", name)
	}
	st.extraGateways[name] = [2]int{port, opsPort}
	return st.StartService(ctx, name)
}

// GatewayURLOf is the address of the gateway started as name.
func (st *Stack) GatewayURLOf(name string) string {
	return "http://127.0.0.1:" + strconv.Itoa(st.extraGateways[name][0])
}

// StartService starts one service, waits until it is ready, and keeps it
// running until StopService or Stop.
func (st *Stack) StartService(ctx context.Context, name string) error {
	st.mu.Lock()
	running := st.services[name]
	st.mu.Unlock()
	if running != nil {
		return fmt.Errorf("%s is already running", name)
	}
	if cmd, _ := st.command(name); cmd == nil {
		return fmt.Errorf("unknown service %q", name)
	}
	s, err := superviseCommand(ctx, name, filepath.Join(st.cfg.DataDir, "logs", name+".log"), st.cfg.Progress, st.failed,
		func() (*exec.Cmd, func(context.Context) error, error) {
			cmd, ready := st.command(name)
			return cmd, ready, nil
		})
	if err != nil {
		return err
	}
	st.mu.Lock()
	st.services[name] = s
	st.mu.Unlock()
	return nil
}

// PID is the process id of a running service, 0 if it is not running.
func (st *Stack) PID(name string) int {
	st.mu.Lock()
	s := st.services[name]
	st.mu.Unlock()
	if s == nil {
		return 0
	}
	if pid, ok := s.running(); ok {
		return pid
	}
	return 0
}

// launch starts cmd with its output appended to logPath and waits until
// ready succeeds. The process is returned whenever it started, ready or
// not, so that the caller can stop it.
func launch(ctx context.Context, progress io.Writer, name string, cmd *exec.Cmd, ready func(context.Context) error, logPath string) (child, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", logPath, err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	s := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		logFile.Close()
		close(s.done)
	}()

	waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		err := ready(waitCtx)
		if err == nil {
			fmt.Fprintf(progress, "%s: ready (log: %s)\n", name, logPath)
			return s, nil
		}
		select {
		case <-s.done:
			return s, fmt.Errorf("%s exited during start (%v); the end of %s:\n%s", name, s.err, logPath, tail(logPath, 2000))
		case <-waitCtx.Done():
			return s, fmt.Errorf("%s not ready after 60s (%v); the end of %s:\n%s", name, err, logPath, tail(logPath, 2000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StopService stops one service gracefully (SIGTERM, then SIGKILL after
// 20s), without a restart following.
func (st *Stack) StopService(name string) error {
	st.mu.Lock()
	s := st.services[name]
	delete(st.services, name)
	st.mu.Unlock()
	return s.stop()
}

// Exited is closed once the process has exited.
func (s *process) Exited() <-chan struct{} { return s.done }

// Pid is the process id.
func (s *process) Pid() int { return s.cmd.Process.Pid }

// Stop stops the process gracefully (SIGTERM, then SIGKILL after 20s); an
// exited process is already stopped.
func (s *process) Stop() error {
	name := s.name
	if s.exited() {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("%s did not stop within 20s; killed", name)
	}
	var exit *exec.ExitError
	if s.err != nil && !errors.As(s.err, &exit) {
		return fmt.Errorf("%s: %w", name, s.err)
	}
	return nil
}

// Failed receives why the stack cannot go on: a part that kept exiting
// however often its supervisor restarted it.
func (st *Stack) Failed() <-chan error { return st.failed }

func (s *process) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Stop stops the gateways first (no new requests), then the services, then Postgres.
func (st *Stack) Stop() error {
	var errs []error
	names := []string{}
	for name := range st.extraGateways {
		names = append(names, name)
	}
	for _, name := range append(names, Gateway, Core, TokenService) {
		errs = append(errs, st.StopService(name))
	}
	errs = append(errs, st.postgres.stop())
	return errors.Join(errs...)
}

func portFree(port int) error {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("port %d on 127.0.0.1 is in use (another Taxiway, or another program?): stop it or choose other ports (taxiway local -h)", port)
	}
	return l.Close()
}

func httpReady(url string, want int) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("%s answered %d, want %d", url, resp.StatusCode, want)
		}
		return nil
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// FreePorts asks the kernel for n distinct free loopback ports, for stacks
// that must not collide with another on the same machine (tests, benches).
func FreePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
