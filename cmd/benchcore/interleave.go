package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// side is one build in an interleaved comparison: its core, running on its
// own database.
type side struct {
	label, bin, dbURL string
	pool              *pgxpool.Pool
	paths             []readPath
	client            client // of the round's core
}

// comparison is an interleaved run: per measurement, the baseline's and the
// candidate's timing.
type comparison struct {
	objects, rounds        int
	base, cand             []timing
	baseIngest, candIngest float64 // objects per second, one client
	baseBin, candBin       string
}

// loadBaseline loads the baseline's database with the baseline's own
// benchcore (loader), so that its rows have the baseline's schema.
func loadBaseline(ctx context.Context, loader, bin, dbURL string, objects int) error {
	cmd := exec.CommandContext(ctx, loader, "-database-url", dbURL, "-taxiway-bin", bin, "-objects", fmt.Sprint(objects),
		"-small", "0", "-reads=false", "-envelopes", "0", "-ingest-warmup", "0", "-concurrent-ingest=false", "-large-objects", "0")
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("loading the baseline's database with %s: %w", loader, err)
	}
	return nil
}

// compareInterleaved measures two builds on two databases loaded alike,
// alternating request by request (and envelope by envelope for the ingest)
// and swapping which goes first each time, so that both meet the same
// machine load. Each of the rounds starts both cores anew and the samples of
// all rounds are pooled: where the scheduler happens to place a process
// biases one run by up to 20 % either way on 2 CPUs, and that averages out.
func compareInterleaved(ctx context.Context, baseBin, baseURL, candBin, candURL string, objects, rounds, n, warmup, envelopes int) (comparison, error) {
	cmp := comparison{objects: objects, rounds: rounds, baseBin: baseBin, candBin: candBin}
	var sides [2]side
	for i, s := range []struct{ label, bin, dbURL string }{{"baseline", baseBin, baseURL}, {"candidate", candBin, candURL}} {
		pool, err := pgxpool.New(ctx, s.dbURL)
		if err != nil {
			return cmp, err
		}
		defer pool.Close()
		points, err := pointsFrom(ctx, pool)
		if err != nil {
			return cmp, fmt.Errorf("%s: %w", s.label, err)
		}
		sides[i] = side{label: s.label, bin: s.bin, dbURL: s.dbURL, pool: pool, paths: readPaths(points)}
	}
	reads := make([][2][]time.Duration, len(sides[0].paths)+1) // the paths, then the next chain
	var ingest [2][]time.Duration
	for r := 0; r < rounds; r++ {
		if err := interleaveRound(ctx, sides, reads, &ingest, n, warmup, envelopes); err != nil {
			return cmp, fmt.Errorf("round %d: %w", r+1, err)
		}
	}
	for p, d := range reads {
		name := nextChainName
		if p < len(sides[0].paths) {
			name = sides[0].paths[p].name
		}
		cmp.base, cmp.cand = append(cmp.base, timingOf(name, d[0])), append(cmp.cand, timingOf(name, d[1]))
	}
	rate := func(d []time.Duration) float64 {
		var total time.Duration
		for _, x := range d {
			total += x
		}
		return float64(len(d)*1000) / total.Seconds()
	}
	cmp.baseIngest, cmp.candIngest = rate(ingest[0]), rate(ingest[1])
	return cmp, nil
}

// interleaveRound starts both cores and adds one round's samples to reads
// (per path, per side) and ingest (per side, the time of each envelope).
func interleaveRound(ctx context.Context, sides [2]side, reads [][2][]time.Duration, ingest *[2][]time.Duration, n, warmup, envelopes int) error {
	for i := range sides {
		cmd, base, err := startCore(ctx, sides[i].bin, sides[i].dbURL)
		if err != nil {
			return fmt.Errorf("starting the %s core: %w", sides[i].label, err)
		}
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}()
		sides[i].client = client{http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}, base: base}
	}
	// alternate runs f on both sides n times, the first side going first
	// on even rounds, and appends what each returns to d.
	alternate := func(n int, d *[2][]time.Duration, f func(s side) ([]time.Duration, error)) error {
		for k := 0; k < n; k++ {
			for j := range 2 {
				i := (k + j) % 2
				got, err := f(sides[i])
				if err != nil {
					return fmt.Errorf("%s: %w", sides[i].label, err)
				}
				if d != nil {
					d[i] = append(d[i], got...)
				}
			}
		}
		return nil
	}
	for p := range sides[0].paths {
		get := func(s side) ([]time.Duration, error) {
			start := time.Now()
			_, _, err := s.client.get(s.paths[p].path)
			return []time.Duration{time.Since(start)}, err
		}
		if err := alternate(10, nil, get); err != nil { // warm-up
			return err
		}
		if err := alternate(n, &reads[p], get); err != nil {
			return err
		}
	}
	err := alternate(max(n/10, 1), &reads[len(reads)-1], func(s side) ([]time.Duration, error) {
		return s.client.nextChain(objectsPath+"?limit=100", 10)
	})
	if err != nil {
		return err
	}

	// The ingest: untimed envelopes on both, one checkpoint (it covers
	// both databases), then envelopes in alternation.
	for _, s := range sides {
		if warmup > 0 {
			if _, err := s.client.ingest(ctx, objectsPath, warmup, 1); err != nil {
				return fmt.Errorf("%s: %w", s.label, err)
			}
		}
	}
	if _, err := sides[0].pool.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint before the ingest measurement: %w", err)
	}
	return alternate(envelopes, ingest, func(s side) ([]time.Duration, error) {
		rate, err := s.client.ingest(ctx, objectsPath, 1, 1)
		return []time.Duration{time.Duration(float64(time.Second) * 1000 / rate)}, err
	})
}

func printComparison(w io.Writer, c comparison) {
	fmt.Fprintf(w, "\n### %d objects: baseline and candidate interleaved request by request, %d rounds\n\n", c.objects, c.rounds)
	fmt.Fprintf(w, "Baseline: `%s`, candidate: `%s`, each on its own database loaded alike in the same Postgres.\n\n", c.baseBin, c.candBin)
	fmt.Fprintln(w, "| measurement | baseline median / p95 ms | candidate median / p95 ms | median ratio |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	for i, b := range c.base {
		k := c.cand[i]
		fmt.Fprintf(w, "| %s | %s / %s | %s / %s | %.2f |\n", b.name, ms(b.median), ms(b.p95), ms(k.median), ms(k.p95), float64(k.median)/float64(b.median))
	}
	lastFirst := func(t []timing) float64 { return float64(t[1].median) / float64(t[0].median) }
	fmt.Fprintf(w, "| last/first page median ratio | %.2f | %.2f | |\n", lastFirst(c.base), lastFirst(c.cand))
	fmt.Fprintf(w, "| ingest, 1,000-object envelopes, one client (objects/s) | %.0f | %.0f | %.2f |\n", c.baseIngest, c.candIngest, c.candIngest/c.baseIngest)
}
