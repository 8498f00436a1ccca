package taxiicore

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestListFilters(t *testing.T) {
	f := newFixture(t, nil)
	ind1, ind2, mal := newID("indicator"), newID("indicator"), newID("malware")
	f.post(colRW, indicator(ind1, "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z"))
	first := f.expect(req{path: objectsPath(colRW)}, http.StatusOK).header.Get("X-TAXII-Date-Added-Last")
	f.post(colRW,
		indicator(ind2, "2020-01-01T00:00:00Z", ""),
		map[string]any{"type": "malware", "spec_version": "2.1", "id": mal, "created": "2020-01-01T00:00:00Z", "modified": "2020-01-01T00:00:00Z", "name": "m", "is_family": false},
		indicator(ind1, "2020-01-01T00:00:00Z", "2020-06-01T00:00:00Z"))

	list := func(query string) []string {
		t.Helper()
		return ids(t, f.expect(req{path: objectsPath(colRW) + query}, http.StatusOK))
	}
	cases := map[string][]string{
		"":                               {ind2, mal, ind1},
		"?match[type]=indicator":         {ind2, ind1},
		"?match[type]=malware,indicator": {ind2, mal, ind1},
		"?match[type]=tool":              nil,
		"?match[id]=" + ind1:             {ind1},
		"?match[id]=" + ind1 + "," + mal: {mal, ind1},
		"?match[id]=" + ind1 + "&match[type]=malware":               nil,
		"?match[id]=" + ind1 + "&match[version]=all":                {ind1, ind1},
		"?match[type]=indicator&match[version]=first":               {ind1, ind2},
		"?match[spec_version]=2.1,2.0":                              {ind2, mal, ind1},
		"?match[spec_version]=2.0":                                  nil,
		"?limit=2":                                                  {ind2, mal},
		"?limit=100000":                                             {ind2, mal, ind1},
		"?added_after=" + url.QueryEscape(first):                    {ind2, mal, ind1},
		"?added_after=2000-01-01T00:00:00Z":                         {ind2, mal, ind1},
		"?added_after=2000-01-01T00:00:00.1234567Z":                 {ind2, mal, ind1},
		"?added_after=2999-01-01T00:00:00.000Z":                     nil,
		"?match[version]=all&added_after=" + url.QueryEscape(first): {ind2, mal, ind1},
		"?match[version]=all":                                       {ind1, ind2, mal, ind1},
		"?unknown=1&match[foo]=bar":                                 {ind2, mal, ind1},
	}
	for q, want := range cases {
		if got := list(q); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
	// added_after is strict: the object added exactly at the bound is left out.
	all := f.expect(req{path: objectsPath(colRW) + "?match[version]=all&limit=1"}, http.StatusOK)
	at := all.header.Get("X-TAXII-Date-Added-First")
	if got := list("?match[version]=all&added_after=" + url.QueryEscape(at)); len(got) != 3 {
		t.Fatalf("added_after=%s returned %v", at, got)
	}

	// Every malformed parameter is a 400 with an error body.
	bad := []string{
		"?limit=0", "?limit=-1", "?limit=-99999999999999999999999", "?limit=+", "?limit=abc", "?limit=1.5", "?limit=",
		"?added_after=yesterday", "?added_after=2020-01-01", "?added_after=2020-01-01T00:00:00", "?added_after=2020-01-01T00:00:00.Z",
		"?added_after=2020-01-01T00:00:00.1234567890Z", "?added_after=2020-01-01T00:00:00%2B01:00",
		"?added_after=2020-01-01T00:00:00Z&added_after=2020-01-01T00:00:00Z",
		"?match[type]=indicator&match[type]=malware",
		"?match[id]=a&match[id]=b",
		"?match[type]=", "?match[type]=indicator,,malware",
		"?match[version]=last,last", "?match[version]=all,first", "?match[version]=all,all",
		"?match[version]=2020-01-01T00:00:00Z,2020-01-01T00:00:00.000Z", "?match[version]=latest", "?match[version]=",
		"?match[spec_version]=2.1&match[spec_version]=2.0",
		"?next=", "?next=garbage", "?%zz",
		"?match[type]=" + strings.Repeat("a,", maxMatchValues) + "a",
		// Not UTF-8 once decoded: Postgres would refuse it in a text parameter.
		"?match[id]=%FF", "?match[type]=%FF", "?match[spec_version]=%FF", "?%FF=1",
	}
	for _, q := range bad {
		f.expect(req{path: objectsPath(colRW) + q}, http.StatusBadRequest)
		f.expect(req{path: "/api1/collections/" + colRW + "/manifest/" + q}, http.StatusBadRequest)
	}
	for _, p := range []string{objectsPath(colRW) + "%FF/", objectsPath(colRW) + "%FF/versions/", "/%FF/collections/", "/api1/collections/%FF/"} {
		f.expect(req{path: p}, http.StatusBadRequest)
	}
	// Headers: TAXII timestamps, first <= last; none on empty pages.
	res := f.expect(req{path: objectsPath(colRW)}, http.StatusOK)
	hf, hl := res.header.Get("X-TAXII-Date-Added-First"), res.header.Get("X-TAXII-Date-Added-Last")
	if !taxiiTimestamp.MatchString(hf) || !taxiiTimestamp.MatchString(hl) || hf >= hl {
		t.Fatalf("headers %q %q", hf, hl)
	}
	res = f.expect(req{path: objectsPath(colRW) + "?match[type]=tool"}, http.StatusOK)
	if string(res.body) != `{"more":false}` || res.header.Get("X-TAXII-Date-Added-Last") != "" {
		t.Fatalf("empty page %s %v", res.body, res.header)
	}
	res = f.expect(req{path: objectsPath(colRO)}, http.StatusOK)
	if string(res.body) != `{"more":false}` {
		t.Fatalf("empty collection %s", res.body)
	}
}

// page is one response of a paginated listing.
type page struct {
	ids  []string
	more bool
	next string
	last string
}

func (f *fixture) page(path string) page {
	f.t.Helper()
	res := f.expect(req{path: path}, http.StatusOK)
	m := res.json(f.t)
	p := page{ids: ids(f.t, res), last: res.header.Get("X-TAXII-Date-Added-Last")}
	p.more, _ = m["more"].(bool)
	p.next, _ = m["next"].(string)
	if p.more != (p.next != "") {
		f.t.Fatalf("more=%v but next=%q", p.more, p.next)
	}
	return p
}

// TestPaginationUnderConcurrentWrites follows next, and separately re-polls
// with added_after = X-TAXII-Date-Added-Last, while another goroutine keeps
// adding objects: every object must be seen exactly once by both readers.
func TestPaginationUnderConcurrentWrites(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxPageSize = 7 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		mu      sync.Mutex
		written []string
		wg      sync.WaitGroup
	)
	const batches, perBatch = 40, 5
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := 0; b < batches && ctx.Err() == nil; b++ {
			var objs []map[string]any
			var idsNow []string
			for i := 0; i < perBatch; i++ {
				id := newID("indicator")
				objs = append(objs, indicator(id, "2020-01-01T00:00:00Z", ""))
				idsNow = append(idsNow, id)
			}
			if _, _, err := f.srv.ingest(ctx, "api1", mustUUID(colRW), "alice", rawObjects(objs)); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			written = append(written, idsNow...)
			mu.Unlock()
		}
	}()
	writerDone := make(chan struct{})
	go func() { wg.Wait(); close(writerDone) }()

	done := func() bool {
		select {
		case <-writerDone:
			return true
		default:
			return false
		}
	}
	// Reader A follows next; when a chain ends it starts again from the last
	// position with added_after (as a poller would), until the writer is done
	// and a final poll is empty.
	var viaNext, viaAfter []string
	after := ""
	for i := 0; i < 2000; i++ {
		finished := done()
		path := objectsPath(colRW) + "?limit=3"
		if after != "" {
			path += "&added_after=" + url.QueryEscape(after)
		}
		p := f.page(path)
		for {
			viaNext = append(viaNext, p.ids...)
			if p.last != "" {
				after = p.last
			}
			if !p.more {
				break
			}
			p = f.page(objectsPath(colRW) + "?limit=3&next=" + url.QueryEscape(p.next) + addedAfterParam(path))
		}
		if finished {
			break
		}
	}
	// Reader B only ever uses added_after.
	after = ""
	for i := 0; i < 2000; i++ {
		finished := done()
		path := objectsPath(colRW) + "?limit=4"
		if after != "" {
			path += "&added_after=" + url.QueryEscape(after)
		}
		p := f.page(path)
		viaAfter = append(viaAfter, p.ids...)
		if p.last != "" {
			after = p.last
		}
		if !p.more && finished {
			break
		}
	}
	<-writerDone
	if len(written) != batches*perBatch {
		t.Fatalf("writer wrote %d", len(written))
	}
	for name, got := range map[string][]string{"next": viaNext, "added_after": viaAfter} {
		if !slices.Equal(got, written) {
			t.Fatalf("%s reader saw %d objects (want %d, in write order, no repeats)", name, len(got), len(written))
		}
	}
}

// addedAfterParam repeats path's added_after, since next must come with the
// original parameters.
func addedAfterParam(path string) string {
	_, q, _ := strings.Cut(path, "?")
	v, _ := url.ParseQuery(q)
	if a := v.Get("added_after"); a != "" {
		return "&added_after=" + url.QueryEscape(a)
	}
	return ""
}

func TestCursorsAreBoundAndSigned(t *testing.T) {
	f := newFixture(t, nil)
	var objs []map[string]any
	for i := 0; i < 6; i++ {
		objs = append(objs, indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))
	}
	f.post(colRW, objs...)
	f.expect(req{method: http.MethodPost, path: objectsPath(colAuth), user: "root", groups: "taxiway-admin", body: envelopeOf(objs...)}, http.StatusAccepted)
	base := objectsPath(colRW) + "?match[type]=indicator&limit=2"
	p := f.page(base)
	if !p.more || len(p.ids) != 2 {
		t.Fatalf("first page %+v", p)
	}
	next := url.QueryEscape(p.next)
	// Following it works, for every endpoint kind that pages.
	if q := f.page(base + "&next=" + next); len(q.ids) != 2 || q.ids[0] == p.ids[0] {
		t.Fatalf("second page %+v", q)
	}
	tampered := []byte(p.next)
	tampered[3] ^= 1
	bad := []req{
		{path: base + "&next=" + url.QueryEscape(string(tampered))},
		{path: base + "&next=" + next[:len(next)-2]},
		{path: objectsPath(colRW) + "?match[type]=malware&limit=2&next=" + next}, // other filters
		{path: objectsPath(colRW) + "?limit=2&next=" + next},                     // filters dropped
		{path: objectsPath(colRW) + "?match[type]=indicator&match[version]=all&next=" + next},
		{path: base + "&next=" + next, user: "carol", groups: "analysts"},                      // other user
		{path: objectsPath(colAuth) + "?match[type]=indicator&limit=2&next=" + next},           // other collection
		{path: "/api1/collections/" + colRW + "/manifest/?match[type]=indicator&next=" + next}, // other endpoint
	}
	for _, r := range bad {
		f.expect(r, http.StatusBadRequest)
	}
	// limit may change between pages; the cursor survives a new server (same key in Postgres).
	srv2, err := New(context.Background(), f.pool, DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(srv2.cursors.key) != string(f.srv.cursors.key) {
		t.Fatal("a second server got another cursor key")
	}
	if q := f.page(base[:len(base)-1] + "3&next=" + next); len(q.ids) != 3 {
		t.Fatalf("changed limit: %+v", q)
	}
	// Manifest and versions page too, with more/next.
	m := f.page("/api1/collections/" + colRW + "/manifest/?limit=4")
	if !m.more || m.next == "" {
		t.Fatalf("manifest page %+v", m)
	}
}
