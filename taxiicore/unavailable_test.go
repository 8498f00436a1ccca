package taxiicore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/pgcluster"
	"github.com/taxiway/taxiway/internal/pgtest"
)

func TestDatabaseUnavailableClassifies(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string // "": not an unavailability
	}{
		{&pgconn.PgError{Code: "08006"}, causeConnectionLost}, // connection failure
		{&pgconn.PgError{Code: "57P01"}, causeRestarting},     // admin shutdown
		{&pgconn.PgError{Code: "57P03"}, causeRestarting},     // cannot connect now (starting up)
		{&pgconn.PgError{Code: "25006"}, causeReadOnly},       // read-only transaction: not yet promoted
		{&pgconn.PgError{Code: "40001"}, causeRecoveryConflict},
		{&pgconn.PgError{Code: "53300"}, causeResources}, // too many connections
		{fmt.Errorf("querying: %w", io.ErrUnexpectedEOF), causeConnectionLost},
		{fmt.Errorf("dialing: %w", syscall.ECONNREFUSED), causeConnectionLost},
		{&net.OpError{Op: "dial", Err: errors.New("x")}, causeConnectionLost},
		{fmt.Errorf("querying: %w", context.DeadlineExceeded), causeTimeout},
		{&pgconn.PgError{Code: "23505"}, ""}, // unique violation: a bug, not an outage
		{&pgconn.PgError{Code: "22P02"}, ""}, // bad input
		{context.Canceled, ""},
		{errors.New("something else"), ""},
	} {
		if got := unavailableCause(c.err); got != c.want {
			t.Errorf("unavailableCause(%v) = %q, want %q", c.err, got, c.want)
		}
		if got := dbUnavailable(c.err); got != (c.want != "") {
			t.Errorf("dbUnavailable(%v) = %t", c.err, got)
		}
	}
}

// TestDatabaseAwayIs503: with Postgres unreachable, the core answers 503
// with Retry-After and a TAXII error body, for reads and for Add Objects,
// and serves again once it is back.
func TestDatabaseAwayIs503(t *testing.T) {
	pg := pgtest.Cluster(t)
	if pg == nil {
		t.Skip("needs the private cluster (unset " + pgtest.EnvURL + ")")
	}
	f := newFixture(t, nil)
	db := f.pool.Config().ConnConfig.Database
	proxy := newCuttableProxy(t, filepath.Join(pg.SocketDir(), ".s.PGSQL.5432"))
	pool, err := pgxpool.New(context.Background(), fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable&connect_timeout=2", pgcluster.Superuser, proxy.addr(), db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	srv, err := New(context.Background(), pool, DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	af := &fixture{t: t, pool: f.pool, srv: srv, ts: ts}
	af.expect(req{path: objectsPath(colRW)}, http.StatusOK)

	proxy.cut()
	for _, r := range []req{
		{path: objectsPath(colRW)},
		{path: "/api1/collections/"},
		{method: http.MethodPost, path: objectsPath(colRW), body: envelopeOf(indicator(newID("indicator"), "2026-01-01T00:00:00Z", ""))},
	} {
		res := af.expect(r, http.StatusServiceUnavailable)
		if res.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 503 without Retry-After", r.method, r.path)
		}
	}
	metrics := scrapeMetrics(t, srv)
	var unavailable float64
	for _, cause := range []string{causeConnect, causeConnectionLost, causeTimeout} {
		unavailable += metricValue(t, metrics, `taxiway_core_db_unavailable_total{cause="`+cause+`"}`)
	}
	if unavailable != 3 {
		t.Errorf("taxiway_core_db_unavailable_total counts %g of the 3 requests", unavailable)
	}
	proxy.restore()
	af.post(colRW, indicator(newID("indicator"), "2026-01-01T00:00:00Z", ""))
}

// cuttableProxy forwards TCP connections to a Unix socket until cut, which
// drops every connection and refuses new ones, as a server that went away.
type cuttableProxy struct {
	t      *testing.T
	target string
	mu     sync.Mutex
	ln     net.Listener
	port   string
	conns  []net.Conn
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	p := &cuttableProxy{t: t, target: target}
	p.listen("127.0.0.1:0")
	t.Cleanup(p.cut)
	return p
}

func (p *cuttableProxy) addr() string { return "127.0.0.1:" + p.port }

func (p *cuttableProxy) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	_, p.port, _ = net.SplitHostPort(ln.Addr().String())
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("unix", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
}

func (p *cuttableProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cuttableProxy) restore() { p.listen("127.0.0.1:" + p.port) }

// TestReadPoolFallsBackToPrimary: listings whose read pool cannot reach a
// server run on the primary instead of failing.
func TestReadPoolFallsBackToPrimary(t *testing.T) {
	pg := pgtest.Cluster(t)
	if pg == nil {
		t.Skip("needs the private cluster (unset " + pgtest.EnvURL + ")")
	}
	f := newFixture(t, nil)
	f.post(colRW, indicator(newID("indicator"), "2026-01-01T00:00:00Z", ""))
	proxy := newCuttableProxy(t, filepath.Join(pg.SocketDir(), ".s.PGSQL.5432"))
	read, err := pgxpool.New(context.Background(), fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable&connect_timeout=2",
		pgcluster.Superuser, proxy.addr(), f.pool.Config().ConnConfig.Database))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(read.Close)
	f.srv.SetReadPool(read)
	if got := ids(t, f.expect(req{path: objectsPath(colRW)}, http.StatusOK)); len(got) != 1 {
		t.Fatalf("through the read pool: %d objects, want 1", len(got))
	}
	proxy.cut()
	if got := ids(t, f.expect(req{path: objectsPath(colRW)}, http.StatusOK)); len(got) != 1 {
		t.Fatalf("with the read pool away: %d objects, want 1", len(got))
	}
}
