package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
)

// localClusterFlags are `taxiway local`'s options for -replicas.
type localClusterFlags struct {
	sync, readStandby, pgbouncer *bool
	tokenLBPort                  *int
}

func clusterFlags(fs *flag.FlagSet) localClusterFlags {
	return localClusterFlags{
		sync:        fs.Bool("sync", true, "with -replicas: synchronous replication to the standby (a failover loses nothing)"),
		readStandby: fs.Bool("read-standby", true, "with -replicas: the cores read collection listings from the standby"),
		pgbouncer:   fs.Bool("pgbouncer", false, "with -replicas: a pgbouncer (transaction pooling) in front of each Postgres node"),
		tokenLBPort: fs.Int("token-lb-port", 9029, "with -replicas: each gateway's internal port balancing its calls to the token services"),
	}
}

// runLocalCluster is `taxiway local -replicas N`: the stack of cfg, with
// every service replicated on its own loopback address (127.0.1.n gateways,
// 127.0.2.n cores, 127.0.3.n token services) and one front on 127.0.0.1.
func runLocalCluster(ctx context.Context, fs *flag.FlagSet, cfg localstack.Config, replicas int, fl localClusterFlags) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	cc := localstack.ClusterDefaults(root)
	dataSet := false
	fs.Visit(func(f *flag.Flag) { dataSet = dataSet || f.Name == "data" })
	if dataSet {
		cc.DataDir = cfg.DataDir
	}
	cc.TaxiwayBin, cc.GatewayBin, cc.SeedFile = cfg.TaxiwayBin, cfg.GatewayBin, cfg.SeedFile
	cc.Replicas = replicas
	cc.FrontPort = cfg.GatewayPort
	cc.GatewayPort, cc.GatewayOpsPort, cc.TokenLBPort = cfg.GatewayPort, cfg.GatewayOpsPort, *fl.tokenLBPort
	cc.CorePort, cc.CoreOpsPort = cfg.CorePort, cfg.CoreOpsPort
	cc.TokenPort, cc.TokenOpsPort = cfg.TokenPort, cfg.TokenOpsPort
	cc.SynchronousReplication, cc.ReadFromStandby, cc.PgBouncer = *fl.sync, *fl.readStandby, *fl.pgbouncer
	cc.Progress = os.Stdout

	c, err := localstack.StartCluster(ctx, cc)
	if err != nil {
		return err
	}
	fmt.Printf(`
Taxiway is running with %[2]d replicas of each service:
  front          %[1]s   (TAXII 2.1 at /taxii2/, tokens at /management/auth)
  gateways       %[3]s ... (/metrics on port %[4]d of each)
  cores          %[5]s ... (/metrics, /readyz on port %[6]d of each)
  token services %[7]s ... (/metrics, /readyz on port %[8]d of each)
  postgres       %[9]s
  read pool      %[10]s
Try:
  curl -u test:test -H 'Accept: application/taxii+json;version=2.1' %[1]s/taxii2/
Ctrl-C stops everything; logs are in %[11]s.
`, c.FrontURL(), replicas, c.GatewayURL(1), cc.GatewayOpsPort,
		localstack.Host(localstack.Core, 1), cc.CoreOpsPort, localstack.Host(localstack.TokenService, 1), cc.TokenOpsPort,
		c.DatabaseURL(), c.ReadDatabaseURL(), filepath.Join(cc.DataDir, "logs"))

	return runUntilStopped(ctx, c)
}
