// Command benchgateway measures the gateway's cost on loopback, in one run:
// plain Caddy reverse_proxy, taxii_auth with a Bearer token, and taxii_auth
// with Basic credentials after the exchange cache is warm, all in front of
// the same small backend, with the same wrk connections and duration,
// repeated to show the noise. It prints a Markdown table of requests/s and
// the ratio of each to plain reverse_proxy.
//
//	go run ./cmd/benchgateway [-duration 10s] [-connections 32] [-rounds 2]
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchgateway:", err)
		os.Exit(1)
	}
}

type config struct {
	gateway     string
	wrk         string
	duration    time.Duration
	connections int
	threads     int
	rounds      int
}

func run(ctx context.Context, args []string) error {
	var cfg config
	fs := flag.NewFlagSet("benchgateway", flag.ContinueOnError)
	fs.StringVar(&cfg.gateway, "gateway", "", "gateway binary (default: build ./cmd/gateway into a temporary directory)")
	fs.StringVar(&cfg.wrk, "wrk", "wrk", "wrk binary")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "duration of each wrk run")
	fs.IntVar(&cfg.connections, "connections", 32, "wrk connections")
	fs.IntVar(&cfg.threads, "threads", 2, "wrk threads")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds of the three scenarios, interleaved (the table reports the median)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := exec.LookPath(cfg.wrk); err != nil {
		return fmt.Errorf("wrk not found (apt-get install -y wrk): %w", err)
	}
	tmp, err := os.MkdirTemp("", "benchgateway-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	if cfg.gateway == "" {
		cfg.gateway = filepath.Join(tmp, "gateway")
		build := exec.CommandContext(ctx, "go", "build", "-o", cfg.gateway, "./cmd/gateway")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building the gateway: %w", err)
		}
	}

	backendAddr, err := serve(ctx, backendHandler())
	if err != nil {
		return fmt.Errorf("starting the backend: %w", err)
	}
	ts, err := newTokenService()
	if err != nil {
		return err
	}
	tokenAddr, err := serve(ctx, ts.handler())
	if err != nil {
		return fmt.Errorf("starting the token endpoint: %w", err)
	}

	plainPort, authPort, sameHeaderPort := freePort(), freePort(), freePort()
	caddyfile := fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
	log {
		level WARN
	}
}

http://127.0.0.1:%[1]d {
	reverse_proxy %[3]s {
		transport http {
			keepalive_idle_conns_per_host 256
		}
	}
}

# The plain proxy given the same requests as the Bearer runs: the token is
# parsed and dropped, so the comparison isolates what taxii_auth does.
http://127.0.0.1:%[5]d {
	request_header -Authorization
	reverse_proxy %[3]s {
		transport http {
			keepalive_idle_conns_per_host 256
		}
	}
}

http://127.0.0.1:%[2]d {
	taxii_auth {
		jwks_url http://%[4]s/.well-known/jwks.json
		token_url http://%[4]s/management/auth
	}
	reverse_proxy %[3]s {
		transport http {
			keepalive_idle_conns_per_host 256
		}
	}
}
`, plainPort, authPort, backendAddr, tokenAddr, sameHeaderPort)
	cfPath := filepath.Join(tmp, "Caddyfile")
	if err := os.WriteFile(cfPath, []byte(caddyfile), 0o600); err != nil {
		return err
	}
	gw := exec.CommandContext(ctx, cfg.gateway, "run", "--config", cfPath, "--adapter", "caddyfile")
	gw.Stderr = os.Stderr
	gw.Cancel = func() error { return gw.Process.Signal(os.Interrupt) }
	gw.WaitDelay = 10 * time.Second
	if err := gw.Start(); err != nil {
		return fmt.Errorf("starting the gateway: %w", err)
	}
	defer func() {
		_ = gw.Process.Signal(os.Interrupt)
		_ = gw.Wait()
	}()

	plainURL := fmt.Sprintf("http://127.0.0.1:%d/api1/collections/", plainPort)
	authURL := fmt.Sprintf("http://127.0.0.1:%d/api1/collections/", authPort)
	sameHeaderURL := fmt.Sprintf("http://127.0.0.1:%d/api1/collections/", sameHeaderPort)
	bearerHeader := "Bearer " + ts.token("bench-bearer")
	basicHeader := "Basic " + base64.StdEncoding.EncodeToString([]byte("bench:bench-password"))

	// Ready when all three answer 200; this also warms the Basic cache.
	if err := waitOK(ctx, plainURL, ""); err != nil {
		return err
	}
	if err := waitOK(ctx, sameHeaderURL, bearerHeader); err != nil {
		return err
	}
	if err := waitOK(ctx, authURL, bearerHeader); err != nil {
		return err
	}
	if err := waitOK(ctx, authURL, basicHeader); err != nil {
		return err
	}
	exchangesBefore := ts.exchanges()

	scenarios := []struct{ name, url, header string }{
		{"plain reverse_proxy", plainURL, ""},
		{"plain reverse_proxy, same Bearer header dropped", sameHeaderURL, bearerHeader},
		{"taxii_auth + Bearer", authURL, bearerHeader},
		{"taxii_auth + Basic (warm cache)", authURL, basicHeader},
	}
	results := make([][]float64, len(scenarios))
	cpuPerReq := make([][]float64, len(scenarios))
	for round := range cfg.rounds {
		for i, s := range scenarios {
			cpuBefore, err := processCPU(gw.Process.Pid)
			if err != nil {
				return err
			}
			res, err := runWrk(ctx, cfg, s.url, s.header)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", s.name, round+1, err)
			}
			cpuAfter, err := processCPU(gw.Process.Pid)
			if err != nil {
				return err
			}
			us := float64((cpuAfter - cpuBefore).Microseconds()) / float64(res.requests)
			fmt.Fprintf(os.Stderr, "round %d  %-32s %10.0f req/s  %6.1f µs Caddy CPU/request\n", round+1, s.name, res.rps, us)
			results[i] = append(results[i], res.rps)
			cpuPerReq[i] = append(cpuPerReq[i], us)
		}
	}

	fmt.Printf("Gateway throughput on loopback: wrk -t%d -c%d -d%s per run, %d interleaved rounds (median), %d CPUs shared by wrk, Caddy and the backend.\n\n",
		cfg.threads, cfg.connections, cfg.duration, cfg.rounds, runtime.NumCPU())
	header := "| scenario |"
	sep := "|---|"
	for r := range cfg.rounds {
		header += fmt.Sprintf(" run %d (req/s) |", r+1)
		sep += "---:|"
	}
	fmt.Println(header + " median (req/s) | ratio to plain | ratio to plain with the same header | Caddy CPU per request (median) | plain's CPU / this CPU |")
	fmt.Println(sep + "---:|---:|---:|---:|---:|")
	plain, plainCPU := median(results[0]), median(cpuPerReq[0])
	sameHeader := median(results[1])
	for i, s := range scenarios {
		row := "| " + s.name + " |"
		for _, v := range results[i] {
			row += fmt.Sprintf(" %.0f |", v)
		}
		m, c := median(results[i]), median(cpuPerReq[i])
		row += fmt.Sprintf(" %.0f | %.1f%% | %.1f%% | %.1f µs | %.1f%% |", m, 100*m/plain, 100*m/sameHeader, c, 100*plainCPU/c)
		fmt.Println(row)
	}
	fmt.Println("\nOn a shared machine req/s moves with other load; Caddy's CPU time per request (from /proc) is the steadier measure of the module's cost.")
	fmt.Println("The second row receives the same requests as the Bearer runs (a JWT in every request, dropped before the backend): what any token-carrying client costs, with or without taxii_auth.")
	fmt.Printf("\nToken exchanges during the Basic runs: %d (the warm cache serves every request).\n", ts.exchanges()-exchangesBefore)
	return nil
}

var (
	rpsLine      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	requestsLine = regexp.MustCompile(`([0-9]+) requests in`)
)

type wrkResult struct {
	rps      float64
	requests int64
}

func runWrk(ctx context.Context, cfg config, url, auth string) (wrkResult, error) {
	args := []string{
		"-t" + strconv.Itoa(cfg.threads), "-c" + strconv.Itoa(cfg.connections),
		"-d" + strconv.Itoa(int(cfg.duration.Seconds())) + "s", "--latency",
	}
	if auth != "" {
		args = append(args, "-H", "Authorization: "+auth)
	}
	args = append(args, url)
	out, err := exec.CommandContext(ctx, cfg.wrk, args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	if strings.Contains(string(out), "Non-2xx or 3xx responses") {
		return wrkResult{}, fmt.Errorf("wrk saw error responses:\n%s", out)
	}
	m, n := rpsLine.FindSubmatch(out), requestsLine.FindSubmatch(out)
	if m == nil || n == nil {
		return wrkResult{}, fmt.Errorf("no request counts in wrk output:\n%s", out)
	}
	var res wrkResult
	if res.rps, err = strconv.ParseFloat(string(m[1]), 64); err != nil {
		return wrkResult{}, err
	}
	if res.requests, err = strconv.ParseInt(string(n[1]), 10, 64); err != nil || res.requests == 0 {
		return wrkResult{}, fmt.Errorf("wrk completed no requests:\n%s", out)
	}
	return res, nil
}

// processCPU is the user+system CPU time pid has used (Linux /proc).
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the gateway's CPU time: %w", err)
	}
	// Fields after the parenthesized command name; utime and stime are
	// fields 14 and 15 of the whole line, in clock ticks (USER_HZ = 100).
	rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// backendHandler answers like a small TAXII endpoint.
func backendHandler() http.Handler {
	body := []byte(`{"collections":[{"id":"91a7b528-80eb-42ed-a74d-c6fbd5a26116","title":"Bench","can_read":true,"can_write":true,"media_types":["application/stix+json;version=2.1"]}]}`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "Authorization reached the backend", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/taxii+json;version=2.1")
		_, _ = w.Write(body)
	})
}

// tokenService is the token service contract, just enough for the bench:
// one account, Ed25519 tokens, a JWKS.
type tokenService struct {
	kid  string
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	n    atomic.Int64
}

func newTokenService() (*tokenService, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &tokenService{kid: "bench", priv: priv, pub: pub}, nil
}

func (ts *tokenService) exchanges() int64 { return ts.n.Load() }

func (ts *tokenService) token(sub string) string {
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": "taxiway", "aud": "taxii", "sub": sub, "groups": []string{"bench"},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": sub + "-" + now.Format(time.RFC3339Nano),
	})
	t.Header["kid"] = ts.kid
	s, err := t.SignedString(ts.priv)
	if err != nil {
		panic(err) // Ed25519 signing cannot fail with a valid key
	}
	return s
}

func (ts *tokenService) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /management/auth", func(w http.ResponseWriter, r *http.Request) {
		ts.n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.PostFormValue("username") != "bench" || r.PostFormValue("password") != "bench-password" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid credentials"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"token": ts.token("bench")})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(ts.pub),
			"kid": ts.kid, "alg": "EdDSA", "use": "sig",
		}}})
	})
	return mux
}

// serve runs h on a free loopback port until ctx ends.
func serve(ctx context.Context, h http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("serving", "error", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return l.Addr().String(), nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitOK polls url until it answers 200, for at most 30 seconds.
func waitOK(ctx context.Context, url, auth string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer 200 in time: %s", url, last)
}

// median is robust to one run disturbed by other load on the machine.
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
