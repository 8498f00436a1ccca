package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/cmd/taxiway/deployment"
	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
)

// stackCommands span the parts: migrate, sync, local.
func stackCommands() []command {
	return []command{
		{"migrate", "apply the core's and the token service's schema migrations", runMigrate},
		{"sync", "make roots, collections, grants and accounts match a YAML file", runSync},
		{"local", "run the whole stack on this machine (what `make run` does)", runLocal},
	}
}

func runMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	dbURL := databaseFlag(fs)
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	pool, err := openPool(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrate(ctx, pool)
}

// migrate applies the schema migrations and says which.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	applied, err := deployment.Migrate(ctx, pool)
	for _, name := range applied {
		fmt.Println("applied", name)
	}
	if err == nil && len(applied) == 0 {
		fmt.Println("schema is current")
	}
	return err
}

func runSync(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	dbURL := databaseFlag(fs)
	prune := fs.Bool("prune", false, "also remove roots, collections, grants and accounts the file does not list")
	migrateFirst := fs.Bool("migrate", false, "apply the schema migrations first (`taxiway migrate`), as a one-shot container does")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: taxiway sync [-migrate] [-prune] [-database-url URL] FILE.yaml")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, -1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("expected one YAML file, got %d arguments", fs.NArg())
	}
	f, err := deployment.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	pool, err := openPool(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if *migrateFirst {
		if err := migrate(ctx, pool); err != nil {
			return err
		}
	}
	report, err := deployment.Apply(ctx, pool, f, *prune)
	if err != nil {
		return err
	}
	fmt.Printf("%s\n%s\n", report.Core, report.Accounts)
	if len(f.Fronted) > 0 || report.Policy.Changed() {
		fmt.Println(report.Policy)
	}
	return nil
}

func runLocal(ctx context.Context, args []string) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	cfg := localstack.Defaults(root)
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "folder for the Postgres cluster, logs and Caddy's state (kept between runs)")
	fs.StringVar(&cfg.GatewayBin, "gateway-bin", cfg.GatewayBin, "the gateway binary (go build ./cmd/gateway)")
	fs.StringVar(&cfg.Caddyfile, "caddyfile", cfg.Caddyfile, "the gateway's Caddyfile")
	fs.StringVar(&cfg.SeedFile, "seed", cfg.SeedFile, "sync YAML applied at every start (empty: none)")
	fs.IntVar(&cfg.GatewayPort, "port", cfg.GatewayPort, "the gateway's port on 127.0.0.1")
	fs.IntVar(&cfg.GatewayOpsPort, "gateway-ops-port", cfg.GatewayOpsPort, "the gateway's /metrics (Caddy's admin API is on a Unix socket in the data folder)")
	fs.IntVar(&cfg.CorePort, "core-port", cfg.CorePort, "the core's port")
	fs.IntVar(&cfg.CoreOpsPort, "core-ops-port", cfg.CoreOpsPort, "the core's /metrics, /healthz and /readyz")
	fs.IntVar(&cfg.TokenPort, "token-port", cfg.TokenPort, "the token service's port")
	fs.IntVar(&cfg.TokenOpsPort, "token-ops-port", cfg.TokenOpsPort, "the token service's /metrics, /healthz and /readyz")
	replicas := fs.Int("replicas", 0, "run N replicas of each service behind a front proxy, on a Postgres primary and hot standby (see README, \"Running past one machine\"); 0: one of each")
	cl := clusterFlags(fs)
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if self, err := os.Executable(); err == nil {
		cfg.TaxiwayBin = self
	}
	if *replicas > 0 {
		return runLocalCluster(ctx, fs, cfg, *replicas, cl)
	}
	if cfg.GatewayBin, err = filepath.Abs(cfg.GatewayBin); err != nil {
		return err
	}
	cfg.Progress = os.Stdout

	st, err := localstack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	u := fmt.Sprintf("http://localhost:%d", cfg.GatewayPort)
	fmt.Printf(`
Taxiway is running:
  gateway        %[1]s   (TAXII 2.1 at /taxii2/, tokens at /management/auth)
                 metrics http://127.0.0.1:%[8]d/metrics, admin API on %[9]s (mode 0600)
  core           http://127.0.0.1:%[2]d   metrics http://127.0.0.1:%[3]d/metrics
  token service  http://127.0.0.1:%[4]d   metrics http://127.0.0.1:%[5]d/metrics
  postgres       %[6]s
Try:
  curl -d 'username=test&password=test' %[1]s/management/auth
  curl -u test:test -H 'Accept: application/taxii+json;version=2.1' %[1]s/taxii2/
Ctrl-C stops everything; data stays in %[7]s.
`, u, cfg.CorePort, cfg.CoreOpsPort, cfg.TokenPort, cfg.TokenOpsPort, st.DatabaseURL(), cfg.DataDir,
		cfg.GatewayOpsPort, st.AdminSocket(localstack.Gateway))

	return runUntilStopped(ctx, st)
}

// runningStack is a local stack, single or clustered, as `taxiway local`
// runs it.
type runningStack interface {
	// Failed says why a part could not be kept running (its supervisor
	// restarts a part that exits, and gives up on a crash loop).
	Failed() <-chan error
	Stop() error
}

// runUntilStopped waits for Ctrl-C (ctx) or a part that its supervisor
// gave up on, then stops the whole stack.
func runUntilStopped(ctx context.Context, st runningStack) error {
	var stopErr error
	select {
	case <-ctx.Done():
		fmt.Println("\nstopping...")
	case stopErr = <-st.Failed():
	}
	if err := st.Stop(); err != nil && stopErr == nil {
		stopErr = err
	}
	if stopErr == nil {
		fmt.Println("stopped")
	}
	return stopErr
}
