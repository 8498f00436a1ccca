package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/taxiway/taxiway/cmd/taxiway/importcmd"
	"github.com/taxiway/taxiway/taxiicore"
	"github.com/taxiway/taxiway/tokenservice"
)

func importCommands() []command {
	return []command{{name: "import", summary: "move in from medallion or OpenTAXII (collections, objects, accounts)", run: runImport}}
}

func runImport(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "medallion" && args[0] != "opentaxii") {
		return errors.New("usage: taxiway import medallion|opentaxii -from <source> [flags] (taxiway import medallion -h for flags)")
	}
	kind := args[0]
	fs := flag.NewFlagSet("import "+kind, flag.ContinueOnError)
	dbURL := databaseFlag(fs)
	var from, config, adminGroup *string
	var publicDiscovery *bool
	var maxContentLength *int64
	if kind == "medallion" {
		from = fs.String("from", "", "medallion's memory-backend data file (JSON; required)")
		config = fs.String("config", "", "medallion's configuration file, for its users (plain-text passwords are hashed with argon2id on import)")
	} else {
		from = fs.String("from", "", "OpenTAXII's Postgres URL (required), e.g. postgres://user@host/opentaxii")
		adminGroup = fs.String("admin-group", envOr("TAXIWAY_ADMIN_GROUP", taxiicore.DefaultConfig().AdminGroup), "group given to OpenTAXII admins: the core's admin group (env TAXIWAY_ADMIN_GROUP)")
		publicDiscovery = fs.Bool("public-discovery", false, "let callers without credentials read /taxii2/, as OpenTAXII's public_discovery (also on a later run)")
		maxContentLength = fs.Int64("max-content-length", importcmd.OpenTAXIIMaxContentLength, "OpenTAXII's taxii2 max_content_length (from its configuration file), which the API roots created get")
	}
	dry := fs.Bool("dry-run", false, "do the whole import in a transaction that is rolled back, and report what would happen")
	skipBad := fs.Bool("skip-bad", false, "import the good objects of collections holding bad ones (otherwise such a collection is not imported)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *from == "" {
		return errors.New("-from is required")
	}
	pool, err := openPool(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	for _, pending := range []func(context.Context) (bool, error){
		func(ctx context.Context) (bool, error) { return taxiicore.SchemaPending(ctx, pool) },
		func(ctx context.Context) (bool, error) { return tokenservice.SchemaPending(ctx, pool) },
	} {
		p, err := pending(ctx)
		if err != nil {
			return fmt.Errorf("checking the schema: %w", err)
		}
		if p {
			return errors.New("the database schema is not current: run `taxiway migrate` first")
		}
	}

	var src *importcmd.Source
	if kind == "medallion" {
		src, err = importcmd.ReadMedallion(*from, *config)
	} else {
		src, err = importcmd.ReadOpenTAXII(ctx, *from, importcmd.OpenTAXIIOptions{AdminGroup: *adminGroup,
			PublicDiscovery: *publicDiscovery, MaxContentLength: *maxContentLength})
	}
	if err != nil {
		return err
	}
	defer src.Close()
	opts := importcmd.Options{DryRun: *dry, SkipBad: *skipBad}
	if !*quiet {
		opts.Progress = os.Stderr
	}
	sum, err := importcmd.Run(ctx, pool, src, opts)
	sum.Write(os.Stdout, *dry)
	return err
}
