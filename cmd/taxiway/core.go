package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/taxiway/taxiway/internal/trustedproxy"
	"github.com/taxiway/taxiway/taxiicore"
)

// coreCommands are taxiicore's subcommands: the server and its catalog.
func coreCommands() []command {
	return []command{
		{name: "core", summary: "serve the TAXII 2.1 API (taxiicore)", run: runCore},
		{name: "root", summary: "add, list or remove TAXII API roots", run: runRoot},
		{name: "collection", summary: "add, list or remove TAXII collections", run: runCollection},
		{name: "grant", summary: "add, list or remove collection grants", run: runGrant},
	}
}

func runCore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("core", flag.ContinueOnError)
	def := taxiicore.DefaultConfig()
	dbURL := databaseFlag(fs)
	readURL := fs.String("read-database-url", envOr("TAXIWAY_READ_DATABASE_URL", ""), "Postgres URL of a hot standby for the collection listings; empty: all on -database-url (env TAXIWAY_READ_DATABASE_URL)")
	listen := fs.String("listen", envOr("TAXIWAY_CORE_LISTEN", "127.0.0.1:9010"), "TAXII API address (env TAXIWAY_CORE_LISTEN)")
	opsListen := fs.String("ops-listen", envOr("TAXIWAY_CORE_OPS_LISTEN", "127.0.0.1:9011"), "metrics and health address (env TAXIWAY_CORE_OPS_LISTEN)")
	proxies := fs.String("trusted-proxies", envOr("TAXIWAY_TRUSTED_PROXIES", trustedproxy.Default), "CIDRs whose identity headers are believed (env TAXIWAY_TRUSTED_PROXIES)")
	userHeader := fs.String("user-header", envOr("TAXIWAY_USER_HEADER", def.UserHeader), "identity header with the user name (env TAXIWAY_USER_HEADER)")
	groupsHeader := fs.String("groups-header", envOr("TAXIWAY_GROUPS_HEADER", def.GroupsHeader), "identity header with comma-separated groups (env TAXIWAY_GROUPS_HEADER)")
	adminGroup := fs.String("admin-group", envOr("TAXIWAY_ADMIN_GROUP", def.AdminGroup), "group that may read and write every collection (env TAXIWAY_ADMIN_GROUP)")
	maxPage := fs.String("max-page-size", envOr("TAXIWAY_MAX_PAGE_SIZE", strconv.Itoa(def.MaxPageSize)), "most objects per response (env TAXIWAY_MAX_PAGE_SIZE)")
	maxPageBytes := fs.String("max-page-bytes", envOr("TAXIWAY_MAX_PAGE_BYTES", strconv.FormatInt(def.MaxPageBytes, 10)), "most bytes of objects per page, past its first object (env TAXIWAY_MAX_PAGE_BYTES)")
	retention := fs.String("status-retention", envOr("TAXIWAY_STATUS_RETENTION", def.StatusRetention.String()), "how long Add Objects statuses stay readable; 0 keeps them forever (env TAXIWAY_STATUS_RETENTION)")
	identityKeyFile := fs.String("identity-key-file", envOr("TAXIWAY_IDENTITY_KEY_FILE", ""),
		"file with the key(s) shared with the gateway; identity headers then need the gateway's signature. "+
			"Or put the key itself in env TAXIWAY_IDENTITY_KEY (env TAXIWAY_IDENTITY_KEY_FILE)")
	doMigrate := migrateFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	identityKey := os.Getenv("TAXIWAY_IDENTITY_KEY")
	if *identityKeyFile != "" {
		if identityKey != "" {
			return fmt.Errorf("set TAXIWAY_IDENTITY_KEY or -identity-key-file, not both")
		}
		b, err := readSecretFile(*identityKeyFile, logger)
		if err != nil {
			return fmt.Errorf("-identity-key-file: %w", err)
		}
		identityKey = string(b)
	}
	pageSize, err := strconv.Atoi(*maxPage)
	if err != nil {
		return fmt.Errorf("-max-page-size %q is not an integer", *maxPage)
	}
	pageBytes, err := strconv.ParseInt(*maxPageBytes, 10, 64)
	if err != nil {
		return fmt.Errorf("-max-page-bytes %q is not an integer", *maxPageBytes)
	}
	cfg := taxiicore.Config{
		TrustedProxies: *proxies, UserHeader: *userHeader, GroupsHeader: *groupsHeader,
		AdminGroup: *adminGroup, MaxPageSize: pageSize, MaxPageBytes: pageBytes, CursorKey: os.Getenv("TAXIWAY_CURSOR_KEY"),
		IdentityKey: identityKey,
	}
	if cfg.StatusRetention, err = time.ParseDuration(*retention); err != nil {
		return fmt.Errorf("-status-retention %q is not a duration (e.g. 168h)", *retention)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	pool, err := openServicePool(ctx, *dbURL, *doMigrate, logger, taxiicore.Migrate)
	if err != nil {
		return err
	}
	defer pool.Close()
	srv, err := taxiicore.New(ctx, pool, cfg, logger)
	if err != nil {
		return err
	}
	if *readURL != "" {
		read, err := openPool(ctx, *readURL)
		if err != nil {
			return fmt.Errorf("read pool: %w", err)
		}
		defer read.Close()
		srv.SetReadPool(read)
	}

	return serve(ctx, logger, func(addrs []string) {
		logger.Info("taxiicore listening", "api", "http://"+addrs[0], "ops", "http://"+addrs[1],
			"trusted_proxies", *proxies, "max_page_size", pageSize, "max_page_bytes", pageBytes, "identity_signature_required", identityKey != "", "read_pool", *readURL != "")
		if identityKey == "" {
			logger.Warn("no identity key: identity headers are believed from any trusted proxy without a gateway signature; " +
				"set TAXIWAY_IDENTITY_KEY (shared with the gateway) to require one")
		}
	}, endpoint{*listen, srv.Handler(), taxiicore.ServerMaxHeaderBytes}, endpoint{*opsListen, srv.OpsHandler(), 0})
}

// subcommand splits "add|list|remove" off args.
func subcommand(name string, args []string) (string, []string, error) {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list" && args[0] != "remove") {
		return "", nil, fmt.Errorf("usage: taxiway %s add|list|remove [flags] (taxiway %s add -h for flags)", name, name)
	}
	return args[0], args[1:], nil
}

func runRoot(ctx context.Context, args []string) error {
	verb, rest, err := subcommand("root", args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("root "+verb, flag.ContinueOnError)
	dbURL := databaseFlag(fs)
	name := fs.String("name", "", "API root name, its path segment (/name/)")
	title := fs.String("title", "", "title (add)")
	desc := fs.String("description", "", "description (add)")
	maxLen := fs.Int64("max-content-length", taxiicore.DefaultMaxContentLength, "largest request body in bytes (add)")
	public := fs.Bool("public", false, "callers without credentials may read the API root and its collection list (add)")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	pool, err := openPool(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch verb {
	case "add":
		if err := taxiicore.AddAPIRoot(ctx, pool, taxiicore.APIRoot{Name: *name, Title: *title, Description: *desc, MaxContentLength: *maxLen, Public: *public}); err != nil {
			return err
		}
		fmt.Printf("added API root /%s/\n", *name)
	case "remove":
		if err := taxiicore.RemoveAPIRoot(ctx, pool, *name); err != nil {
			return err
		}
		fmt.Printf("removed API root /%s/\n", *name)
	case "list":
		roots, err := taxiicore.ListAPIRoots(ctx, pool)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tTITLE\tMAX_CONTENT_LENGTH\tPUBLIC\tDESCRIPTION")
		for _, r := range roots {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%t\t%s\n", r.Name, r.Title, r.MaxContentLength, r.Public, r.Description)
		}
		return tw.Flush()
	}
	return nil
}

func runCollection(ctx context.Context, args []string) error {
	verb, rest, err := subcommand("collection", args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("collection "+verb, flag.ContinueOnError)
	dbURL := databaseFlag(fs)
	root := fs.String("root", "", "API root name (add; filters list)")
	id := fs.String("id", "", "collection id, a UUIDv4 (generated by add when empty)")
	title := fs.String("title", "", "title (add)")
	desc := fs.String("description", "", "description (add)")
	alias := fs.String("alias", "", "alias, unique within the API root (add)")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	pool, err := openPool(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch verb {
	case "add":
		c, err := taxiicore.AddCollection(ctx, pool, taxiicore.Collection{ID: *id, APIRoot: *root, Title: *title, Description: *desc, Alias: *alias})
		if err != nil {
			return err
		}
		fmt.Println(c.ID)
	case "remove":
		if err := taxiicore.RemoveCollection(ctx, pool, *id); err != nil {
			return err
		}
		fmt.Printf("removed collection %s and its objects\n", *id)
	case "list":
		cols, err := taxiicore.ListCollections(ctx, pool, *root)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ROOT\tID\tTITLE\tALIAS")
		for _, c := range cols {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.APIRoot, c.ID, c.Title, c.Alias)
		}
		return tw.Flush()
	}
	return nil
}

func runGrant(ctx context.Context, args []string) error {
	verb, rest, err := subcommand("grant", args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("grant "+verb, flag.ContinueOnError)
	dbURL := databaseFlag(fs)
	col := fs.String("collection", "", "collection id (filters list)")
	to := fs.String("to", "", "principal: user:<name>, group:<name>, authenticated or anonymous")
	read := fs.Bool("read", false, "grant read (add)")
	write := fs.Bool("write", false, "grant write (add)")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	pool, err := openPool(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch verb {
	case "add":
		if err := taxiicore.SetGrant(ctx, pool, taxiicore.Grant{CollectionID: *col, Principal: *to, Read: *read, Write: *write}); err != nil {
			return err
		}
		fmt.Printf("granted %s on %s: read=%t write=%t\n", *to, *col, *read, *write)
	case "remove":
		if err := taxiicore.RemoveGrant(ctx, pool, *col, *to); err != nil {
			return err
		}
		fmt.Printf("removed the grant to %s on %s\n", *to, *col)
	case "list":
		grants, err := taxiicore.ListGrants(ctx, pool, *col)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "COLLECTION\tPRINCIPAL\tREAD\tWRITE")
		for _, g := range grants {
			fmt.Fprintf(tw, "%s\t%s\t%t\t%t\n", g.CollectionID, g.Principal, g.Read, g.Write)
		}
		return tw.Flush()
	}
	return nil
}
