package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/term"

	"github.com/taxiway/taxiway/internal/trustedproxy"
	"github.com/taxiway/taxiway/tokenservice"
)

// tokenCommands are the token service's subcommands: the server, accounts
// and signing keys.
func tokenCommands() []command {
	return []command{
		{name: "tokenservice", summary: "serve POST /management/auth and the JWKS (the token service)", run: runTokenService},
		{name: "account", summary: "create, passwd, groups, disable, enable, delete, list or hash accounts", run: runAccount},
		{name: "key", summary: "rotate the token signing key", run: runKey},
		{name: "token", summary: "revoke one token (jti) or every token of an account", run: runToken},
	}
}

func runTokenService(ctx context.Context, args []string) error {
	def := tokenservice.DefaultConfig()
	fs := flag.NewFlagSet("tokenservice", flag.ContinueOnError)
	dbURL := databaseFlag(fs)
	listen := fs.String("listen", envOr("TAXIWAY_TOKEN_LISTEN", "127.0.0.1:9020"), "address for /management/auth and the JWKS (env TAXIWAY_TOKEN_LISTEN)")
	opsListen := fs.String("ops-listen", envOr("TAXIWAY_TOKEN_OPS_LISTEN", "127.0.0.1:9021"), "address for /metrics, /healthz, /readyz (env TAXIWAY_TOKEN_OPS_LISTEN)")
	issuer := fs.String("issuer", envOr("TAXIWAY_TOKEN_ISSUER", def.Issuer), "iss claim (env TAXIWAY_TOKEN_ISSUER)")
	audience := fs.String("audience", envOr("TAXIWAY_TOKEN_AUDIENCE", def.Audience), "aud claim (env TAXIWAY_TOKEN_AUDIENCE)")
	ttl := fs.String("ttl", envOr("TAXIWAY_TOKEN_TTL", "3600"), "token lifetime in seconds, 1 to 86400 (env TAXIWAY_TOKEN_TTL)")
	alg := fs.String("alg", envOr("TAXIWAY_TOKEN_ALG", def.Algorithm), "signing algorithm: EdDSA or HS256 (env TAXIWAY_TOKEN_ALG)")
	secretFile := fs.String("hs256-secret-file", envOr("TAXIWAY_TOKEN_HS256_SECRET_FILE", ""), "file holding the HS256 secret, at least 32 bytes (env TAXIWAY_TOKEN_HS256_SECRET_FILE)")
	kekFile := kekFlag(fs)
	proxies := fs.String("trusted-proxies", envOr("TAXIWAY_TRUSTED_PROXIES", trustedproxy.Default), "CIDRs whose X-Forwarded-For gives the client address for rate limits (env TAXIWAY_TRUSTED_PROXIES)")
	maxHashes := fs.String("max-concurrent-hashes", envOr("TAXIWAY_TOKEN_MAX_CONCURRENT_HASHES", "0"), "password hashes running at once; 0 = number of CPUs (env TAXIWAY_TOKEN_MAX_CONCURRENT_HASHES)")
	argon := argon2Flag(fs)
	doMigrate := migrateFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	cfg := def
	cfg.Issuer, cfg.Audience, cfg.Algorithm = *issuer, *audience, *alg
	secs, err := strconv.Atoi(*ttl)
	if err != nil {
		return fmt.Errorf("-ttl %q: want whole seconds", *ttl)
	}
	cfg.TTL = time.Duration(secs) * time.Second
	if cfg.MaxConcurrentHashes, err = strconv.Atoi(*maxHashes); err != nil {
		return fmt.Errorf("-max-concurrent-hashes %q: want an integer", *maxHashes)
	}
	if cfg.PasswordHash, err = tokenservice.ParseArgon2Params(*argon); err != nil {
		return fmt.Errorf("-argon2: %w", err)
	}
	if cfg.TrustedProxies, err = trustedproxy.Parse(*proxies); err != nil {
		return fmt.Errorf("-trusted-proxies: %w", err)
	}
	if *secretFile != "" {
		if cfg.HS256Secret, err = readSecretFile(*secretFile, logger); err != nil {
			return fmt.Errorf("-hs256-secret-file: %w", err)
		}
	}
	if cfg.KeyEncryptionKey, err = readKEK(*kekFile, logger); err != nil {
		return err
	}

	if err := cfg.Validate(); err != nil {
		return err
	}

	pool, err := openServicePool(ctx, *dbURL, *doMigrate, logger, tokenservice.Migrate)
	if err != nil {
		return err
	}
	defer pool.Close()
	srv, err := tokenservice.New(ctx, pool, cfg, logger)
	if err != nil {
		return err
	}

	return serve(ctx, logger, func(addrs []string) {
		logger.Info("token service listening", "listen", addrs[0], "ops_listen", addrs[1],
			"alg", cfg.Algorithm, "ttl_seconds", secs, "trusted_proxies", cfg.TrustedProxies.String(),
			"argon2", cfg.PasswordHash.String(), "key_encryption", cfg.KeyEncryptionKey != nil)
	}, endpoint{*listen, srv.Handler(), 0}, endpoint{*opsListen, srv.OpsHandler(), 0})
}

func kekFlag(fs *flag.FlagSet) *string {
	return fs.String("key-encryption-key-file", envOr("TAXIWAY_TOKEN_KEY_ENCRYPTION_KEY_FILE", ""),
		"file holding 32 bytes (64 hex digits or base64) that seal signing keys in Postgres (env TAXIWAY_TOKEN_KEY_ENCRYPTION_KEY_FILE)")
}

func argon2Flag(fs *flag.FlagSet) *string {
	return fs.String("argon2", envOr("TAXIWAY_TOKEN_ARGON2", tokenservice.DefaultArgon2Params().String()),
		"argon2id cost of new password hashes, m=KiB,t=passes,p=threads (env TAXIWAY_TOKEN_ARGON2)")
}

// readSecretFile reads a secret, dropping one trailing line break, and
// warns when other users may read the file.
func readSecretFile(path string, logger *slog.Logger) ([]byte, error) {
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 && logger != nil {
		logger.Warn("secret file is readable by other users; chmod 600 it", "path", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	return []byte(s), nil
}

// readKEK reads the key encryption key: 64 hex digits or base64 of 32 bytes.
func readKEK(path string, logger *slog.Logger) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := readSecretFile(path, logger)
	if err != nil {
		return nil, fmt.Errorf("-key-encryption-key-file: %w", err)
	}
	text := strings.TrimSpace(string(b))
	if k, err := hex.DecodeString(text); err == nil && len(k) == 32 {
		return k, nil
	}
	if k, err := base64.StdEncoding.DecodeString(text); err == nil && len(k) == 32 {
		return k, nil
	}
	return nil, errors.New("-key-encryption-key-file: want 32 bytes as 64 hex digits or base64 (openssl rand -hex 32)")
}

const accountUsage = `usage: taxiway account <action> [flags] ...
  create [-groups g1,g2] USERNAME   new account; password from a prompt or stdin
  passwd USERNAME                   set the password (prompt or stdin); voids older tokens
  groups USERNAME g1,g2             set the groups ("" for none); voids older tokens
  disable USERNAME | enable USERNAME  disable voids the account's tokens
  delete USERNAME                   voids the account's tokens
  list
  hash                              read a password on stdin, print its hash for the sync YAML
Flags: -database-url (env TAXIWAY_DATABASE_URL), -argon2 (env TAXIWAY_TOKEN_ARGON2).
Passwords are never taken from the command line.`

func runAccount(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, accountUsage)
		if len(args) == 0 {
			return errors.New("missing action")
		}
		return flag.ErrHelp
	}
	action := args[0]
	fs := flag.NewFlagSet("account "+action, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), accountUsage) }
	dbURL := databaseFlag(fs)
	argon := argon2Flag(fs)
	groupsFlag := fs.String("groups", "", "comma-separated groups (create)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	params, err := tokenservice.ParseArgon2Params(*argon)
	if err != nil {
		return fmt.Errorf("-argon2: %w", err)
	}
	wantArgs := map[string]int{"create": 1, "passwd": 1, "groups": 2, "disable": 1, "enable": 1, "delete": 1, "list": 0, "hash": 0}
	n, known := wantArgs[action]
	if !known {
		fmt.Fprintln(os.Stderr, accountUsage)
		return fmt.Errorf("unknown action %q", action)
	}
	if fs.NArg() != n {
		return fmt.Errorf("account %s takes %d argument(s), got %d (passwords are read from a prompt or stdin, never argv)", action, n, fs.NArg())
	}
	if action == "hash" {
		pw, err := readPassword(false)
		if err != nil {
			return err
		}
		h, err := tokenservice.HashPassword(pw, params)
		if err != nil {
			return err
		}
		fmt.Println(h)
		return nil
	}

	// Read the password before connecting, so a prompt is not timed out by
	// an idle database connection.
	var hash string
	if action == "create" || action == "passwd" {
		if err := tokenservice.ValidateUsername(fs.Arg(0)); err != nil {
			return err
		}
		pw, err := readPassword(true)
		if err != nil {
			return err
		}
		if hash, err = tokenservice.HashPassword(pw, params); err != nil {
			return err
		}
	}
	pool, err := openPool(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	user := fs.Arg(0)
	switch action {
	case "create":
		err = tokenservice.CreateAccount(ctx, pool, user, hash, splitList(*groupsFlag))
	case "passwd":
		err = tokenservice.SetPasswordHash(ctx, pool, user, hash)
	case "groups":
		err = tokenservice.SetGroups(ctx, pool, user, splitList(fs.Arg(1)))
	case "disable", "enable":
		err = tokenservice.SetDisabled(ctx, pool, user, action == "disable")
	case "delete":
		err = tokenservice.DeleteAccount(ctx, pool, user)
	case "list":
		return listAccounts(ctx, pool)
	}
	if err != nil {
		return err
	}
	fmt.Printf("account %s: %s done\n", user, action)
	return nil
}

func listAccounts(ctx context.Context, pool *pgxpool.Pool) error {
	accounts, err := tokenservice.ListAccounts(ctx, pool)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tGROUPS\tDISABLED\tNOT BEFORE")
	for _, a := range accounts {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", a.Username, strings.Join(a.Groups, ","), a.Disabled, a.NotBefore.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// splitList reads "a, b,c" as [a b c]; empty items are dropped.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// readPassword reads a password without echo from a terminal (asking twice
// when confirm is set), or the first line of stdin otherwise.
func readPassword(confirm bool) (string, error) {
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		fmt.Fprint(os.Stderr, "Password: ")
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		if confirm {
			fmt.Fprint(os.Stderr, "Repeat password: ")
			again, err := term.ReadPassword(fd)
			fmt.Fprintln(os.Stderr)
			if err != nil {
				return "", fmt.Errorf("reading the password: %w", err)
			}
			if string(again) != string(pw) {
				return "", errors.New("the passwords differ")
			}
		}
		if len(pw) == 0 {
			return "", errors.New("empty password")
		}
		return string(pw), nil
	}
	line, err := bufio.NewReader(io.LimitReader(os.Stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("empty password on stdin")
	}
	return line, nil
}

func runKey(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "rotate" {
		fmt.Fprintln(os.Stderr, "usage: taxiway key rotate [-database-url URL] [-key-encryption-key-file FILE]")
		return errors.New("unknown or missing action (want rotate)")
	}
	fs := flag.NewFlagSet("key rotate", flag.ContinueOnError)
	dbURL := databaseFlag(fs)
	kekFile := kekFlag(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	kek, err := readKEK(*kekFile, nil)
	if err != nil {
		return err
	}
	pool, err := openPool(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	kid, err := tokenservice.RotateSigningKey(ctx, pool, kek)
	if err != nil {
		return err
	}
	fmt.Printf("new signing key %s; running token services use it within their key refresh (30s); "+
		"the previous public key stays in the JWKS until its tokens expire\n", kid)
	return nil
}

const tokenUsage = `usage: taxiway token revoke [-database-url URL] (-user USERNAME | -jti ID [-until TIME])
  -user USERNAME   void every token issued to the account so far (it may log in again)
  -jti ID          void the one token with this id (the token service logs it at issue)
  -until TIME      RFC 3339 time after which the jti entry may be forgotten (the
                   token's exp); default: the longest token lifetime from now
Gateways that follow the revocation feed refuse the tokens within about a second.`

func runToken(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "revoke" {
		fmt.Fprintln(os.Stderr, tokenUsage)
		return errors.New("unknown or missing action (want revoke)")
	}
	fs := flag.NewFlagSet("token revoke", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), tokenUsage) }
	dbURL := databaseFlag(fs)
	user := fs.String("user", "", "void every token of this account")
	jti := fs.String("jti", "", "void the token with this id")
	until := fs.String("until", "", "RFC 3339 time when the jti entry may be forgotten (the token's exp)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 || (*user == "") == (*jti == "") {
		fmt.Fprintln(os.Stderr, tokenUsage)
		return errors.New("give exactly one of -user and -jti")
	}
	keep := time.Now().Add(tokenservice.RevokedTokenKeep)
	if *until != "" {
		if *jti == "" {
			return errors.New("-until goes with -jti")
		}
		t, err := time.Parse(time.RFC3339, *until)
		if err != nil {
			return fmt.Errorf("-until %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", *until)
		}
		keep = t.Add(2 * time.Minute) // past any verifier's leeway
	}
	pool, err := openPool(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if *user != "" {
		if err := tokenservice.RevokeAccountTokens(ctx, pool, *user); err != nil {
			return err
		}
		fmt.Printf("revoked every token of %s issued so far\n", *user)
		return nil
	}
	if err := tokenservice.RevokeToken(ctx, pool, *jti, keep); err != nil {
		return err
	}
	fmt.Printf("revoked token %s\n", *jti)
	return nil
}
