package taxiicore

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Native fuzz targets for every parser of the core that sees client bytes.
// `go test` runs their seeds (f.Add and testdata/fuzz); `make fuzz` explores.

// FuzzParseEnvelope is differential: the envelope scanner must agree with
// encoding/json on validity and find exactly the objects it would, and the
// per-object checks must agree with it on each object's id, type and
// numbers, without panicking on anything.
func FuzzParseEnvelope(f *testing.F) {
	id := "indicator--6ba7b810-9dad-41d1-80b4-00c04fd430c8"
	for _, s := range []string{
		`{"objects":[{"type":"indicator","id":"` + id + `","created":"2020-01-01T00:00:00Z","x":[1,2.5e3,-0.1]}]}`,
		`{"objects":[]}`, `{"objects":null}`, `null`, `[]`, `{}`, `{"Objects":[{}]}`, `{"objects":[1,"a",null,{}]}`,
		`{"objects":[{"id":"` + id + `"}],"objects":[{"\u0069d":"x"}]}`,
		`{"objects":[{"type":"indicator","id":"` + id + `","x":1e999}]}`,
		`{"objects":[{"type":"indicator","id":"` + id + `","x":"\ud800"}]}`,
		`{"objects":[{"type":"indicator","id":"` + id + `","x":` + strings.Repeat("[", 101) + strings.Repeat("]", 101) + `}]}`,
		` {"more":true, "objects" : [ {"id":"a\"b"} , {} ] } `, `{"objects":[{]}`, `{"objects":[{"a":tru}]}`,
		"{\"objects\":[{\"a\":\"\xff\"}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		objs, status, msg := parseEnvelope(body)
		valid := json.Valid(body)
		if !valid {
			if status != http.StatusBadRequest {
				t.Fatalf("invalid JSON answered %d %q", status, msg)
			}
			return
		}
		if status == http.StatusBadRequest {
			t.Fatalf("valid JSON refused as invalid: %q", msg)
		}
		var env map[string]json.RawMessage
		var want []json.RawMessage
		envOK := json.Unmarshal(body, &env) == nil && env != nil
		if raw, ok := env["objects"]; envOK && ok && string(raw) != "null" {
			if json.Unmarshal(raw, &want) != nil {
				want = nil
			}
		}
		if len(want) == 0 {
			if status == 0 {
				t.Fatalf("no objects per encoding/json, but %d objects found", len(objs))
			}
			return
		}
		if status != 0 || len(objs) != len(want) {
			t.Fatalf("encoding/json finds %d objects; scanner: %d objects, status %d %q", len(want), len(objs), status, msg)
		}
		for i := range objs {
			if !bytes.Equal(objs[i], want[i]) {
				t.Fatalf("object %d: scanner %q, encoding/json %q", i, objs[i], want[i])
			}
			checkParseSTIX(t, objs[i])
		}
	})
}

// checkParseSTIX compares what parseSTIX reads from one valid JSON value
// with what encoding/json decodes, and its limits with a decoded walk.
func checkParseSTIX(t *testing.T, raw []byte) {
	o, err := parseSTIX(raw)
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&m) != nil || m == nil {
		if err == nil {
			t.Fatalf("accepted a non-object %q", raw)
		}
		return
	}
	depth, badNumber, nul := 0, false, false
	var walk func(v any, d int)
	walk = func(v any, d int) {
		switch v := v.(type) {
		case map[string]any:
			depth = max(depth, d)
			for k, x := range v {
				nul = nul || strings.ContainsRune(k, 0)
				walk(x, d+1)
			}
		case []any:
			depth = max(depth, d)
			for _, x := range v {
				walk(x, d+1)
			}
		case json.Number:
			f, ferr := strconv.ParseFloat(string(v), 64)
			badNumber = badNumber || len(v) > maxNumberLength || ferr != nil && math.IsInf(f, 0)
		case string:
			nul = nul || strings.ContainsRune(v, 0)
		}
	}
	walk(m, 1)
	if err != nil {
		// A limit refusal must be true of the decoded object.
		msg := err.Error()
		if strings.Contains(msg, "nests deeper") && depth <= maxNestingDepth ||
			strings.Contains(msg, "number") && !badNumber && !strings.Contains(msg, "nests") {
			t.Fatalf("refused %q (%v), depth %d, bad number %v", raw, err, depth, badNumber)
		}
		return
	}
	if m["id"] != o.id || m["type"] != o.typ {
		t.Fatalf("id/type %q/%q, encoding/json %v/%v in %q", o.id, o.typ, m["id"], m["type"], raw)
	}
	if !utf8.Valid(raw) || depth > maxNestingDepth || badNumber || nul {
		t.Fatalf("accepted %q: depth %d, bad number %v, NUL %v", raw, depth, badNumber, nul)
	}
}

// FuzzScanners: on bytes nobody validated, the member and element scanners
// return an error or agree with encoding/json; they never panic.
func FuzzScanners(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[true,{"c":"d\"e"}],"a":2}`, `[1, "x", {}, []]`, `{"a"`, `[`, `{"\u00e9":null}`, "{\"a\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := map[string][]byte{}
		errM := scanMembers(b, func(name, value []byte) { got[string(name)] = value })
		var want map[string]json.RawMessage
		if json.Valid(b) && json.Unmarshal(b, &want) == nil && want != nil {
			if errM != nil || len(got) != len(want) {
				t.Fatalf("members of %q: %v %v, want %v", b, got, errM, want)
			}
			for k, v := range want {
				if !bytes.Equal(got[k], v) {
					t.Fatalf("member %q of %q: %q, want %q", k, b, got[k], v)
				}
			}
		}
		var elems [][]byte
		errE := scanElements(b, func(v []byte) { elems = append(elems, v) })
		var wantE []json.RawMessage
		if json.Valid(b) && json.Unmarshal(b, &wantE) == nil && wantE != nil {
			if errE != nil || len(elems) != len(wantE) {
				t.Fatalf("elements of %q: %d %v, want %d", b, len(elems), errE, len(wantE))
			}
		}
		_ = storable(b)
	})
}

// FuzzParseFilters: any query string is a valid filter set or a 400; never
// a panic, and a valid one respects the page bounds.
func FuzzParseFilters(f *testing.F) {
	for _, s := range []string{"", "limit=5&added_after=2020-01-01T00:00:00.123Z", "match[type]=indicator,malware&match[id]=a",
		"match[version]=first,last,2020-01-01T00:00:00Z", "match[version]=all", "limit=99999999999999999999", "limit=-1",
		"next=abc", "%zz", "match[spec_version]=2.0,2.1", "match[type]=&x=1", "match[version]=all,first"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		for _, p := range [][]string{listParams, objectParams, versionParams, deleteParams} {
			fl, err := parseFilters(q, p, "last", 50)
			if err != nil {
				if _, ok := errors.AsType[badRequest](err); !ok {
					t.Fatalf("%q: error %v is not a badRequest", q, err)
				}
				continue
			}
			if fl.limit < 1 || fl.limit > 50 || len(fl.ids) > maxMatchValues || len(fl.types) > maxMatchValues {
				t.Fatalf("%q: filters out of bounds: %+v", q, fl)
			}
		}
	})
}

// FuzzCursor: no token but one the signer issued for the same binding
// decodes, and every position survives the round trip.
func FuzzCursor(f *testing.F) {
	s := cursorSigner{key: bytes.Repeat([]byte{7}, 32)}
	f.Add(s.encode(1_600_000_000_000_000, "b"), int64(42), "b")
	f.Add("", int64(-1), "")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", int64(math.MaxInt64), "x\x00y")
	f.Fuzz(func(t *testing.T, token string, pos int64, binding string) {
		if got, err := s.decode(s.encode(pos, binding), binding); err != nil || got != pos {
			t.Fatalf("round trip of %d: %d %v", pos, got, err)
		}
		if _, err := s.decode(s.encode(pos, binding), binding+"x"); err == nil {
			t.Fatal("cursor accepted for another binding")
		}
		if p, err := s.decode(token, binding); err == nil && s.encode(p, binding) != token {
			// Base64 may spell the same bytes two ways; the bytes must match.
			if d, _ := s.decode(s.encode(p, binding), binding); d != p {
				t.Fatalf("forged token %q accepted", token)
			}
		}
	})
}

// FuzzNegotiation: Accept and Content-Type never panic; a header admits
// TAXII 2.1 only through a range that mime.ParseMediaType reads as the TAXII
// type without another version, and a Content-Type only in UTF-8.
func FuzzNegotiation(f *testing.F) {
	for _, s := range []string{"application/taxii+json;version=2.1", `application/taxii+json;foo="a,b";version=2.0`,
		"*/*, application/taxii+json;q=0.5", `application/taxii+json;version="2.1";q=0`, "application/taxii+json; charset=latin1",
		`text/html;x="\",", application/taxii+json`, "application/vnd.oasis.taxii+json", "application/taxii+json;version=2.1;version=2.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if acceptsTAXII([]string{h}) {
			ok := false
			for _, r := range splitRanges(h) {
				mt, params, err := mime.ParseMediaType(r)
				if err == nil && isTAXIIType(mt) && (params["version"] == "" || params["version"] == "2.1") {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("Accept %q admitted without a TAXII 2.1 range", h)
			}
		}
		if taxiiContentType(h) {
			_, params, _ := mime.ParseMediaType(h)
			if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
				t.Fatalf("Content-Type %q admitted with charset %q", h, cs)
			}
		}
	})
}

// FuzzParseTimestamp is differential against time.Parse: whatever it
// accepts, RFC 3339 reads as the same instant, and the emitted form parses
// back to it (to the microsecond).
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"2020-01-01T00:00:00Z", "2020-01-01T00:00:00.123456789Z", "2020-13-01T00:00:00Z",
		"2020-01-01T00:00:00.Z", "2020-01-01T00:00:60Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2020-01-01T00:00:00+01:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTimestamp(s)
		if err != nil {
			return
		}
		want, werr := time.Parse(time.RFC3339Nano, s)
		if werr != nil || !want.Equal(got) || got.Location() != time.UTC {
			t.Fatalf("%q: %v, time.Parse %v %v", s, got, want, werr)
		}
		back, err := parseTimestamp(formatTimestamp(got))
		if err != nil || !back.Equal(got.Truncate(time.Microsecond)) {
			t.Fatalf("%q: emitted %q does not parse back: %v", s, formatTimestamp(got), err)
		}
	})
}

// FuzzParseAddedAfter: what parses is an instant whose emitted form parses
// back to the same microsecond.
func FuzzParseAddedAfter(f *testing.F) {
	for _, s := range []string{"2020-01-01T00:00:00Z", "10000-01-01T00:00:00.000000Z", "294275-12-31T23:59:59.999999Z", "10001-02-29T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseAddedAfter(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC || got.Year() < 0 || got.Year() > maxEmittedYear {
			t.Fatalf("%q: %v", s, got)
		}
		back, err := parseAddedAfter(formatTimestamp(got))
		if err != nil || !back.Equal(got.Truncate(time.Microsecond)) {
			t.Fatalf("%q: emitted %q does not parse back: %v", s, formatTimestamp(got), err)
		}
	})
}

// FuzzRoutes: any request target routes, redirects on this host, or is
// refused; an encoded slash never separates segments.
func FuzzRoutes(f *testing.F) {
	for _, s := range []string{"/taxii2/", "/api1", "/%5Cevil.example", "/api1%2Fcollections%2F", "/api1/collections/x/objects/y/versions/",
		"/api1%00/", "//evil", "/api1/status/%FF/", "/a/collections/%2F/objects/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		segs, err := splitPath(u.EscapedPath())
		if err != nil {
			return
		}
		rt, found := matchRoute(segs)
		if found && strings.Count(u.EscapedPath(), "/") != len(segs) {
			t.Fatalf("%q: %d segments from %q", target, len(segs), u.EscapedPath())
		}
		if found && rt.root != "taxii2" && !rootNameRE.MatchString(rt.root) && rt.ep != epDiscovery {
			t.Fatalf("%q: routed to root %q", target, rt.root)
		}
		if loc, ok := slashRedirect(u, segs); ok {
			if found || len(loc) < 2 || loc[0] != '/' || loc[1] == '/' || loc[1] == '\\' {
				t.Fatalf("%q: redirect to %q", target, loc)
			}
			if lu, err := url.Parse(loc); err != nil || lu.Host != "" || lu.Scheme != "" {
				t.Fatalf("%q: redirect to %q leaves the host", target, loc)
			}
		}
	})
}
