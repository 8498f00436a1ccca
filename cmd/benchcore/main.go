// Command benchcore measures taxiicore on loopback against a large
// collection: it bulk-loads objects into Postgres, runs `taxiway core` in a
// separate process (so its peak RSS is the core's alone), and prints a
// Markdown table of latencies, the ingest rate and the core's peak memory.
//
//	go run ./cmd/benchcore -objects 1000000
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/pgcluster"
	"github.com/taxiway/taxiway/taxiicore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcore:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	dbURL := flag.String("database-url", os.Getenv("TAXIWAY_BENCH_DATABASE_URL"), "use this (empty) database instead of a private cluster")
	objects := flag.Int("objects", 1_000_000, "distinct objects to load; every 10th gets 3 versions")
	small := flag.Int("small", 100_000, "also measure at this size first (0 to skip), for the memory comparison")
	requests := flag.Int("requests", 200, "timed requests per read measurement")
	envelopes := flag.Int("envelopes", 20, "1,000-object envelopes for the ingest measurement")
	warmup := flag.Int("ingest-warmup", 20, "untimed 1,000-object envelopes before each ingest measurement")
	bin := flag.String("taxiway-bin", "", "taxiway binary (default: build ./cmd/taxiway)")
	baseline := flag.String("baseline-bin", "", "also measure this taxiway binary, alternating with -taxiway-bin on the same data, to compare builds under the same machine load")
	baselineLoader := flag.String("baseline-loader", "", "with -baseline-bin, for a baseline whose schema differs: the baseline's own benchcore, which loads a second database of the private cluster; the two builds are then measured on their own databases, request by request in alternation, each of -rounds starting both cores anew (-small does not apply)")
	baselineDB := flag.String("baseline-database-url", "", "with -baseline-loader: the (empty) database the baseline loads (default: a database of the private cluster)")
	rounds := flag.Int("rounds", 1, "with -baseline-bin: alternations of baseline and candidate per size")
	reads := flag.Bool("reads", true, "measure the read paths (false: ingest only)")
	concurrent := flag.Bool("concurrent-ingest", true, "also measure ingest with two concurrent clients")
	largeN := flag.Int("large-objects", 48, "objects of about 1 MiB for the page byte cap measurement (0 to skip)")
	largeReaders := flag.Int("large-readers", 16, "concurrent readers in the page byte cap measurement")
	uncapped := flag.Bool("large-uncapped", true, "also measure the large-object reads with the byte cap lifted, for comparison")
	pgSettings := settingsFlag{}
	flag.Var(pgSettings, "pg-setting", "name=value for the private Postgres cluster (repeatable); default: the tuning below")
	flag.Parse()

	usedSettings := map[string]string{} // none when -database-url is given: that server's own
	tmp, err := os.MkdirTemp("", "taxiway-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if *dbURL == "" {
		fmt.Fprintln(os.Stderr, "starting a private Postgres cluster in", tmp)
		settings := benchSettings()
		maps.Copy(settings, pgSettings)
		usedSettings = settings
		fmt.Fprintln(os.Stderr, "postgres settings:", settings)
		c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(tmp, "pg"), Settings: settings})
		if err != nil {
			return err
		}
		defer c.Stop()
		if err := c.EnsureDatabase(ctx, "bench"); err != nil {
			return err
		}
		*dbURL = c.URL("bench")
		if *baselineLoader != "" && *baselineDB == "" {
			if err := c.EnsureDatabase(ctx, "baseline"); err != nil {
				return err
			}
			*baselineDB = c.URL("baseline")
		}
	}
	if *baselineLoader != "" && (*baseline == "" || *baselineDB == "") {
		return fmt.Errorf("-baseline-loader needs -baseline-bin, and -baseline-database-url with -database-url")
	}
	if *bin == "" {
		*bin = filepath.Join(tmp, "taxiway")
		fmt.Fprintln(os.Stderr, "building ./cmd/taxiway")
		build := exec.CommandContext(ctx, "go", "build", "-o", *bin, "./cmd/taxiway")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building taxiway: %w", err)
		}
	}
	pool, err := pgxpool.New(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := taxiicore.Migrate(ctx, pool); err != nil {
		return err
	}
	ld, err := newLoader(ctx, pool)
	if err != nil {
		return err
	}

	if *baselineLoader != "" {
		if err := ld.loadTo(ctx, *objects); err != nil {
			return err
		}
		if err := loadBaseline(ctx, *baselineLoader, *baseline, *baselineDB, *objects); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "loaded %d objects into each database; measuring both builds in alternation\n", *objects)
		cmp, err := compareInterleaved(ctx, *baseline, *baselineDB, *bin, *dbURL, *objects, max(*rounds, 1), *requests, *warmup, *envelopes)
		if err != nil {
			return err
		}
		printComparison(os.Stdout, cmp)
		return nil
	}

	var results []sizeResult
	sizes := []int{*objects}
	if *small > 0 && *small < *objects {
		sizes = []int{*small, *objects}
	}
	for _, n := range sizes {
		start := time.Now()
		if err := ld.loadTo(ctx, n); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "loaded %d objects (%d rows) in %s\n", ld.objects, ld.rows, time.Since(start).Round(time.Second))
		if *baseline == "" {
			res, err := measure(ctx, *bin, *dbURL, ld, *requests, *warmup, *envelopes, *reads, *concurrent)
			if err != nil {
				return err
			}
			results = append(results, res)
			continue
		}
		for r := 1; r <= max(*rounds, 1); r++ {
			for _, b := range []struct{ label, bin string }{{"baseline", *baseline}, {"candidate", *bin}} {
				res, err := measure(ctx, b.bin, *dbURL, ld, *requests, *warmup, *envelopes, *reads, *concurrent)
				if err != nil {
					return err
				}
				res.label = fmt.Sprintf("%s (%s), round %d", b.label, b.bin, r)
				results = append(results, res)
			}
		}
	}
	var capResults []pageCapResult
	if *largeN > 0 {
		const size = 1 << 20
		if err := ensureLargeObjects(ctx, pool, *bin, *dbURL, *largeN, size); err != nil {
			return err
		}
		runs := []struct {
			label string
			cap   int64
		}{{fmt.Sprintf("page byte cap %d MiB (default)", taxiicore.DefaultMaxPageBytes>>20), taxiicore.DefaultMaxPageBytes}}
		if *uncapped {
			runs = append(runs, struct {
				label string
				cap   int64
			}{"byte cap lifted (count cap only, as before)", 1 << 40})
		}
		for _, run := range runs {
			fmt.Fprintln(os.Stderr, "page byte cap measurement:", run.label)
			r, err := measurePageCap(ctx, *bin, *dbURL, run.label, run.cap, *largeReaders, 2, *largeN, size)
			if err != nil {
				return err
			}
			capResults = append(capResults, r)
		}
	}
	printReport(os.Stdout, results)
	printPageCapReport(os.Stdout, capResults)
	fmt.Printf("\nMachine: %d CPUs (%s/%s), %s. Core and Postgres on loopback/unix socket; one client, sequential requests, unless a row says otherwise.\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Printf("Ingest: %d timed envelopes of 1,000 new objects into the measured collection, after %d untimed ones and a CHECKPOINT; Postgres settings: %v (stock otherwise).\n",
		*envelopes, *warmup, usedSettings)
	return nil
}

// benchSettings is the private cluster's tuning: none beyond Postgres's
// defaults (durable commits, full-page writes), so the figures are what a
// stock server gives.
func benchSettings() map[string]string { return map[string]string{} }

// settingsFlag collects repeated -pg-setting name=value flags.
type settingsFlag map[string]string

func (f settingsFlag) String() string { return fmt.Sprint(map[string]string(f)) }

func (f settingsFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q is not name=value", v)
	}
	f[name] = value
	return nil
}
