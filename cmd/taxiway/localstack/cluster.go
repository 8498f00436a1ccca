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
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/taxiway/taxiway/internal/pgcluster"
)

// The clustered stack: what a deployment past one machine looks like, run on
// one machine. Each replica of a part listens on a loopback address of its
// own (127.0.<part>.<n>) with the same ports, as separate hosts would, so
// that one health-check port serves every upstream of a pool:
//
//	front Caddy 127.0.0.1:FrontPort ─▶ gateway-n 127.0.1.n ─▶ core-n 127.0.2.n
//	                                                      └──▶ tokenservice-n 127.0.3.n
//	services ─▶ Postgres primary + hot standby (pg_basebackup -R), through a
//	            multi-host connection string (target_session_attrs=read-write),
//	            optionally each node behind its own pgbouncer.

// Parts of the clustered stack, as Instance takes them.
const (
	partGateway = 1
	partCore    = 2
	partToken   = 3
	// partFront is where the front connects to the gateways from: the
	// one address whose X-Forwarded-For the gateways believe.
	partFront = 4
)

// StandbyName is the standby's application_name on the primary: what
// synchronous_standby_names lists.
const StandbyName = "standby1"

// ClusterConfig says how many replicas to run and where.
type ClusterConfig struct {
	DataDir    string
	TaxiwayBin string
	GatewayBin string
	// GatewayCaddyfile balances each gateway over the services
	// (deploy/cluster/gateway.Caddyfile); FrontCaddyfile spreads clients
	// over the gateways (deploy/cluster/front.Caddyfile).
	GatewayCaddyfile, FrontCaddyfile string
	SeedFile                         string
	// Replicas of the gateway, the core and the token service (at least 1).
	Replicas int
	// FrontPort is the clients' port on 127.0.0.1.
	FrontPort int
	// Ports every replica uses on its own loopback address. TokenLBPort is
	// the gateway's internal listener for taxii_auth's token-service calls;
	// GatewayOpsPort its metrics (Caddy's admin API is on a Unix socket,
	// see AdminSocket).
	GatewayPort, GatewayOpsPort, TokenLBPort int
	CorePort, CoreOpsPort                    int
	TokenPort, TokenOpsPort                  int
	// SynchronousReplication makes every commit wait for the standby's
	// flush (synchronous_standby_names), so a failover loses nothing.
	SynchronousReplication bool
	// ReadFromStandby gives the cores a read pool on the standby.
	ReadFromStandby bool
	// PgBouncer puts a pgbouncer (transaction pooling) in front of each
	// Postgres node; the services then connect through them.
	PgBouncer bool
	// TokenTTL is the token lifetime in seconds; 0 keeps the default.
	TokenTTL int
	// Env is added to every service's environment.
	Env      []string
	Progress io.Writer
}

// ClusterDefaults are the ports README documents for `taxiway local -replicas`.
func ClusterDefaults(root string) ClusterConfig {
	return ClusterConfig{
		DataDir:          filepath.Join(root, ".data-cluster"),
		TaxiwayBin:       filepath.Join(root, "bin", "taxiway"),
		GatewayBin:       filepath.Join(root, "bin", "gateway"),
		GatewayCaddyfile: filepath.Join(root, "deploy", "cluster", "gateway.Caddyfile"),
		FrontCaddyfile:   filepath.Join(root, "deploy", "cluster", "front.Caddyfile"),
		SeedFile:         filepath.Join(root, "deploy", "demo.yaml"),
		Replicas:         2,
		FrontPort:        9000,
		GatewayPort:      9000, GatewayOpsPort: 2019, TokenLBPort: 9029,
		CorePort: 9010, CoreOpsPort: 9011,
		TokenPort: 9020, TokenOpsPort: 9021,
		SynchronousReplication: true,
		ReadFromStandby:        true,
	}
}

// Cluster is a running clustered stack. Every service instance, both
// Postgres nodes and their pgbouncers run under supervisors that restart
// them when they exit on their own (supervise.go).
type Cluster struct {
	cfg      ClusterConfig
	mu       sync.Mutex         // guards what follows
	primary  *pgcluster.Cluster // replaced by a restart
	standby  *pgcluster.Cluster
	nodes    map[string]*supervisor // "primary", "standby"
	bouncers map[string]*supervisor // "primary", "standby", when PgBouncer
	services map[string]*supervisor
	// failed receives why the stack cannot go on: a part in a crash loop.
	failed chan error
	// identityKey is shared by the gateways and the cores (a fresh random
	// one per start), as in the single stack.
	identityKey string
}

// Instance names replica n (from 1) of a service: "core-2".
func Instance(service string, n int) string { return service + "-" + strconv.Itoa(n) }

// Front is the front proxy's instance name.
const Front = "front"

func partOf(service string) int {
	switch service {
	case Gateway:
		return partGateway
	case Core:
		return partCore
	case TokenService:
		return partToken
	case Front:
		return partFront
	}
	return 0
}

// Host is the loopback address of replica n of a service.
func Host(service string, n int) string { return fmt.Sprintf("127.0.%d.%d", partOf(service), n) }

// StartCluster brings up Postgres (primary, then a standby cloned from it),
// the token services, the cores, the gateways and the front, and returns
// once the front answers. On failure everything started is stopped again.
func StartCluster(ctx context.Context, cfg ClusterConfig) (c *Cluster, err error) {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Replicas < 1 {
		return nil, fmt.Errorf("replicas must be at least 1 (got %d)", cfg.Replicas)
	}
	for _, bin := range []string{cfg.TaxiwayBin, cfg.GatewayBin} {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("binary %s is missing: build it first (make build): %w", bin, err)
		}
	}
	if err := clusterPortsFree(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", cfg.DataDir, err)
	}
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return nil, err
	}
	c = &Cluster{cfg: cfg, services: map[string]*supervisor{}, nodes: map[string]*supervisor{}, bouncers: map[string]*supervisor{},
		identityKey: rand.Text() + rand.Text(), failed: make(chan error, 1)}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	if err := c.startDatabase(ctx); err != nil {
		return c, err
	}
	for _, svc := range []string{TokenService, Core, Gateway} {
		for n := 1; n <= cfg.Replicas; n++ {
			if err := c.StartInstance(ctx, Instance(svc, n)); err != nil {
				return c, err
			}
		}
	}
	if err := c.StartInstance(ctx, Front); err != nil {
		return c, err
	}
	return c, nil
}

func (c *Cluster) pgDir(node string) string { return filepath.Join(c.cfg.DataDir, "postgres-"+node) }

// bouncerDir holds the socket of the pgbouncer in front of node.
func (c *Cluster) bouncerDir(node string) string {
	return filepath.Join(c.cfg.DataDir, "pgbouncer-"+node)
}

// pgOptions bounds how long a node takes to come back after a crash:
// crash recovery replays the WAL written since the last checkpoint, so
// checkpoints every 30 s or 128 MB of WAL keep the replay to a few seconds
// under a sustained ingest (with Postgres's defaults, 5 min or 1 GB, a
// kill -9 under load meant 10-20 s of redo). syncfs makes the flush of the
// data folder at the start of recovery one call instead of one per file.
func (c *Cluster) pgOptions(node string) pgcluster.Options {
	return pgcluster.Options{
		DataDir: c.pgDir(node),
		LogPath: filepath.Join(c.cfg.DataDir, "logs", "postgres-"+node+".log"),
		Settings: map[string]string{
			"checkpoint_timeout":        "30s",
			"max_wal_size":              "128MB",
			"recovery_init_sync_method": "syncfs",
		},
	}
}

// startDatabase starts the primary (asynchronous while it is migrated and
// seeded, since nothing could acknowledge a synchronous commit yet), clones
// a fresh standby from it, and then turns synchronous replication on.
// The standby is re-cloned at every start, so that a standby promoted in an
// earlier run can never come back as a second primary.
func (c *Cluster) startDatabase(ctx context.Context) error {
	fmt.Fprintf(c.cfg.Progress, "postgres: starting the primary in %s\n", c.pgDir("primary"))
	p, err := c.startNode(ctx, "primary", nil)
	if err != nil {
		return err
	}
	if rec, err := p.InRecovery(ctx); err != nil {
		return err
	} else if rec {
		return fmt.Errorf("%s holds a standby, not a primary: remove %s to start afresh", c.pgDir("primary"), c.cfg.DataDir)
	}
	if err := p.SetSynchronousStandbys(ctx, ""); err != nil {
		return err
	}
	if err := prepareDatabase(ctx, p, c.cfg.SeedFile, c.cfg.Progress); err != nil {
		return err
	}
	if err := os.RemoveAll(c.pgDir("standby")); err != nil {
		return fmt.Errorf("removing the old standby: %w", err)
	}
	fmt.Fprintf(c.cfg.Progress, "postgres: cloning the standby into %s (pg_basebackup -R)\n", c.pgDir("standby"))
	// Cloned once; a restart resumes on the clone (standby.signal).
	clone := func(ctx context.Context) (*pgcluster.Cluster, error) {
		return pgcluster.StartStandby(ctx, p, StandbyName, c.pgOptions("standby"))
	}
	s, err := c.startNode(ctx, "standby", clone)
	if err != nil {
		return err
	}
	if err := p.WaitStreaming(ctx, StandbyName, ""); err != nil {
		return err
	}
	if c.cfg.SynchronousReplication {
		if err := p.SetSynchronousStandbys(ctx, StandbyName); err != nil {
			return err
		}
		if err := p.WaitStreaming(ctx, StandbyName, "sync"); err != nil {
			return err
		}
	}
	mode := "asynchronous"
	if c.cfg.SynchronousReplication {
		mode = "synchronous"
	}
	fmt.Fprintf(c.cfg.Progress, "postgres: standby streaming (%s replication)\n", mode)
	if c.cfg.PgBouncer {
		for i, node := range []*pgcluster.Cluster{p, s} {
			if err := c.startBouncer(ctx, []string{"primary", "standby"}[i], node); err != nil {
				return err
			}
		}
		fmt.Fprintln(c.cfg.Progress, "pgbouncer: in front of both nodes (transaction pooling)")
	}
	return nil
}

// startBouncer starts the pgbouncer in front of a Postgres node under a
// supervisor, as the nodes are: its clients lose their connections when it
// dies, and reconnect to the restarted one on the same socket.
func (c *Cluster) startBouncer(ctx context.Context, name string, node *pgcluster.Cluster) error {
	dir := c.bouncerDir(name)
	sup, err := supervise(ctx, "pgbouncer-"+name, filepath.Join(dir, "pgbouncer.log"), c.cfg.Progress, c.failed,
		func(ctx context.Context) (child, error) {
			// Only the node's socket folder matters, which a restart of
			// the node keeps.
			b, err := pgcluster.StartBouncer(ctx, dir, node, 20)
			if err != nil {
				return nil, err
			}
			return b, nil
		})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.bouncers[name] = sup
	c.mu.Unlock()
	return nil
}

// startNode starts a Postgres node ("primary" or "standby") under a
// supervisor: first with first (nil: start the data folder as it is), and
// after an exit of its own on the same data folder, which Postgres
// recovers.
func (c *Cluster) startNode(ctx context.Context, node string, first func(context.Context) (*pgcluster.Cluster, error)) (*pgcluster.Cluster, error) {
	opts := c.pgOptions(node)
	sup, err := supervise(ctx, "postgres-"+node, opts.LogPath, c.cfg.Progress, c.failed, func(ctx context.Context) (child, error) {
		start := first
		first = nil
		if start == nil {
			start = func(ctx context.Context) (*pgcluster.Cluster, error) { return pgcluster.Start(ctx, opts) }
		}
		pg, err := start(ctx)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if node == "primary" {
			c.primary = pg
		} else {
			c.standby = pg
		}
		c.mu.Unlock()
		return pg, nil
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[node] = sup
	if node == "primary" {
		return c.primary, nil
	}
	return c.standby, nil
}

// node is the running server of a Postgres node and its supervisor.
func (c *Cluster) node(name string) (*pgcluster.Cluster, *supervisor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name == "primary" {
		return c.primary, c.nodes[name]
	}
	return c.standby, c.nodes[name]
}

// hosts are the socket folders the services connect to, primary first.
func (c *Cluster) hosts() []string {
	if c.cfg.PgBouncer {
		return []string{c.bouncerDir("primary"), c.bouncerDir("standby")}
	}
	return []string{c.pgDir("primary"), c.pgDir("standby")}
}

func (c *Cluster) dsn(attrs string, hosts ...string) string {
	dsn := pgcluster.MultiHostDSN(Database, attrs, hosts...)
	if c.cfg.PgBouncer {
		dsn = pgcluster.BouncerDSN(dsn)
	}
	return dsn
}

// DatabaseURL is what the services write through: both nodes, keeping
// whichever is the read-write primary.
func (c *Cluster) DatabaseURL() string {
	h := c.hosts()
	return c.dsn("read-write", h[0], h[1])
}

// ReadDatabaseURL is the cores' read pool: the standby, else whatever
// answers.
func (c *Cluster) ReadDatabaseURL() string {
	h := c.hosts()
	return c.dsn("prefer-standby", h[1], h[0])
}

// FrontURL is the clients' address.
func (c *Cluster) FrontURL() string { return "http://127.0.0.1:" + strconv.Itoa(c.cfg.FrontPort) }

// GatewayURL is replica n's address.
func (c *Cluster) GatewayURL(n int) string {
	return "http://" + net.JoinHostPort(Host(Gateway, n), strconv.Itoa(c.cfg.GatewayPort))
}

// OpsURL is the ops (metrics, health) base URL of a replica.
func (c *Cluster) OpsURL(service string, n int) string {
	port := map[string]int{Core: c.cfg.CoreOpsPort, TokenService: c.cfg.TokenOpsPort, Gateway: c.cfg.GatewayOpsPort}[service]
	return "http://" + net.JoinHostPort(Host(service, n), strconv.Itoa(port))
}

// AdminSocket is the Caddy admin API's Unix socket of a gateway instance
// ("gateway-1") or of the front (which has none: its admin API is off).
func (c *Cluster) AdminSocket(instance string) string {
	return adminSocket(filepath.Join(c.cfg.DataDir, "caddy", instance))
}

// PrimaryURL and StandbyURL reach each node directly as the superuser.
func (c *Cluster) PrimaryURL(db string) string {
	pg, _ := c.node("primary")
	return pg.URL(db)
}

// StandbyURL reaches the standby (or the promoted standby) directly.
func (c *Cluster) StandbyURL(db string) string {
	pg, _ := c.node("standby")
	return pg.URL(db)
}

// command builds the process of an instance ("core-1", "front", ...).
func (c *Cluster) command(instance string) (*exec.Cmd, func(context.Context) error, error) {
	cfg := c.cfg
	svc, nStr, _ := strings.Cut(instance, "-")
	n, _ := strconv.Atoi(nStr)
	if instance != Front && (partOf(svc) == 0 || n < 1 || n > cfg.Replicas) {
		return nil, nil, fmt.Errorf("unknown instance %q", instance)
	}
	at := func(svc string, n, port int) string { return net.JoinHostPort(Host(svc, n), strconv.Itoa(port)) }
	pool := func(svc string, port int) string {
		var addrs []string
		for i := 1; i <= cfg.Replicas; i++ {
			addrs = append(addrs, at(svc, i, port))
		}
		return strings.Join(addrs, " ")
	}
	env := append(os.Environ(),
		"TAXIWAY_DATABASE_URL="+c.DatabaseURL(),
		// Caddy keeps its state per instance under the data folder.
		"XDG_DATA_HOME="+filepath.Join(cfg.DataDir, "caddy", instance, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(cfg.DataDir, "caddy", instance, "config"),
		"TAXIWAY_IDENTITY_KEY="+c.identityKey,
	)
	if cfg.TokenTTL > 0 {
		env = append(env, "TAXIWAY_TOKEN_TTL="+strconv.Itoa(cfg.TokenTTL))
	}
	var cmd *exec.Cmd
	var ready func(context.Context) error
	switch {
	case instance == Front:
		cmd = exec.Command(cfg.GatewayBin, "run", "--config", cfg.FrontCaddyfile, "--adapter", "caddyfile")
		env = append(env,
			"TAXIWAY_FRONT_SITE=:"+strconv.Itoa(cfg.FrontPort),
			"TAXIWAY_FRONT_BIND=127.0.0.1",
			"TAXIWAY_GATEWAY_UPSTREAMS="+pool(Gateway, cfg.GatewayPort),
			"TAXIWAY_GATEWAY_OPS_PORT="+strconv.Itoa(cfg.GatewayOpsPort),
			"TAXIWAY_FRONT_SOURCE="+Host(Front, 1))
		ready = siteAnswers(c.FrontURL())
	case svc == TokenService:
		cmd = exec.Command(cfg.TaxiwayBin, "tokenservice")
		env = append(env,
			"TAXIWAY_TOKEN_LISTEN="+at(svc, n, cfg.TokenPort),
			"TAXIWAY_TOKEN_OPS_LISTEN="+at(svc, n, cfg.TokenOpsPort),
			// The gateways connect from 127.0.0.1, the kernel's choice on
			// loopback: only their X-Forwarded-For is believed.
			"TAXIWAY_TRUSTED_PROXIES=127.0.0.1/32")
		ready = httpReady(c.OpsURL(svc, n)+"/readyz", http.StatusOK)
	case svc == Core:
		cmd = exec.Command(cfg.TaxiwayBin, "core")
		env = append(env,
			"TAXIWAY_CORE_LISTEN="+at(svc, n, cfg.CorePort),
			"TAXIWAY_CORE_OPS_LISTEN="+at(svc, n, cfg.CoreOpsPort))
		if cfg.ReadFromStandby {
			env = append(env, "TAXIWAY_READ_DATABASE_URL="+c.ReadDatabaseURL())
		}
		ready = httpReady(c.OpsURL(svc, n)+"/readyz", http.StatusOK)
	case svc == Gateway:
		cmd = exec.Command(cfg.GatewayBin, "run", "--config", cfg.GatewayCaddyfile, "--adapter", "caddyfile")
		env = append(env,
			"TAXIWAY_GATEWAY_SITE=:"+strconv.Itoa(cfg.GatewayPort),
			"TAXIWAY_GATEWAY_BIND="+Host(svc, n),
			"TAXIWAY_GATEWAY_OPS_BIND="+Host(svc, n),
			"TAXIWAY_GATEWAY_OPS_PORT="+strconv.Itoa(cfg.GatewayOpsPort),
			"TAXIWAY_GATEWAY_ADMIN="+adminListen(c.AdminSocket(instance)),
			"TAXIWAY_GATEWAY_TRUSTED_PROXIES="+Host(Front, 1)+"/32",
			"TAXIWAY_TOKEN_LB="+at(svc, n, cfg.TokenLBPort),
			"TAXIWAY_TOKEN_LB_BIND="+Host(svc, n),
			"TAXIWAY_CORE_UPSTREAMS="+pool(Core, cfg.CorePort),
			"TAXIWAY_CORE_HEALTH_PORT="+strconv.Itoa(cfg.CoreOpsPort),
			"TAXIWAY_TOKEN_UPSTREAMS="+pool(TokenService, cfg.TokenPort),
			"TAXIWAY_TOKEN_HEALTH_PORT="+strconv.Itoa(cfg.TokenOpsPort))
		ready = gatewayReady(c.GatewayURL(n), c.OpsURL(svc, n)+"/metrics")
	}
	cmd.Env = append(env, cfg.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	return cmd, ready, nil
}

// StartInstance starts one instance, waits until it is ready, and keeps it
// running until StopInstance or Stop.
func (c *Cluster) StartInstance(ctx context.Context, instance string) error {
	c.mu.Lock()
	running := c.services[instance]
	c.mu.Unlock()
	if running != nil {
		return fmt.Errorf("%s is already running", instance)
	}
	if _, _, err := c.command(instance); err != nil {
		return err
	}
	s, err := superviseCommand(ctx, instance, filepath.Join(c.cfg.DataDir, "logs", instance+".log"), c.cfg.Progress, c.failed,
		func() (*exec.Cmd, func(context.Context) error, error) { return c.command(instance) })
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.services[instance] = s
	c.mu.Unlock()
	return nil
}

// StopInstance stops one instance gracefully, without a restart following.
func (c *Cluster) StopInstance(instance string) error {
	c.mu.Lock()
	s := c.services[instance]
	delete(c.services, instance)
	c.mu.Unlock()
	return s.stop()
}

// PIDs are the running instances' process ids, for sampling and for
// killing one as a crash would (its supervisor then starts it again).
func (c *Cluster) PIDs() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for name, s := range c.services {
		if pid, ok := s.running(); ok {
			out[name] = pid
		}
	}
	return out
}

// PID is the process id of a running instance (a service,
// "postgres-primary"/"postgres-standby" or, with PgBouncer,
// "pgbouncer-primary"/"pgbouncer-standby"), 0 if it is not running.
func (c *Cluster) PID(instance string) int {
	s := c.supervisorOf(instance)
	if s == nil {
		return 0
	}
	if pid, ok := s.running(); ok {
		return pid
	}
	return 0
}

func (c *Cluster) supervisorOf(instance string) *supervisor {
	c.mu.Lock()
	defer c.mu.Unlock()
	if node, ok := strings.CutPrefix(instance, "postgres-"); ok {
		return c.nodes[node]
	}
	if node, ok := strings.CutPrefix(instance, "pgbouncer-"); ok {
		return c.bouncers[node]
	}
	return c.services[instance]
}

// WaitRestarted waits until the supervisor of instance (as for PID) has a
// ready process other than pid old, and returns its pid.
func (c *Cluster) WaitRestarted(ctx context.Context, instance string, old int) (int, error) {
	s := c.supervisorOf(instance)
	if s == nil {
		return 0, fmt.Errorf("%s is not running", instance)
	}
	return s.waitRestarted(ctx, old)
}

// FailOver stops the primary as a crash does (immediate shutdown: the
// standby gets nothing more) and promotes the standby. The services find
// the new primary through their multi-host connection strings. The old
// primary stays down (its supervisor is told so): bringing it back would
// need pg_rewind and a new standby.signal, which is Patroni's job in
// production.
func (c *Cluster) FailOver(ctx context.Context) error {
	_, sup := c.node("primary")
	if err := sup.halt().(*pgcluster.Cluster).StopImmediate(); err != nil {
		return fmt.Errorf("stopping the primary: %w", err)
	}
	standby, _ := c.node("standby")
	return standby.Promote(ctx)
}

// Failed receives why the stack cannot go on: a part that kept exiting
// however often its supervisor restarted it.
func (c *Cluster) Failed() <-chan error { return c.failed }

// Stop stops the front and the gateways first (no new requests), then the
// services, then pgbouncer and Postgres (standby last: it would otherwise
// keep asking for the stopped primary).
func (c *Cluster) Stop() error {
	c.mu.Lock()
	names := make([]string, 0, len(c.services))
	for name := range c.services {
		names = append(names, name)
	}
	c.mu.Unlock()
	order := map[string]int{Front: 0, Gateway: 1, Core: 2, TokenService: 3}
	sort.Slice(names, func(i, j int) bool {
		si, _, _ := strings.Cut(names[i], "-")
		sj, _, _ := strings.Cut(names[j], "-")
		if order[si] != order[sj] {
			return order[si] < order[sj]
		}
		return names[i] < names[j]
	})
	var errs []error
	for _, name := range names {
		errs = append(errs, c.StopInstance(name))
	}
	for _, node := range []string{"primary", "standby"} {
		c.mu.Lock()
		sup := c.bouncers[node]
		c.mu.Unlock()
		errs = append(errs, sup.stop())
	}
	for _, node := range []string{"primary", "standby"} {
		_, sup := c.node(node)
		errs = append(errs, sup.stop())
	}
	return errors.Join(errs...)
}

// clusterPortsFree checks every address the cluster will listen on.
func clusterPortsFree(cfg ClusterConfig) error {
	addrs := []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.FrontPort))}
	for n := 1; n <= cfg.Replicas; n++ {
		for svc, ports := range map[string][]int{
			Gateway:      {cfg.GatewayPort, cfg.GatewayOpsPort, cfg.TokenLBPort},
			Core:         {cfg.CorePort, cfg.CoreOpsPort},
			TokenService: {cfg.TokenPort, cfg.TokenOpsPort},
		} {
			for _, p := range ports {
				addrs = append(addrs, net.JoinHostPort(Host(svc, n), strconv.Itoa(p)))
			}
		}
	}
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("%s is in use (another Taxiway, or another program?): stop it or choose other ports (taxiway local -h)", a)
		}
		l.Close()
	}
	return nil
}
