package trustedproxy

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestParseAndContains(t *testing.T) {
	s, err := Parse(Default + ", 10.1.0.0/16, 192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "::ffff:127.0.0.1": true, "10.1.200.3": true,
		"192.0.2.7": true, "192.0.2.8": false, "10.2.0.1": false, "8.8.8.8": false,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "[" + addr + "]:1234"
		if got := s.FromTrusted(r); got != want {
			t.Errorf("FromTrusted(%s) = %v, want %v", addr, got, want)
		}
	}
	for _, bad := range []string{"nonsense", "10.0.0.0/33", "1.2.3"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		}
	}
	var none Set
	if none.Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Error("the zero Set trusts loopback")
	}
}

func TestClientIP(t *testing.T) {
	s, _ := Parse(Default)
	cases := []struct{ peer, xff, want string }{
		{"127.0.0.1:5000", "203.0.113.9", "203.0.113.9"},
		{"127.0.0.1:5000", "6.6.6.6, 203.0.113.9", "203.0.113.9"},   // left entry is client-forged
		{"127.0.0.1:5000", "203.0.113.9, 127.0.0.1", "203.0.113.9"}, // skips trusted hops
		{"198.51.100.4:5000", "203.0.113.9", "198.51.100.4"},        // untrusted peer: header ignored
		{"127.0.0.1:5000", "", "127.0.0.1"},
		{"127.0.0.1:5000", "garbage", "127.0.0.1"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := s.ClientIP(r).String(); got != c.want {
			t.Errorf("ClientIP(peer %s, XFF %q) = %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
}
