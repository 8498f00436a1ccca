package taxiicore

import (
	"strings"
	"testing"
	"time"
)

func TestParseTimestamp(t *testing.T) {
	good := map[string]string{
		"2020-01-02T03:04:05Z":           "2020-01-02T03:04:05.000000000Z",
		"2020-01-02T03:04:05.1Z":         "2020-01-02T03:04:05.100000000Z",
		"2020-01-02T03:04:05.123456Z":    "2020-01-02T03:04:05.123456000Z",
		"2020-01-02T03:04:05.123456789Z": "2020-01-02T03:04:05.123456789Z",
	}
	for in, want := range good {
		ts, err := parseTimestamp(in)
		if err != nil || versionKey(ts) != want {
			t.Fatalf("%s: %v %v", in, versionKey(ts), err)
		}
	}
	for _, in := range []string{"", "2020-01-02", "2020-01-02T03:04:05", "2020-01-02T03:04:05.Z", "2020-01-02T03:04:05,1Z",
		"2020-01-02T03:04:05.1234567890Z", "2020-01-02T03:04:05+00:00", "2020-13-02T03:04:05Z", "2020-01-02 03:04:05Z", "x020-01-02T03:04:05Z"} {
		if _, err := parseTimestamp(in); err == nil {
			t.Fatalf("%q accepted", in)
		}
	}
	if got := formatTimestamp(time.Date(2020, 1, 2, 3, 4, 5, 7000, time.FixedZone("x", 3600))); got != "2020-01-02T02:04:05.000007Z" {
		t.Fatal(got)
	}
	// added_after with sub-microsecond digits keeps "strictly after".
	ts, _ := parseTimestamp("2020-01-02T03:04:05.0000019Z")
	if microsAfter(ts) != time.Date(2020, 1, 2, 3, 4, 5, 1000, time.UTC).UnixMicro() {
		t.Fatal("microsAfter")
	}
}

// TestParseAddedAfter: every date_added the core can emit (years 1 to
// Postgres' last, in four to six digits) parses back to itself.
func TestParseAddedAfter(t *testing.T) {
	for _, when := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(10004, 2, 29, 12, 0, 0, 1000, time.UTC),
		time.Date(maxEmittedYear, 12, 31, 23, 59, 59, 999999000, time.UTC),
	} {
		s := formatTimestamp(when)
		got, err := parseAddedAfter(s)
		if err != nil || !got.Equal(when) {
			t.Fatalf("%s: %v %v", s, got, err)
		}
	}
	for _, in := range []string{"10001-02-29T00:00:00Z", "294276-01-01T00:00:00Z", "1000000-01-01T00:00:00Z", "010000-01-01T00:00:00Z",
		"10000-01-01", "10000-13-01T00:00:00Z", "99999"} {
		if _, err := parseAddedAfter(in); err == nil {
			t.Fatalf("%q accepted", in)
		}
	}
}

func TestCursorSigner(t *testing.T) {
	c := cursorSigner{key: []byte(strings.Repeat("k", 32))}
	tok := c.encode(1234567, "binding")
	if pos, err := c.decode(tok, "binding"); err != nil || pos != 1234567 {
		t.Fatalf("%d %v", pos, err)
	}
	if _, err := c.decode(tok, "other"); err == nil {
		t.Fatal("other binding accepted")
	}
	other := cursorSigner{key: []byte(strings.Repeat("j", 32))}
	if _, err := other.decode(tok, "binding"); err == nil {
		t.Fatal("other key accepted")
	}
	for _, bad := range []string{"", "!!!", tok + "A", tok[:10]} {
		if _, err := c.decode(bad, "binding"); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestParseSTIXVersions(t *testing.T) {
	o, err := parseSTIX([]byte(`{"type":"x-custom","id":"x-custom--6ba7b810-9dad-41d1-80b4-00c04fd430c8","created":"2020-01-01T00:00:00Z","modified":"2020-01-01T00:00:00.5Z","spec_version":"2.1"}`))
	if err != nil || o.version != "2020-01-01T00:00:00.5Z" || o.specVersion != "2.1" {
		t.Fatalf("%+v %v", o, err)
	}
	o, err = parseSTIX([]byte(` {"type":"file","id":"file--6ba7b810-9dad-51d1-80b4-00c04fd430c8","name":"a\\u0000b \ud83d\ude00"}`))
	if err != nil || o.version != "" || o.specVersion != "2.1" {
		t.Fatalf("SCO: %+v %v", o, err)
	}
}

func BenchmarkCursorEncodeDecode(b *testing.B) {
	c := cursorSigner{key: []byte(strings.Repeat("k", 32))}
	binding := "6\x00api1\x0011111111-1111-4111-8111-111111111111\x00\x00alice\x00match[type]=indicator\x00"
	for b.Loop() {
		tok := c.encode(1700000000000000, binding)
		if _, err := c.decode(tok, binding); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAcceptParsing(b *testing.B) {
	h := []string{"text/html;q=0.9, application/json;q=0.5, application/taxii+json; version=2.1; q=0.8"}
	for b.Loop() {
		if !acceptsTAXII(h) {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkParseTimestamp(b *testing.B) {
	for b.Loop() {
		if _, err := parseTimestamp("2020-01-02T03:04:05.123456789Z"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSTIX(b *testing.B) {
	raw := []byte(`{"type":"indicator","spec_version":"2.1","id":"indicator--6ba7b810-9dad-41d1-80b4-00c04fd430c8","created":"2020-01-01T00:00:00.000Z","modified":"2020-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.1']","pattern_type":"stix","valid_from":"2020-01-01T00:00:00Z"}`)
	for b.Loop() {
		if _, err := parseSTIX(raw); err != nil {
			b.Fatal(err)
		}
	}
}
