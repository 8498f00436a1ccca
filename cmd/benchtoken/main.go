// Command benchtoken measures the token service on loopback: login
// throughput and latency at the configured argon2id cost with concurrent
// clients, and how long a failed login takes for each kind of failure and
// stored hash (which must not tell them apart). It starts a private Postgres
// cluster in a temporary folder, so it needs nothing running. It prints
// Markdown (scripts/bench.sh collects it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/pgcluster"
	"github.com/taxiway/taxiway/tokenservice"
)

func main() {
	clients := flag.Int("clients", 4, "concurrent login clients")
	duration := flag.Duration("duration", 5*time.Second, "length of the login run")
	argon := flag.String("argon2", tokenservice.DefaultArgon2Params().String(), "argon2id cost of the account's hash (m=KiB,t=passes,p=threads)")
	hashes := flag.Int("max-concurrent-hashes", 0, "the service's hash concurrency bound (0: number of CPUs)")
	rounds := flag.Int("timing-rounds", 15, "failed logins per case in the timing run (sequential, cases interleaved)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *clients, *duration, *argon, *hashes, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "benchtoken:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, clients int, duration time.Duration, argon string, hashes, rounds int) error {
	params, err := tokenservice.ParseArgon2Params(argon)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "taxiway-benchtoken-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: tmp + "/data"})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	pool, err := pgxpool.New(ctx, cluster.URL("postgres"))
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := tokenservice.Migrate(ctx, pool); err != nil {
		return err
	}
	const password = "bench-password-1"
	hash, err := tokenservice.HashPassword(password, params)
	if err != nil {
		return err
	}
	if err := tokenservice.CreateAccount(ctx, pool, "bench", hash, []string{"analysts"}); err != nil {
		return err
	}
	cfg := tokenservice.DefaultConfig()
	cfg.PasswordHash = params
	cfg.MaxConcurrentHashes = hashes
	cfg.HashQueueWait = 30 * time.Second // measure queueing as latency, not as 503s
	// The timing run fails on purpose, many times, from one address.
	cfg.RateLimit.PerAddress, cfg.RateLimit.PerPair = 1<<30, 1<<30
	srv, err := tokenservice.New(ctx, pool, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	endpoint := "http://" + ln.Addr().String() + "/management/auth"
	body := url.Values{"username": {"bench"}, "password": {password}}.Encode()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	post := func(body string, want int) error {
		resp, err := client.Post(endpoint, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != want {
			return fmt.Errorf("login answered %d, want %d", resp.StatusCode, want)
		}
		return nil
	}
	login := func() error { return post(body, http.StatusOK) }
	if err := login(); err != nil { // warm up and check
		return err
	}

	var (
		mu        sync.Mutex
		latencies []time.Duration
		firstErr  error // every client error, joined
		wg        sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(duration)
	for range clients {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t := time.Now()
				if err := login(); err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return firstErr
	}
	if len(latencies) == 0 {
		return errors.New("no login completed")
	}
	slices.Sort(latencies)

	slots := hashes
	if slots == 0 {
		slots = runtime.GOMAXPROCS(0)
	}
	fmt.Printf("Login over HTTP on loopback, argon2id %s, %d clients for %s, %d hash slots, GOMAXPROCS %d:\n\n",
		params, clients, duration, slots, runtime.GOMAXPROCS(0))
	fmt.Println("| measure | value |")
	fmt.Println("|---|---|")
	fmt.Printf("| logins | %d |\n", len(latencies))
	fmt.Printf("| throughput | %.1f logins/s |\n", float64(len(latencies))/elapsed.Seconds())
	fmt.Printf("| latency median | %s |\n", pct(latencies, 0.50))
	fmt.Printf("| latency p95 | %s |\n", pct(latencies, 0.95))
	fmt.Println()
	return failureTiming(ctx, pool, params, rounds, func(user, pw string) error {
		return post(url.Values{"username": {user}, "password": {pw}}.Encode(), http.StatusUnauthorized)
	})
}

func pct(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted)-1) * p)
	return sorted[i].Round(100 * time.Microsecond)
}
