package taxiicore

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

// NUL (and text that is not UTF-8) in a path segment or a query value is a
// 400 on every endpoint and method, never a 500 from Postgres.
func TestNULInRequestIs400(t *testing.T) {
	f := newFixture(t, nil)
	id := newID("indicator")
	f.post(colRW, indicator(id, "2020-01-01T00:00:00Z", ""))
	paths := []string{
		"/taxii2%00/", "/api1%00/", "/api1/collections%00/", "/api1/collections/" + colRW + "%00/",
		"/api1/collections/rw%00/", "/api1/status/%00/",
		objectsPath(colRW) + id + "%00/", objectsPath(colRW) + id + "%00/versions/",
		"/api1/collections/" + colRW + "/manifest%00/",
	}
	for _, p := range paths {
		f.expect(req{path: p}, http.StatusBadRequest)
	}
	for _, q := range []string{"match[type]=indicator%00", "match[id]=" + id + "%00", "match[spec_version]=%00",
		"match[version]=%00", "added_after=%00", "next=%00", "limit=1%00", "x%00=1"} {
		for _, p := range []string{"/taxii2/", "/api1/", "/api1/collections/", objectsPath(colRW),
			"/api1/collections/" + colRW + "/manifest/", objectsPath(colRW) + id + "/", objectsPath(colRW) + id + "/versions/"} {
			f.expect(req{path: p + "?" + q}, http.StatusBadRequest)
		}
		f.expect(req{method: http.MethodDelete, path: objectsPath(colRW) + id + "/?" + q}, http.StatusBadRequest)
	}
	f.expect(req{method: http.MethodDelete, path: objectsPath(colRW) + id + "%00/"}, http.StatusBadRequest)
	f.expect(req{method: http.MethodPost, path: objectsPath(colRW) + "?match[type]=%00", body: envelopeOf(indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))}, http.StatusBadRequest)
	if n := f.countRows(colRW); n != 1 {
		t.Fatalf("rows %d", n)
	}
}

// Only paths that name a TAXII resource once a slash is added are
// redirected, to a Location on this host, with a TAXII JSON body.
func TestSlashRedirectIsValidated(t *testing.T) {
	f := newFixture(t, nil)
	for _, p := range []string{"/%5Cevil.example", "/%5C%5Cevil.example", "/%2F%2Fevil.example", "/%2Fevil.example",
		"/evil.example%2F", "/.evil", "/-x", "/api1%2Fcollections%2F", "/api1%2Fcollections", "/api1/nothing",
		"/" + strings.Repeat("a", 65)} {
		res := f.expect(req{path: p}, http.StatusNotFound)
		if res.header.Get("Location") != "" {
			t.Fatalf("%s: Location %q", p, res.header.Get("Location"))
		}
	}
	for p, want := range map[string]string{
		"/api1":                   "/api1/",
		"/taxii2":                 "/taxii2/",
		"/api1/collections?x=%5C": "/api1/collections/?x=%5C",
		"/api1/collections/rw":    "/api1/collections/rw/",
	} {
		res := f.do(req{path: p})
		if res.status != http.StatusPermanentRedirect || res.header.Get("Location") != want {
			t.Fatalf("%s: %d Location %q, want %q", p, res.status, res.header.Get("Location"), want)
		}
		if res.header.Get("Content-Type") != taxiierror.MediaType || res.json(t)["http_status"] != "308" {
			t.Fatalf("%s: redirect body %s %q", p, res.body, res.header.Get("Content-Type"))
		}
	}
	// An encoded slash is part of its segment, never a separator.
	f.expect(req{path: "/api1%2Fcollections%2F/"}, http.StatusNotFound)
	f.expect(req{path: "/api1/collections%2F" + colRW + "/"}, http.StatusNotFound)
	f.expect(req{path: "/api1/collections/" + colRW + "%2Fobjects/"}, http.StatusNotFound)
	f.expect(req{path: "/api1/collections/"}, http.StatusOK)
}

// Objects come back byte for byte as posted; what no STIX content needs
// (deep nesting, huge or out-of-range numbers) fails that object alone,
// with the limit named.
func TestObjectsAreStoredFaithfully(t *testing.T) {
	f := newFixture(t, nil)
	id := newID("indicator")
	// Key order, number spellings, escapes and inner whitespace as sent.
	faithful := `{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"2020-01-01T00:00:00.1Z",` +
		`"z":1,"a":2,"x_int":123456789012345678901234567890,"x_float":1.50,"x_exp":1E2,"x_tiny":1e-16384,` +
		`"x_neg_tiny":-1e-99999,"x_esc":"caf\u00e9 \/ \"q\"", "x_dup":1,"x_dup":2,` + "\n\t" + `"x_nest":{"b":[1,{"c":null}],"a":true}}`
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	obj := func(extra string) string {
		return `{"type":"indicator","spec_version":"2.1","id":"` + newID("indicator") + `","created":"2020-01-01T00:00:00Z",` + extra + `}`
	}
	okDeep := obj(`"x_deep":` + deep(maxNestingDepth-1))
	okLong := obj(`"x_num":-0.` + strings.Repeat("1", maxNumberLength-3))
	bad := map[string]string{
		obj(`"x_num":1e131073`):                      "outside the range of a 64-bit float",
		obj(`"x_num":1e99999999`):                    "outside the range of a 64-bit float",
		obj(`"x_num":-1e999`):                        "outside the range of a 64-bit float",
		obj(`"x_num":` + strings.Repeat("9", 10000)): "longer than 64 characters",
		obj(`"x_num":0.` + strings.Repeat("1", 63)):  "longer than 64 characters",
		obj(`"x_deep":` + deep(maxNestingDepth)):     "deeper than 100 levels",
		obj(`"x_deep":` + deep(5000)):                "deeper than 100 levels",
		obj(`"x_deep":` + strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200)): "deeper than 100 levels",
	}
	parts := []string{faithful, okDeep, okLong}
	for o := range bad {
		parts = append(parts, o)
	}
	res := f.expect(req{method: http.MethodPost, path: objectsPath(colRW), body: `{"objects":[` + strings.Join(parts, " ,\n ") + `]}`}, http.StatusAccepted)
	var st struct {
		SuccessCount int `json:"success_count"`
		FailureCount int `json:"failure_count"`
		Failures     []struct{ ID, Message string }
	}
	if err := json.Unmarshal(res.body, &st); err != nil {
		t.Fatal(err)
	}
	if st.SuccessCount != 3 || st.FailureCount != len(bad) {
		t.Fatalf("status %s", res.body)
	}
	for _, fl := range st.Failures {
		found := false
		for o, msg := range bad {
			if strings.Contains(o, fl.ID) && strings.Contains(fl.Message, msg) {
				found = true
			}
		}
		if !found {
			t.Fatalf("failure %+v names no limit", fl)
		}
	}
	for _, want := range []string{faithful, okDeep, okLong} {
		var probe struct{ ID string }
		if err := json.Unmarshal([]byte(want), &probe); err != nil {
			t.Fatal(err)
		}
		got := f.expect(req{path: objectsPath(colRW) + probe.ID + "/"}, http.StatusOK)
		if !bytes.Equal(got.body, []byte(`{"more":false,"objects":[`+want+`]}`)) {
			t.Fatalf("stored object altered:\n got %s\nwant %s", got.body, want)
		}
	}
}

// Accept is split between media ranges only outside quotes; a POST body in
// a charset other than UTF-8 is refused rather than misread.
func TestNegotiationParsing(t *testing.T) {
	f := newFixture(t, nil)
	for _, a := range []string{`application/taxii+json;foo="a,b";version=2.0`, `application/taxii+json;foo="a,b\",";version=2.0`,
		`application/taxii+json;version=2.1;version=2.0`, `application/taxii+json;version="2.1";q=0`, `application/taxii+json;q=x`} {
		f.expect(req{path: "/taxii2/", accept: a}, http.StatusNotAcceptable)
	}
	for _, a := range []string{`application/taxii+json;foo="a,b";version=2.1`, `text/html;x="a,b", application/taxii+json`,
		`application/taxii+json; version="2.1"; q=0.5`, `application/taxii+json;`} {
		f.expect(req{path: "/taxii2/", accept: a}, http.StatusOK)
	}
	body := envelopeOf(indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))
	for _, ct := range []string{taxiierror.MediaType + ";charset=latin1", taxiierror.MediaType + ";charset=utf-16", "application/taxii+json; charset=iso-8859-1"} {
		f.expect(req{method: http.MethodPost, path: objectsPath(colRW), contentType: ct, body: body}, http.StatusUnsupportedMediaType)
	}
	f.expect(req{method: http.MethodPost, path: objectsPath(colRW), contentType: taxiierror.MediaType + "; charset=UTF-8", body: body}, http.StatusAccepted)
}

// Hostile values that the status echoes (ids, versions) cannot break it:
// the envelope gets 202, and the status is stored and readable.
func TestStatusEchoesHostileValues(t *testing.T) {
	f := newFixture(t, nil)
	body := `{"objects":[` + strings.Join([]string{
		`{"type":"indicator","id":"indicator--\u0000","created":"2020-01-01T00:00:00Z"}`,
		`{"type":"\u0000","id":"\u0000--\u0000","created":"2020-01-01T00:00:00Z"}`,
		`{"type":"indicator","id":"indicator--\ud800","created":"2020-01-01T00:00:00Z"}`,
		`{"type":"indicator","id":"` + newID("indicator") + `","created":"2020-01-01T00:00:00\u0000Z"}`,
		`{"type":"indicator","id":"` + strings.Repeat("a", 20000) + `","created":"2020-01-01T00:00:00Z"}`,
		`{"type":"indicator","id":"indicator--` + strings.Repeat("\\\"", 1000) + `"}`,
	}, ",") + `]}`
	res := f.expect(req{method: http.MethodPost, path: objectsPath(colRW), body: body}, http.StatusAccepted)
	st := res.json(t)
	if st["failure_count"] != 6.0 {
		t.Fatalf("status %s", res.body)
	}
	got := f.expect(req{path: "/api1/status/" + st["id"].(string) + "/"}, http.StatusOK)
	if !bytes.Equal(got.body, res.body) {
		t.Fatalf("stored status differs:\n%s\n%s", got.body, res.body)
	}
}
