package tokenservice

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PolicyComponent prefixes the lines SyncFronted reports.
const PolicyComponent = "gateway policy"

// SyncFronted makes the fronted policy match backends, in one transaction:
// creates what is missing, updates what differs, and with prune removes
// what backends does not list (without prune, nothing is removed). Every
// entry is checked before anything is written; a second run reports no
// change.
func SyncFronted(ctx context.Context, pool *pgxpool.Pool, backends []FrontedBackend, prune bool) (SyncReport, error) {
	backends = cloneBackends(backends)
	if err := normalizeBackends(backends); err != nil {
		return SyncReport{}, err
	}
	var report SyncReport
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		report = SyncReport{Component: PolicyComponent}
		// Serialise concurrent syncs and admin commands.
		if _, err := tx.Exec(ctx, "LOCK TABLE token_fronted_policy IN EXCLUSIVE MODE"); err != nil {
			return err
		}
		cur, err := readPolicy(ctx, tx)
		if err != nil {
			return err
		}
		have := flattenPolicy(cur.Backends)
		want := flattenPolicy(backends)
		for _, k := range want.order {
			w := want.items[k]
			h, ok := have.items[k]
			switch {
			case !ok:
				report.Created = append(report.Created, k)
			case h.state != w.state:
				report.Updated = append(report.Updated, k)
			default:
				report.Unchanged = append(report.Unchanged, k)
				continue
			}
			if _, err := tx.Exec(ctx, w.upsert, w.args...); err != nil {
				return fmt.Errorf("writing %s: %w", k, err)
			}
		}
		if !prune {
			return nil
		}
		// Deepest first: grants, collections, roots, backends (cascades
		// would remove the deeper ones anyway; each is reported).
		for i := len(have.order) - 1; i >= 0; i-- {
			k := have.order[i]
			if _, ok := want.items[k]; ok {
				continue
			}
			report.Removed = append(report.Removed, k)
			h := have.items[k]
			if _, err := tx.Exec(ctx, h.remove, h.keys...); err != nil {
				return fmt.Errorf("removing %s: %w", k, err)
			}
		}
		return nil
	})
	if isUniqueViolation(err) {
		return SyncReport{}, fmt.Errorf("syncing the gateway policy: an alias is given to two collections of one API root: %w", err)
	}
	if err != nil {
		return SyncReport{}, fmt.Errorf("syncing the gateway policy: %w", err)
	}
	return report, nil
}

// flatPolicy is the policy as rows, parents before children, keyed by
// what a report names them.
type flatPolicy struct {
	order []string
	items map[string]*policyRow
}

// policyRow is one row of the policy: its state (what makes two rows
// equal) and the statements that write and remove it.
type policyRow struct {
	state          string
	upsert, remove string
	args, keys     []any
}

func flattenPolicy(backends []FrontedBackend) flatPolicy {
	f := flatPolicy{items: map[string]*policyRow{}}
	add := func(key string, row policyRow) {
		f.order = append(f.order, key)
		f.items[key] = &row
	}
	for _, b := range backends {
		add("backend "+b.Name, policyRow{
			state:  fmt.Sprint(b.PublicDiscovery),
			upsert: `INSERT INTO token_fronted_backends (name, public_discovery) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET public_discovery = EXCLUDED.public_discovery`,
			args:   []any{b.Name, b.PublicDiscovery},
			remove: `DELETE FROM token_fronted_backends WHERE name = $1`, keys: []any{b.Name}})
		for _, r := range b.Roots {
			rk := b.Name + " " + r.Path
			add("API root "+rk, policyRow{
				state:  fmt.Sprint(r.Public),
				upsert: `INSERT INTO token_fronted_roots (backend, path, public) VALUES ($1, $2, $3) ON CONFLICT (backend, path) DO UPDATE SET public = EXCLUDED.public`,
				args:   []any{b.Name, r.Path, r.Public},
				remove: `DELETE FROM token_fronted_roots WHERE backend = $1 AND path = $2`, keys: []any{b.Name, r.Path}})
			for _, c := range r.Collections {
				ck := rk + c.ID
				add("collection "+ck, policyRow{
					state:  c.Alias,
					upsert: `INSERT INTO token_fronted_collections (backend, root_path, id, alias) VALUES ($1, $2, $3, $4) ON CONFLICT (backend, root_path, id) DO UPDATE SET alias = EXCLUDED.alias`,
					args:   []any{b.Name, r.Path, c.ID, nullableText(c.Alias)},
					remove: `DELETE FROM token_fronted_collections WHERE backend = $1 AND root_path = $2 AND id = $3`, keys: []any{b.Name, r.Path, c.ID}})
				for _, g := range c.Grants {
					add("grant to "+g.To+" on "+ck, policyRow{
						state:  fmt.Sprint(g.Read, g.Write),
						upsert: `INSERT INTO token_fronted_grants (backend, root_path, collection_id, principal, can_read, can_write) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (backend, root_path, collection_id, principal) DO UPDATE SET can_read = EXCLUDED.can_read, can_write = EXCLUDED.can_write`,
						args:   []any{b.Name, r.Path, c.ID, g.To, g.Read, g.Write},
						remove: `DELETE FROM token_fronted_grants WHERE backend = $1 AND root_path = $2 AND collection_id = $3 AND principal = $4`, keys: []any{b.Name, r.Path, c.ID, g.To}})
				}
			}
		}
	}
	return f
}

// cloneBackends copies backends deeply enough that normalizing them leaves
// the caller's slices alone.
func cloneBackends(in []FrontedBackend) []FrontedBackend {
	out := make([]FrontedBackend, len(in))
	for i, b := range in {
		out[i] = b
		out[i].Roots = make([]FrontedRoot, len(b.Roots))
		for j, r := range b.Roots {
			out[i].Roots[j] = r
			out[i].Roots[j].Collections = append([]FrontedCollection(nil), r.Collections...)
		}
	}
	return out
}
