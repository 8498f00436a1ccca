// Package importcmd moves a deployment from another TAXII 2.1 server into
// Taxiway: `taxiway import medallion` and `taxiway import opentaxii`. A
// reader (medallion.go, opentaxii.go) turns the other server's data into a
// Source; Run writes it through taxiicore's and tokenservice's import
// functions, one transaction per collection, so that a crash leaves no
// collection half imported and a second run imports nothing twice.
package importcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/taxiicore"
	"github.com/taxiway/taxiway/tokenservice"
)

// Source is what the other server holds, in Taxiway's terms.
type Source struct {
	// Name says where it comes from, for messages ("medallion", "OpenTAXII").
	Name string
	// Discovery is set unless Taxiway's discovery resource was set before.
	Discovery   *taxiicore.Discovery
	Roots       []taxiicore.APIRoot
	Collections []Collection
	Accounts    []Account
	// Statuses are finished Add Objects statuses whose collection is known.
	Statuses []taxiicore.ImportedStatus
	// ReadStatuses, when set, reads more of them (into Statuses and Notes)
	// once the objects are imported, so that jobs added to the source
	// meanwhile come along, and reading them counts in Run's progress and
	// time. progress is called with the number of jobs read so far.
	ReadStatuses func(ctx context.Context, progress func(read int)) error
	// Problems are source items that cannot be imported (bad data), each
	// naming the item; they make the import fail after everything else
	// was done.
	Problems []string
	// Notes are what the source holds that is deliberately not imported,
	// or imported differently, with why.
	Notes []string
	// Close releases what reading the source holds open (a connection).
	Close func()
}

// Collection is one collection to import; Objects counts its objects for
// progress and the estimate of time left.
type Collection struct {
	taxiicore.CollectionImport
	Objects int
}

// Account is one account to create in the token service.
type Account struct {
	Username     string
	PasswordHash string
	Groups       []string
	// Hashed is true when the source held the password in plain text and
	// it was hashed (argon2id) while reading.
	Hashed bool
}

// Options tune Run.
type Options struct {
	// DryRun imports into one transaction and rolls it back, so that the
	// summary says exactly what an import would do; accounts are only
	// checked.
	DryRun bool
	// SkipBad imports the good objects of collections that hold bad ones.
	SkipBad bool
	// Progress receives progress lines (stderr); nil for none.
	Progress io.Writer
	// ProgressEvery is the least time between progress lines (default 1s).
	ProgressEvery time.Duration
}

// Summary is what Run did, for the closing report.
type Summary struct {
	RootsCreated, RootsKept              int
	DiscoverySet                         bool
	CollectionsImported, CollectionsKept int
	// CollectionsUpdated held objects before and gained the versions the
	// source has and they lacked.
	CollectionsUpdated           int
	CollectionsFailed            int
	Objects, Duplicates, Shifted int
	// Present counts the source's versions the target already held.
	Present                        int
	MaxShift                       time.Duration
	AccountsCreated, AccountsKept  int
	StatusesImported, StatusesKept int
	// StatusesWaiting were left out for reporting success for objects
	// not (yet) imported; a later run imports them once they are.
	StatusesWaiting int
	PasswordsHashed int
	Elapsed         time.Duration
	// Lines are the per-item report: every problem, note and collection.
	Lines []string
}

// ErrIncomplete is returned (wrapped) when some items could not be imported;
// the summary lists them.
var ErrIncomplete = errors.New("some items were not imported")

// Run imports src into the database of pool.
func Run(ctx context.Context, pool *pgxpool.Pool, src *Source, opts Options) (Summary, error) {
	start := time.Now()
	var sum Summary
	var db taxiicore.ImportDB = pool
	if opts.DryRun {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return sum, fmt.Errorf("starting the dry run's transaction: %w", err)
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		db = tx
	}
	failed := len(src.Problems)
	for _, p := range src.Problems {
		sum.Lines = append(sum.Lines, "ERROR "+p)
	}
	for _, n := range src.Notes {
		sum.Lines = append(sum.Lines, "note: "+n)
	}

	badRoots := map[string]bool{}
	for _, r := range src.Roots {
		created, err := taxiicore.ImportAPIRoot(ctx, db, r)
		if err != nil && ctx.Err() == nil {
			failed++
			badRoots[r.Name] = true
			sum.Lines = append(sum.Lines, "ERROR "+err.Error())
			continue
		}
		if err != nil {
			return sum, err
		}
		if created {
			sum.RootsCreated++
			sum.Lines = append(sum.Lines, fmt.Sprintf("API root %s (%s): created, max_content_length %d", rootPaths(r.Name), r.Title, rootMaxContentLength(r)))
		} else {
			sum.RootsKept++
			line := fmt.Sprintf("API root %s: exists, kept as it is", rootPaths(r.Name))
			if have, err := keptMaxContentLength(ctx, db, r.Name); err != nil {
				return sum, err
			} else if have != rootMaxContentLength(r) {
				line += fmt.Sprintf(" (max_content_length %d, where the source's is %d)", have, rootMaxContentLength(r))
			}
			sum.Lines = append(sum.Lines, line)
		}
	}
	if src.Discovery != nil {
		d := *src.Discovery
		if badRoots[d.Default] {
			d.Default = ""
		}
		set, err := taxiicore.ImportDiscovery(ctx, db, d)
		if err != nil {
			return sum, err
		}
		sum.DiscoverySet = set
		if !set {
			line := "discovery: set before (by sync or an earlier import), kept as it is"
			if d.Public {
				made, err := taxiicore.ImportPublicDiscovery(ctx, db)
				if err != nil {
					return sum, err
				}
				if made {
					line += ", but made public (-public-discovery)"
				}
			}
			sum.Lines = append(sum.Lines, line)
		}
	}

	total := 0
	for _, c := range src.Collections {
		total += c.Objects
	}
	notImported := map[string]bool{} // collections, for their statuses
	prog := &progress{w: opts.Progress, every: opts.ProgressEvery, total: total, start: time.Now()}
	for _, c := range src.Collections {
		if badRoots[c.Collection.APIRoot] {
			notImported[c.Collection.ID] = true
			failed++
			sum.CollectionsFailed++
			sum.Lines = append(sum.Lines, fmt.Sprintf("ERROR collection %s: its API root %q was not imported", c.Collection.ID, c.Collection.APIRoot))
			prog.done += c.Objects
			continue
		}
		prog.collection = c.Collection.ID
		base := prog.done
		rep, err := taxiicore.ImportCollection(ctx, db, c.CollectionImport, taxiicore.ImportOptions{
			SkipBad:  opts.SkipBad,
			Progress: func(read int) { prog.update(base + read) },
		})
		prog.done = base + c.Objects
		where := fmt.Sprintf("collection %s (/%s/, %q)", c.Collection.ID, c.Collection.APIRoot, c.Collection.Title)
		for _, b := range rep.Bad {
			sum.Lines = append(sum.Lines, "ERROR "+where+": "+b.Error())
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return sum, err
		case taxiicore.IsBadObjects(err):
			notImported[c.Collection.ID] = true
			failed++
			sum.CollectionsFailed++
			sum.Lines = append(sum.Lines, fmt.Sprintf("ERROR %s: not imported for its %d bad objects above (-skip-bad imports the others)", where, len(rep.Bad)))
			continue
		case err != nil:
			notImported[c.Collection.ID] = true
			failed++
			sum.CollectionsFailed++
			sum.Lines = append(sum.Lines, "ERROR "+where+": "+err.Error())
			continue
		}
		if len(rep.Bad) > 0 {
			failed++
		}
		sum.Objects += rep.Imported
		sum.Duplicates += rep.Duplicates
		sum.Present += rep.Present
		sum.Shifted += rep.Shifted
		sum.MaxShift = max(sum.MaxShift, rep.MaxShift)
		var line string
		switch {
		case !rep.Created && rep.Imported == 0:
			sum.CollectionsKept++
			line = fmt.Sprintf("%s: already holds %d object versions, all the source has", where, rep.Existing)
		case rep.AlreadyImported:
			sum.CollectionsUpdated++
			line = fmt.Sprintf("%s: held %d object versions; %d the source has and it lacked imported, after them", where, rep.Existing, rep.Imported)
		default:
			sum.CollectionsImported++
			line = fmt.Sprintf("%s: %d object versions imported", where, rep.Imported)
		}
		if rep.Shifted > 0 {
			line += fmt.Sprintf(", %d date_added moved forward (at most %s) to be strictly increasing", rep.Shifted, rep.MaxShift)
		}
		if rep.Duplicates > 0 {
			line += fmt.Sprintf(", %d repeated versions left out", rep.Duplicates)
		}
		if len(rep.Bad) > 0 {
			line += fmt.Sprintf(", %d bad objects skipped", len(rep.Bad))
		}
		sum.Lines = append(sum.Lines, line)
	}
	prog.finish()

	if src.ReadStatuses != nil {
		jobs := &progress{w: opts.Progress, every: opts.ProgressEvery, start: time.Now(), what: "jobs"}
		noted := len(src.Notes)
		if err := src.ReadStatuses(ctx, jobs.update); err != nil {
			return sum, err
		}
		jobs.finish()
		for _, n := range src.Notes[noted:] {
			sum.Lines = append(sum.Lines, "note: "+n)
		}
	}
	for _, st := range src.Statuses {
		if notImported[st.CollectionID] {
			sum.Lines = append(sum.Lines, fmt.Sprintf("status %s: left out with its collection %s", st.ID, st.CollectionID))
			continue
		}
		created, err := taxiicore.ImportStatus(ctx, db, st)
		switch {
		case errors.Is(err, taxiicore.ErrStatusObjectsMissing):
			sum.StatusesWaiting++
			sum.Lines = append(sum.Lines, fmt.Sprintf("status %s: left out: %v (a later run imports it once they are there)", st.ID, err))
		case err != nil:
			failed++
			sum.Lines = append(sum.Lines, "ERROR "+err.Error())
		case created:
			sum.StatusesImported++
		default:
			sum.StatusesKept++
		}
	}

	f, err := importAccounts(ctx, pool, src.Accounts, opts.DryRun, &sum)
	if err != nil {
		return sum, err
	}
	failed += f
	sum.Elapsed = time.Since(start)
	if failed > 0 {
		return sum, fmt.Errorf("%d item(s) failed: %w", failed, ErrIncomplete)
	}
	return sum, nil
}

// rootPaths names where an API root answers.
func rootPaths(name string) string { return "/" + name + "/ (and /taxii2/" + name + "/)" }

// rootMaxContentLength is the max_content_length an imported root gets.
func rootMaxContentLength(r taxiicore.APIRoot) int64 {
	if r.MaxContentLength == 0 {
		return taxiicore.DefaultMaxContentLength
	}
	return r.MaxContentLength
}

// keptMaxContentLength reads the max_content_length of an existing root.
func keptMaxContentLength(ctx context.Context, db taxiicore.ImportDB, name string) (int64, error) {
	var n int64
	if err := db.QueryRow(ctx, `SELECT max_content_length FROM taxii_api_roots WHERE name = $1`, name).Scan(&n); err != nil {
		return 0, fmt.Errorf("reading API root %s: %w", name, err)
	}
	return n, nil
}

// importAccounts creates the accounts that do not exist yet; existing ones
// are left as they are (their passwords may have changed since). It returns
// how many failed.
func importAccounts(ctx context.Context, pool *pgxpool.Pool, accounts []Account, dry bool, sum *Summary) (int, error) {
	if len(accounts) == 0 {
		return 0, nil
	}
	existing, err := tokenservice.ListAccounts(ctx, pool)
	if err != nil {
		return 0, err
	}
	have := map[string]bool{}
	for _, a := range existing {
		have[a.Username] = true
	}
	failed := 0
	for _, a := range accounts {
		if have[a.Username] {
			sum.AccountsKept++
			sum.Lines = append(sum.Lines, "account "+a.Username+": exists, kept as it is")
			continue
		}
		if !dry {
			if err := tokenservice.CreateAccount(ctx, pool, a.Username, a.PasswordHash, a.Groups); err != nil {
				failed++
				sum.Lines = append(sum.Lines, "ERROR account "+a.Username+": "+err.Error())
				continue
			}
		}
		have[a.Username] = true
		sum.AccountsCreated++
		if a.Hashed {
			sum.PasswordsHashed++
		}
		line := "account " + a.Username + ": created"
		if len(a.Groups) > 0 {
			line += " in groups " + strings.Join(a.Groups, ",")
		}
		if a.Hashed {
			line += " (its plain-text password hashed with argon2id)"
		}
		sum.Lines = append(sum.Lines, line)
	}
	return failed, nil
}

// Write prints the summary.
func (s Summary) Write(w io.Writer, dry bool) {
	for _, l := range s.Lines {
		fmt.Fprintln(w, l)
	}
	verb := "imported"
	if dry {
		verb = "would import (dry run, nothing written)"
	}
	rate := ""
	if secs := s.Elapsed.Seconds(); secs > 0 && s.Objects > 0 {
		rate = fmt.Sprintf(" (%.0f objects/s)", float64(s.Objects)/secs)
	}
	fmt.Fprintf(w, "\n%s: %d API roots created, %d kept; %d collections imported, %d updated, %d already there, %d failed; "+
		"%d object versions%s, %d already there, %d date_added moved (at most %s), %d repeated versions left out; "+
		"%d accounts created (%d plain-text passwords hashed), %d kept; %d statuses imported, %d already there, %d waiting for their objects; in %s\n",
		verb, s.RootsCreated, s.RootsKept, s.CollectionsImported, s.CollectionsUpdated, s.CollectionsKept, s.CollectionsFailed,
		s.Objects, rate, s.Present, s.Shifted, s.MaxShift, s.Duplicates,
		s.AccountsCreated, s.PasswordsHashed, s.AccountsKept, s.StatusesImported, s.StatusesKept, s.StatusesWaiting, s.Elapsed.Round(time.Millisecond))
}

// progress prints objects/s and the time left, at most once per interval;
// for other things (what), how many were read.
type progress struct {
	w          io.Writer
	every      time.Duration
	total      int
	done       int
	start      time.Time
	last       time.Time
	collection string
	what       string
	printed    bool
}

func (p *progress) update(done int) {
	if p.w == nil {
		return
	}
	if p.what != "" {
		p.done = done
	}
	every := p.every
	if every <= 0 {
		every = time.Second
	}
	now := time.Now()
	if now.Sub(p.last) < every {
		return
	}
	p.last = now
	p.printed = true
	if p.what != "" {
		fmt.Fprintf(p.w, "reading %s: %d read\n", p.what, done)
		return
	}
	elapsed := now.Sub(p.start).Seconds()
	rate := float64(done) / max(elapsed, 1e-9)
	eta := "?"
	if rate > 0 && p.total >= done {
		eta = (time.Duration(float64(p.total-done)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "importing %d/%d objects (%.0f/s, about %s left), collection %s\n", done, p.total, rate, eta, p.collection)
}

func (p *progress) finish() {
	if p.w != nil && (p.printed || p.what != "") {
		what := p.what
		if what == "" {
			what = "objects"
		}
		fmt.Fprintf(p.w, "read %d %s in %s\n", p.done, what, time.Since(p.start).Round(time.Millisecond))
	}
}
