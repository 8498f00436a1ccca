package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// timing is one read measurement.
type timing struct {
	name        string
	median, p95 time.Duration
	n           int
}

// sizeResult is everything measured at one collection size.
type sizeResult struct {
	label         string // which build, when comparing two
	objects, rows int
	timings       []timing
	ingestRate    float64 // objects per second, one client
	ingestRate2   float64 // objects per second, two concurrent clients (0: not measured)
	copyRate      float64 // the COPY floor: the same rows by raw COPY, rows per second
	peakRSSKiB    int
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startCore runs `taxiway core` as its own process and waits until ready;
// extra are further flags.
func startCore(ctx context.Context, bin, dbURL string, extra ...string) (*exec.Cmd, string, error) {
	api, err := freePort()
	if err != nil {
		return nil, "", err
	}
	ops, err := freePort()
	if err != nil {
		return nil, "", err
	}
	args := append([]string{"core", "-database-url", dbURL, "-listen", api, "-ops-listen", ops, "-max-page-size", "1000"}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	logf, err := os.CreateTemp("", "taxiway-bench-core-*.log")
	if err != nil {
		return nil, "", err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// The log is kept only when the core fails to start.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	for i := 0; i < 300; i++ {
		res, err := http.Get("http://" + ops + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				logf.Close()
				os.Remove(logf.Name())
				return cmd, "http://" + api, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, "", fmt.Errorf("the core did not become ready; see %s", logf.Name())
}

// peakRSS reads VmHWM (KiB) of pid.
func peakRSS(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return kb
		}
	}
	return 0
}

type client struct {
	http *http.Client
	base string
}

func (c client) get(path string) (*http.Response, []byte, error) {
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	req.Header.Set("X-Authenticated-User", benchUser)
	res, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d %s", path, res.StatusCode, body)
	}
	return res, body, err
}

// timeGets measures path n times after a short warm-up.
func (c client) timeGets(name, path string, n int) (timing, error) {
	for i := 0; i < 10; i++ {
		if _, _, err := c.get(path); err != nil {
			return timing{}, err
		}
	}
	d := make([]time.Duration, n)
	for i := range d {
		start := time.Now()
		if _, _, err := c.get(path); err != nil {
			return timing{}, err
		}
		d[i] = time.Since(start)
	}
	return timingOf(name, d), nil
}

func measure(ctx context.Context, bin, dbURL string, ld *loader, n, warmup, envelopes int, reads, concurrent bool) (sizeResult, error) {
	cmd, base, err := startCore(ctx, bin, dbURL)
	if err != nil {
		return sizeResult{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	c := client{http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}, base: base}
	var paths []readPath
	if reads {
		points, err := pointsFrom(ctx, ld.pool)
		if err != nil {
			return sizeResult{}, err
		}
		paths = readPaths(points)
	}
	res := sizeResult{objects: ld.objects, rows: ld.rows}
	for _, r := range paths {
		t, err := c.timeGets(r.name, r.path, n)
		if err != nil {
			return sizeResult{}, err
		}
		res.timings = append(res.timings, t)
	}
	if reads {
		// Following next through ten pages checks the cursor path too.
		t, err := c.timeNextChain(objectsPath+"?limit=100", 10, n/10)
		if err != nil {
			return sizeResult{}, err
		}
		res.timings = append(res.timings, t)
	}

	if res.ingestRate, err = c.measureIngest(ctx, ld, objectsPath, warmup, envelopes, 1); err != nil {
		return sizeResult{}, err
	}
	if concurrent {
		if res.ingestRate2, err = c.measureIngest(ctx, ld, objectsPath, warmup, envelopes, 2); err != nil {
			return sizeResult{}, err
		}
	}
	if res.copyRate, err = copyFloor(ctx, ld, warmup, envelopes); err != nil {
		return sizeResult{}, err
	}
	res.peakRSSKiB = peakRSS(cmd.Process.Pid)
	// Ingested objects are part of the collection from now on.
	return res, nil
}

func (c client) timeNextChain(path string, pages, chains int) (timing, error) {
	var d []time.Duration
	for k := 0; k < max(chains, 1); k++ {
		chain, err := c.nextChain(path, pages)
		if err != nil {
			return timing{}, err
		}
		d = append(d, chain...)
	}
	return timingOf(nextChainName, d), nil
}

const nextChainName = "objects limit=100 following next (10 pages)"

// nextChain follows next from path for up to pages pages and times each.
func (c client) nextChain(path string, pages int) ([]time.Duration, error) {
	var d []time.Duration
	p := path
	for i := 0; i < pages; i++ {
		start := time.Now()
		_, body, err := c.get(p)
		if err != nil {
			return nil, err
		}
		d = append(d, time.Since(start))
		var env struct {
			Next string `json:"next"`
		}
		_ = json.Unmarshal(body, &env)
		if env.Next == "" {
			break
		}
		p = path + "&next=" + url.QueryEscape(env.Next)
	}
	return d, nil
}

// timingOf sorts d and takes its median and 95th percentile.
func timingOf(name string, d []time.Duration) timing {
	slices.Sort(d)
	return timing{name: name, median: d[len(d)/2], p95: d[len(d)*95/100], n: len(d)}
}

// measureIngest warms the core up with untimed envelopes, as the reads are
// warmed up with untimed requests: a fresh Postgres connection first pays
// for mapping shared memory, page by page, which a long-running core has
// long paid. The timed envelopes then start right after a checkpoint, the
// worst case for full-page images in the WAL.
func (c client) measureIngest(ctx context.Context, ld *loader, path string, warmup, envelopes, clients int) (float64, error) {
	if warmup > 0 {
		if _, err := c.ingest(ctx, path, warmup, clients); err != nil {
			return 0, err
		}
	}
	if _, err := ld.pool.Exec(ctx, "CHECKPOINT"); err != nil {
		return 0, fmt.Errorf("checkpoint before the ingest measurement: %w", err)
	}
	return c.ingest(ctx, path, envelopes, clients)
}

// ingest posts envelopes of 1,000 new indicators from clients concurrent
// clients (each sending its share one after another) and returns objects/s.
// The envelopes are built and encoded before the clock starts.
func (c client) ingest(ctx context.Context, path string, envelopes, clients int) (float64, error) {
	bodies := make([][]byte, envelopes)
	for e := range bodies {
		objs := make([]map[string]any, 1000)
		for i := range objs {
			objs[i] = ingestObject()
		}
		bodies[e], _ = json.Marshal(map[string]any{"objects": objs})
	}
	post := func(body []byte) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		req.Header.Set("X-Authenticated-User", benchUser)
		res, err := c.http.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted || !bytes.Contains(b, []byte(`"success_count":1000`)) {
			return fmt.Errorf("ingest: %d %.200s", res.StatusCode, b)
		}
		return nil
	}
	errs := make(chan error, clients)
	start := time.Now()
	for k := 0; k < clients; k++ {
		go func() {
			for e := k; e < len(bodies); e += clients {
				if err := post(bodies[e]); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var err error
	for k := 0; k < clients; k++ {
		err = errors.Join(err, <-errs)
	}
	if err != nil {
		return 0, err
	}
	return float64(envelopes*1000) / time.Since(start).Seconds(), nil
}
