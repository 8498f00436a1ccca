package caddymodule

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
)

const fuzzHS256Secret = "fuzz-secret-fuzz-secret-fuzz-secret-0123"

// fuzzModule provisions a real taxii_auth accepting EdDSA (a static public
// key) and HS256, with Basic exchanged at a real token service that knows
// alice and bob.
func fuzzModule(f *testing.F) (*TaxiiAuth, signingKey) {
	key := newSigningKey(f, "k1")
	ts := newTokenService(f, key)
	dir := f.TempDir()
	secret := filepath.Join(dir, "hs256")
	if err := os.WriteFile(secret, []byte(fuzzHS256Secret), 0o600); err != nil {
		f.Fatal(err)
	}
	a := &TaxiiAuth{TokenURL: ts.authURL(), PublicKeyFile: writePublicKeyPEM(f, dir, key), HS256SecretFile: secret,
		Algorithms: []string{AlgEdDSA, AlgHS256}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	f.Cleanup(cancel)
	if err := a.Provision(ctx); err != nil {
		f.Fatal(err)
	}
	if err := a.Validate(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = a.Cleanup() })
	return a, key
}

// FuzzAuthorization drives the whole handler with any Authorization value
// (the scheme split, the Basic header's base64 and user:password, Bearer
// tokens): it never panics, refuses with 401 (or 429/503 from the token
// service), and lets through only alice and bob, as the token service and
// the signing key vouch.
func FuzzAuthorization(f *testing.F) {
	a, key := fuzzModule(f)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		"Basic " + b64("alice:correct horse"), "Basic   " + b64("alice:correct horse"), "basic " + b64("bob:bobs password"),
		"Basic " + b64("alice:wrong"), "Basic " + b64("alice"), "Basic " + b64(":"), "Basic !!!", "Basic ", "Basic",
		"Bearer " + signEd(key, validClaims("alice", "g1")), "Bearer   " + signEd(key, validClaims("bob")), "Bearer x.y.z",
		"Bearer ", "Digest x", "", "Basic " + b64("al\x00ice:correct horse"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, authz string) {
		r := httptest.NewRequest(http.MethodGet, "/taxii2/", nil)
		r.Header.Set("Authorization", authz)
		w := httptest.NewRecorder()
		var user string
		passed := false
		err := a.ServeHTTP(w, r, nextFunc(func(w http.ResponseWriter, r *http.Request) error {
			passed, user = true, r.Header.Get(a.UserHeader)
			return nil
		}))
		if err != nil {
			t.Fatalf("%q: handler error %v", authz, err)
		}
		if passed {
			if user != "alice" && user != "bob" {
				t.Fatalf("%q let through as %q", authz, user)
			}
			return
		}
		switch w.Code {
		case http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		default:
			t.Fatalf("%q: status %d %s", authz, w.Code, w.Body)
		}
	})
}

type nextFunc func(http.ResponseWriter, *http.Request) error

func (n nextFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return n(w, r) }

// FuzzVerifyJWT: the token verifier takes any string, and accepts only
// tokens signed with the configured keys and algorithms for the contract's
// claims: mutations of real tokens are refused unless they decode to the
// same signed content.
func FuzzVerifyJWT(f *testing.F) {
	a, key := fuzzModule(f)
	hs := func(c jwt.Claims, alg jwt.SigningMethod) string {
		s, err := jwt.NewWithClaims(alg, c).SignedString([]byte(fuzzHS256Secret))
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	expired := validClaims("alice")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	long := validClaims("alice")
	long["exp"] = time.Now().Add(48 * time.Hour).Unix()
	for _, s := range []string{
		signEd(key, validClaims("alice", "analysts")), hs(validClaims("bob"), jwt.SigningMethodHS256),
		hs(validClaims("alice"), jwt.SigningMethodHS512), signEd(key, expired), signEd(key, long),
		signEd(key, validClaims("a\x01b")), signEd(key, validClaims("alice", "a,b")),
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.", "a.b.c", "....", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, _, err := a.verifier.verifyOnce(raw)
		if err != nil {
			return
		}
		if id.User != "alice" && id.User != "bob" || !headerSafe(id.User) {
			t.Fatalf("accepted %q as %q", raw, id.User)
		}
		for _, g := range strings.Split(id.Groups, ",") {
			if id.Groups != "" && !headerSafe(g) {
				t.Fatalf("accepted group %q", g)
			}
		}
		if time.Until(id.Expiry) > a.verifier.maxLifetime+time.Minute {
			t.Fatalf("accepted a token living until %v", id.Expiry)
		}
	})
}

// FuzzCanonicalPath: whatever a client sends, an accepted path is one
// spelling of plain unreserved segments, which canonicalPath keeps as it
// is, and never holds a dot segment or an empty segment.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/api1/collections/", "/%61/", "/a/%2e%2e/", "//", "/a/./b", "/%2F/", "/a%", "/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := canonicalPath(in)
		if !ok {
			return
		}
		again, ok2 := canonicalPath(got)
		if !ok2 || again != got {
			t.Fatalf("%q -> %q is not stable (%q, %v)", in, got, again, ok2)
		}
		for i := 0; i < len(got); i++ {
			if got[i] != '/' && !isUnreserved(got[i]) {
				t.Fatalf("%q -> %q holds %q", in, got, got[i])
			}
		}
		segs := strings.Split(got, "/")
		for i, s := range segs[1:] {
			if s == "." || s == ".." || (s == "" && i < len(segs)-2) {
				t.Fatalf("%q -> %q holds segment %q", in, got, s)
			}
		}
	})
}

// FuzzRewriteCollections: whatever a backend answers, the rewrite either
// refuses it or yields JSON listing only collections the caller may see.
func FuzzRewriteCollections(f *testing.F) {
	f.Add([]byte(backendList))
	f.Add([]byte(`{"collections":[{"id":"` + polInternal + `","id":"` + polShared + `"}]}`))
	f.Add([]byte(`{"collections":null,"x":[1,{"a":"b"}]}`))
	f.Add([]byte(`{"collections":[{"id":1},{"alias":"shared-iocs"}]}`))
	p := testPolicy(f)
	root := p.view.Load().roots[1]
	partner := &caller{user: "pat", groups: "partners"}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := rewriteCollections(body, root, partner)
		if err != nil {
			return
		}
		var got struct {
			Collections []struct {
				ID string `json:"id"`
			} `json:"collections"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("rewrote %q into invalid JSON %q: %v", body, out, err)
		}
		for _, c := range got.Collections {
			if lowerASCII(c.ID) != polShared && lowerASCII(c.ID) != polPublic {
				t.Fatalf("partner sees %q in %q", c.ID, out)
			}
		}
	})
}
