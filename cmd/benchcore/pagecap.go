package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The page byte cap's measurement: a collection of large objects read by
// many clients at once, each asking for the largest page (1,000 objects).
// Without the cap every reader would hold its whole collection in memory;
// with it, a page holds at most the cap plus one object.
const largeCollection = "6c1d8e2a-3b4f-4a5e-8c7d-9e0f1a2b3c4d"

// pageCapResult is one run of the readers against a fresh core.
type pageCapResult struct {
	label      string
	readers    int
	rounds     int
	objects    int
	objectSize int
	pages      int
	elapsed    time.Duration
	peakRSSKiB int
}

// ensureLargeObjects makes the large collection hold n objects of about
// size bytes each, posted through a core as clients would.
func ensureLargeObjects(ctx context.Context, pool *pgxpool.Pool, bin, dbURL string, n, size int) error {
	if _, err := pool.Exec(ctx, `
		INSERT INTO taxii_collections (id, api_root, title) VALUES ('`+largeCollection+`', 'bench', 'Large objects') ON CONFLICT DO NOTHING;
		INSERT INTO taxii_grants VALUES ('`+largeCollection+`', 'user:`+benchUser+`', true, true) ON CONFLICT DO NOTHING;`); err != nil {
		return fmt.Errorf("preparing the large-object collection: %w", err)
	}
	var have int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM taxii_objects WHERE collection_id = $1`, largeCollection).Scan(&have); err != nil {
		return fmt.Errorf("counting large objects: %w", err)
	}
	if have >= n {
		return nil
	}
	cmd, base, err := startCore(ctx, bin, dbURL)
	if err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	filler := strings.Repeat("x", size)
	for i := have; i < n; i++ {
		obj := map[string]any{"type": "note", "spec_version": "2.1", "id": "note--" + uuid.NewString(),
			"created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z",
			"content": filler, "object_refs": []string{"indicator--" + uuid.NewString()}}
		body, _ := json.Marshal(map[string]any{"objects": []any{obj}})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+largePath(), bytes.NewReader(body))
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		req.Header.Set("X-Authenticated-User", benchUser)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("posting a large object: %w", err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted || !bytes.Contains(b, []byte(`"success_count":1`)) {
			return fmt.Errorf("posting a large object: %d %.200s", res.StatusCode, b)
		}
	}
	return nil
}

func largePath() string { return "/" + benchRoot + "/collections/" + largeCollection + "/objects/" }

// measurePageCap starts a fresh core with pageBytes as its cap (so that
// its peak RSS is this run's alone) and has readers clients each page
// through the whole collection, following next, rounds times.
func measurePageCap(ctx context.Context, bin, dbURL, label string, pageBytes int64, readers, rounds, objects, size int) (pageCapResult, error) {
	cmd, base, err := startCore(ctx, bin, dbURL, "-max-page-bytes", strconv.FormatInt(pageBytes, 10))
	if err != nil {
		return pageCapResult{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	c := client{http: &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: readers}}, base: base}
	res := pageCapResult{label: label, readers: readers, rounds: rounds, objects: objects, objectSize: size}
	type outcome struct {
		pages, objects int
		err            error
	}
	done := make(chan outcome, readers)
	start := time.Now()
	for range readers {
		go func() {
			var o outcome
			for range rounds {
				p := largePath() + "?limit=1000"
				for {
					_, body, err := c.get(p)
					if err != nil {
						o.err = err
						done <- o
						return
					}
					var env struct {
						More    bool              `json:"more"`
						Next    string            `json:"next"`
						Objects []json.RawMessage `json:"objects"`
					}
					if err := json.Unmarshal(body, &env); err != nil {
						o.err = err
						done <- o
						return
					}
					o.pages++
					o.objects += len(env.Objects)
					if !env.More {
						break
					}
					p = largePath() + "?limit=1000&next=" + url.QueryEscape(env.Next)
				}
			}
			done <- o
		}()
	}
	for range readers {
		o := <-done
		if o.err != nil {
			return pageCapResult{}, o.err
		}
		if o.objects != objects*rounds {
			return pageCapResult{}, fmt.Errorf("a reader got %d objects, want %d", o.objects, objects*rounds)
		}
		res.pages += o.pages
	}
	res.elapsed = time.Since(start)
	res.peakRSSKiB = peakRSS(cmd.Process.Pid)
	return res, nil
}

func printPageCapReport(w io.Writer, results []pageCapResult) {
	if len(results) == 0 {
		return
	}
	r0 := results[0]
	fmt.Fprintf(w, "\n### Page byte cap: %d concurrent readers, each paging %d times through %d objects of %.1f MiB (limit=1000, following next)\n\n",
		r0.readers, r0.rounds, r0.objects, float64(r0.objectSize)/(1<<20))
	fmt.Fprintln(w, "| core | core peak RSS (VmHWM) | pages served | objects per page | wall time |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, r := range results {
		total := r.objects * r.readers * r.rounds
		fmt.Fprintf(w, "| %s | %.1f MiB | %d | %.1f | %.1f s |\n", r.label, float64(r.peakRSSKiB)/1024, r.pages,
			float64(total)/float64(max(r.pages, 1)), r.elapsed.Seconds())
	}
}
