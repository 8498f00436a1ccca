// Package deployment holds the operations that span Taxiway's parts on one
// database: migrating both schemas, and the declarative YAML file that
// describes a deployment (API roots, collections, grants, accounts).
// `taxiway migrate`, `taxiway sync` and the local stack all go through here.
package deployment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.yaml.in/yaml/v3"

	"github.com/taxiway/taxiway/taxiicore"
	"github.com/taxiway/taxiway/tokenservice"
)

// File is the whole declarative file.
type File struct {
	taxiicore.SyncSpec `yaml:",inline"`
	// Accounts of the token service. Passwords appear only as hashes or as
	// files holding them, never in plain text here.
	Accounts []tokenservice.AccountSpec `yaml:"accounts"`

	// dir resolves password_file paths relative to the file itself.
	dir string
}

// Load reads and strictly decodes path: an unknown key is an error, so a typo
// cannot silently drop a grant.
func Load(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", path, err)
	}
	f.dir = filepath.Dir(abs)
	return &f, nil
}

// Report says what Apply changed, per part.
type Report struct {
	Core     taxiicore.SyncReport
	Accounts tokenservice.SyncReport
}

// Apply makes the database match f. With prune, items the file does not
// list are removed; without it they are left alone.
func Apply(ctx context.Context, pool *pgxpool.Pool, f *File, prune bool) (Report, error) {
	var r Report
	var err error
	if r.Core, err = taxiicore.Sync(ctx, pool, f.SyncSpec, prune); err != nil {
		return r, fmt.Errorf("syncing API roots and collections: %w", err)
	}
	if r.Accounts, err = tokenservice.SyncAccounts(ctx, pool, f.Accounts, f.dir, prune); err != nil {
		return r, fmt.Errorf("syncing accounts: %w", err)
	}
	return r, nil
}
