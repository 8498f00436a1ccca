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
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.yaml.in/yaml/v3"

	"github.com/taxiway/taxiway/taxiicore"
	"github.com/taxiway/taxiway/tokenservice"
)

// Load reads and strictly decodes path: an unknown key is an error, so a typo
// cannot silently drop a grant.
func Load(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", path, err)
	}
	f, err := parse(raw, filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return f, nil
}

// parse strictly decodes raw; dir is where password files are looked up.
func parse(raw []byte, dir string) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	f := File{dir: dir}
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return &f, nil
}

// Report says what Apply changed, per part.
type Report struct {
	Core     taxiicore.SyncReport
	Accounts tokenservice.SyncReport
	// Policy is the fronted servers' grants (the file's fronted section).
	Policy tokenservice.SyncReport
}

// Apply makes the database match f. With prune, items the file does not
// list are removed; without it they are left alone.
func Apply(ctx context.Context, pool *pgxpool.Pool, f *File, prune bool) (Report, error) {
	var r Report
	accounts, err := f.accountStates()
	if err != nil {
		return r, err
	}
	if r.Core, err = taxiicore.Sync(ctx, pool, f.catalog(), prune); err != nil {
		return r, fmt.Errorf("syncing API roots and collections: %w", err)
	}
	if r.Accounts, err = tokenservice.SyncAccounts(ctx, pool, accounts, prune); err != nil {
		return r, fmt.Errorf("syncing accounts: %w", err)
	}
	if r.Policy, err = tokenservice.SyncFronted(ctx, pool, f.frontedPolicy(), prune); err != nil {
		return r, fmt.Errorf("syncing fronted servers: %w", err)
	}
	return r, nil
}

// frontedPolicy is the gateway policy's part of f.
func (f *File) frontedPolicy() []tokenservice.FrontedBackend {
	out := []tokenservice.FrontedBackend{}
	for _, b := range f.Fronted {
		fb := tokenservice.FrontedBackend{Name: b.Backend, PublicDiscovery: b.PublicDiscovery}
		for _, r := range b.APIRoots {
			fr := tokenservice.FrontedRoot{Path: r.Path, Public: r.Public}
			for _, c := range r.Collections {
				fc := tokenservice.FrontedCollection{ID: c.ID, Alias: c.Alias}
				for _, g := range c.Grants {
					fc.Grants = append(fc.Grants, tokenservice.FrontedGrant{To: g.To, Read: g.Read, Write: g.Write})
				}
				fr.Collections = append(fr.Collections, fc)
			}
			fb.Roots = append(fb.Roots, fr)
		}
		out = append(out, fb)
	}
	return out
}

// catalog is the core's part of f.
func (f *File) catalog() taxiicore.Catalog {
	var c taxiicore.Catalog
	if d := f.Discovery; d != nil {
		c.Discovery = &taxiicore.DiscoverySettings{Title: d.Title, Description: d.Description, Contact: d.Contact, Default: d.Default, Public: d.Public}
	}
	for _, r := range f.APIRoots {
		root := taxiicore.CatalogRoot{APIRoot: taxiicore.APIRoot{Name: r.Name, Title: r.Title, Description: r.Description, MaxContentLength: r.MaxContentLength, Public: r.Public}}
		for _, col := range r.Collections {
			cc := taxiicore.CatalogCollection{ID: col.ID, Title: col.Title, Description: col.Description, Alias: col.Alias}
			for _, g := range col.Grants {
				cc.Grants = append(cc.Grants, taxiicore.CatalogGrant{To: g.To, Read: g.Read, Write: g.Write})
			}
			root.Collections = append(root.Collections, cc)
		}
		c.APIRoots = append(c.APIRoots, root)
	}
	return c
}

// accountStates is the token service's part of f, with password files read.
func (f *File) accountStates() ([]tokenservice.AccountState, error) {
	var out []tokenservice.AccountState
	for i, a := range f.Accounts {
		s := tokenservice.AccountState{Username: a.Username, PasswordHash: a.PasswordHash, Groups: a.Groups, Disabled: a.Disabled}
		if a.PasswordFile != "" {
			if a.PasswordHash != "" {
				return nil, fmt.Errorf("accounts[%d] (%s): give exactly one of password_hash and password_file", i, a.Username)
			}
			pw, err := readPasswordFile(f.dir, a.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("accounts[%d] (%s): %w", i, a.Username, err)
			}
			s.Password = pw
		}
		out = append(out, s)
	}
	return out, nil
}

// readPasswordFile reads a password file named relative to dir; one
// trailing newline is not part of the password.
func readPasswordFile(dir, name string) (string, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading password_file: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", fmt.Errorf("password_file %s is empty", name)
	}
	return pw, nil
}
