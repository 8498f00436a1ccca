package identitysig

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	k1 := []byte(strings.Repeat("a", 32))
	k2 := []byte(strings.Repeat("b", 32))
	now := time.Unix(1_800_000_000, 0)
	r := Request{Method: "DELETE", Path: "/api1/collections/c/objects/indicator--1/", Query: "match[version]=2026-01-01T00:00:00Z",
		User: "alice", Groups: "analysts,admins"}
	v := Sign(k1, now, r)
	if err := Verify([][]byte{k2, k1}, v, now.Add(10*time.Second), r); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	cases := []struct {
		name  string
		keys  [][]byte
		value string
		at    time.Time
		req   Request
		want  error
	}{
		{"missing", [][]byte{k1}, "", now, r, ErrMissing},
		{"other key", [][]byte{k2}, v, now, r, ErrMismatch},
		{"other user", [][]byte{k1}, v, now, Request{r.Method, r.Path, r.Query, "bob", r.Groups}, ErrMismatch},
		{"other groups", [][]byte{k1}, v, now, Request{r.Method, r.Path, r.Query, r.User, "taxiway-admin"}, ErrMismatch},
		{"other method", [][]byte{k1}, v, now, Request{"GET", r.Path, r.Query, r.User, r.Groups}, ErrMismatch},
		{"other path", [][]byte{k1}, v, now, Request{r.Method, "/api2/", r.Query, r.User, r.Groups}, ErrMismatch},
		// The replay of issue 16: the same DELETE without its query would
		// delete every version.
		{"query dropped", [][]byte{k1}, v, now, Request{r.Method, r.Path, "", r.User, r.Groups}, ErrMismatch},
		{"other query", [][]byte{k1}, v, now, Request{r.Method, r.Path, "match[version]=all", r.User, r.Groups}, ErrMismatch},
		// Length prefixes: moving bytes between fields changes the MAC.
		{"shifted fields", [][]byte{k1}, Sign(k1, now, Request{"GET", "/a", "", "b,c", ""}), now, Request{"GET", "/a", "", "b", "c"}, ErrMismatch},
		{"path into query", [][]byte{k1}, Sign(k1, now, Request{"GET", "/a?b", "", "u", ""}), now, Request{"GET", "/a", "b", "u", ""}, ErrMismatch},
		// Version 1 (no query) is refused outright, not checked.
		{"version 1", [][]byte{k1}, strings.Replace(v, "v2;", "v1;", 1), now, r, ErrMalformed},
		{"too old", [][]byte{k1}, v, now.Add(MaxSkew + time.Second), r, ErrExpired},
		{"from the future", [][]byte{k1}, v, now.Add(-MaxSkew - time.Second), r, ErrExpired},
		{"garbage", [][]byte{k1}, "v1;t=x;s=y", now, r, ErrMalformed},
		{"other version", [][]byte{k1}, strings.Replace(v, "v2;", "v3;", 1), now, r, ErrMalformed},
		{"leading zero", [][]byte{k1}, strings.Replace(v, ";t=", ";t=0", 1), now, r, ErrMalformed},
	}
	for _, tc := range cases {
		if err := Verify(tc.keys, tc.value, tc.at, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestParseKeys(t *testing.T) {
	long := strings.Repeat("k", 32)
	keys, err := ParseKeys(" " + long + "\n" + long + "2 ")
	if err != nil || len(keys) != 2 {
		t.Fatalf("ParseKeys: %v %d", err, len(keys))
	}
	for _, bad := range []string{"", "   ", "short", long + " short"} {
		if _, err := ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	k := []byte(strings.Repeat("a", 32))
	now := time.Now()
	r := Request{Method: "GET", Path: "/api1/collections/", User: "alice", Groups: "analysts"}
	v := Sign(k, now, r)
	for b.Loop() {
		if err := Verify([][]byte{k}, v, now, r); err != nil {
			b.Fatal(err)
		}
	}
}
