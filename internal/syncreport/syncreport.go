// Package syncreport is what a declarative sync says it did: the core's
// roots, collections and grants, and the token service's accounts, report
// in the same shape so that `taxiway sync` prints them alike.
package syncreport

import (
	"fmt"
	"strings"
)

// Report lists what a sync changed, one human-readable item per change.
type Report struct {
	// Component prefixes every printed line ("taxiicore", "tokenservice").
	Component string
	Created   []string
	Updated   []string
	Removed   []string
	// Unchanged lists items that were already as the file says.
	Unchanged []string
}

// Changed reports whether the sync changed anything.
func (r Report) Changed() bool {
	return len(r.Created)+len(r.Updated)+len(r.Removed) > 0
}

// String is one line per change, or one line saying there was none.
func (r Report) String() string {
	if !r.Changed() {
		return r.Component + ": nothing to change"
	}
	var b strings.Builder
	for _, l := range []struct {
		verb  string
		items []string
	}{{"created", r.Created}, {"updated", r.Updated}, {"removed", r.Removed}} {
		for _, it := range l.items {
			fmt.Fprintf(&b, "%s: %s %s\n", r.Component, l.verb, it)
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}
