package caddymodule

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// The policy as the gateway holds it: the token service's snapshot of one
// backend, compiled for lookups that allocate nothing per request.

// policySnapshot is the token service's answer (tokenservice.PolicySnapshot).
type policySnapshot struct {
	Version   int64 `json:"version"`
	Unchanged bool  `json:"unchanged"`
	Backends  []struct {
		Name            string `json:"name"`
		PublicDiscovery bool   `json:"public_discovery"`
		Roots           []struct {
			Path        string `json:"path"`
			Public      bool   `json:"public"`
			Collections []struct {
				ID     string `json:"id"`
				Alias  string `json:"alias"`
				Grants []struct {
					To    string `json:"to"`
					Read  bool   `json:"read"`
					Write bool   `json:"write"`
				} `json:"grants"`
			} `json:"collections"`
		} `json:"roots"`
	} `json:"backends"`
}

// access is what a caller may do with a collection.
type access struct{ read, write bool }

func (a access) or(b access) access { return access{a.read || b.read, a.write || b.write} }

// visible: a collection the caller can neither read nor write does not
// exist for it.
func (a access) visible() bool { return a.read || a.write }

// grants are a collection's grants by principal kind.
type grants struct {
	users, groups            map[string]access
	authenticated, anonymous access
}

type policyCollection struct {
	id     string // lower case
	alias  string
	grants grants
}

type policyRoot struct {
	path   string
	public bool
	// byKey holds each collection under its id and its alias, lower case:
	// a backend may match either without regard to case.
	byKey map[string]*policyCollection
	cols  []*policyCollection
}

// policyView is one backend's policy at one version, never changed once
// built: requests read it without a lock.
type policyView struct {
	version         int64
	synced          time.Time
	publicDiscovery bool
	roots           []*policyRoot // longest path first
	entries         int           // collections and grants
}

// compilePolicy builds the view of backend from snap. A backend the
// snapshot does not name has no roots: everything but discovery is
// refused. More than maxEntries collections and grants are an error: the
// gateway's memory stays bounded whatever the feed sends.
func compilePolicy(snap *policySnapshot, backend string, maxEntries int, now time.Time) (*policyView, error) {
	v := &policyView{version: snap.Version, synced: now}
	for _, b := range snap.Backends {
		if b.Name != backend {
			continue
		}
		v.publicDiscovery = b.PublicDiscovery
		for _, r := range b.Roots {
			root := &policyRoot{path: r.Path, public: r.Public, byKey: map[string]*policyCollection{}}
			for _, c := range r.Collections {
				v.entries += 1 + len(c.Grants)
				if v.entries > maxEntries {
					return nil, fmt.Errorf("backend %s has more than max_entries (%d) collections and grants", backend, maxEntries)
				}
				col := &policyCollection{id: lowerASCII(c.ID), alias: c.Alias,
					grants: grants{users: map[string]access{}, groups: map[string]access{}}}
				for _, g := range c.Grants {
					a := access{g.Read, g.Write}
					switch kind, name, _ := strings.Cut(g.To, ":"); {
					case g.To == "authenticated":
						col.grants.authenticated = col.grants.authenticated.or(a)
					case g.To == "anonymous":
						col.grants.anonymous = col.grants.anonymous.or(a)
					case kind == "user":
						col.grants.users[name] = col.grants.users[name].or(a)
					case kind == "group":
						col.grants.groups[name] = col.grants.groups[name].or(a)
					}
				}
				root.byKey[col.id] = col
				if c.Alias != "" {
					root.byKey[lowerASCII(c.Alias)] = col
				}
				root.cols = append(root.cols, col)
			}
			v.roots = append(v.roots, root)
		}
	}
	sort.Slice(v.roots, func(i, j int) bool { return len(v.roots[i].path) > len(v.roots[j].path) })
	return v, nil
}

// caller is whom a decision is for: anonymous (no identity from
// taxii_auth), or a user with comma-separated groups.
type caller struct {
	anonymous bool
	user      string
	groups    string
	admin     bool
}

// accessTo is what c may do with col: the union of its grants to the
// user, the user's groups, authenticated and anonymous (logging in never
// loses access), or everything for the admin group; as in the core. col
// is nil for a collection the policy does not know: only the admin group
// may use it.
func (c *caller) accessTo(col *policyCollection) access {
	if c.admin {
		return access{true, true}
	}
	if col == nil {
		return access{}
	}
	g := &col.grants
	a := g.anonymous
	if c.anonymous {
		return a
	}
	a = a.or(g.authenticated).or(g.users[c.user])
	for rest := c.groups; rest != ""; {
		var grp string
		grp, rest, _ = strings.Cut(rest, ",")
		if grp = strings.TrimSpace(grp); grp != "" {
			a = a.or(g.groups[grp])
		}
	}
	return a
}

// inGroup reports whether the comma-separated groups hold group.
func inGroup(groups, group string) bool {
	for rest := groups; rest != ""; {
		var g string
		g, rest, _ = strings.Cut(rest, ",")
		if strings.TrimSpace(g) == group {
			return true
		}
	}
	return false
}

// mayWriteSome reports whether c may write some collection of root: only
// such a caller can have created a status there.
func (c *caller) mayWriteSome(root *policyRoot) bool {
	if c.admin {
		return true
	}
	for _, col := range root.cols {
		if c.accessTo(col).write {
			return true
		}
	}
	return false
}
