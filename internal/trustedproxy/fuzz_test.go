package trustedproxy

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientIP: any X-Forwarded-For from any peer yields the peer itself or
// an address the header names that is not a trusted proxy, and from an
// untrusted peer always the peer: a client can never pick its address.
func FuzzClientIP(f *testing.F) {
	for _, s := range []struct{ peer, xff string }{
		{"127.0.0.1:1", "198.51.100.7"}, {"127.0.0.1:1", "1.2.3.4, 10.0.0.1, 127.0.0.2"}, {"203.0.113.9:5", "1.2.3.4"},
		{"[::1]:1", "fe80::1%eth0"}, {"127.0.0.1:1", "::ffff:1.2.3.4"}, {"127.0.0.1:1", "garbage, 1.2.3.4"}, {"bad", ""},
		{"127.0.0.1:1", ",,,"}, {"[::ffff:127.0.0.1]:1", "2001:db8::1"},
	} {
		f.Add(s.peer, s.xff)
	}
	set, err := Parse("127.0.0.0/8,::1/128,10.0.0.0/8")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		got := set.ClientIP(r)
		p := Peer(r)
		if !set.Contains(p) {
			if got != p {
				t.Fatalf("untrusted peer %q: client %v from X-Forwarded-For %q", peer, got, xff)
			}
			return
		}
		if got == p {
			return
		}
		if set.Contains(got) {
			t.Fatalf("client %v is a trusted proxy", got)
		}
		named := false
		for _, h := range strings.Split(xff, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(h)); err == nil && a.Unmap() == got {
				named = true
			}
		}
		if !named {
			t.Fatalf("client %v is not in X-Forwarded-For %q", got, xff)
		}
	})
}
