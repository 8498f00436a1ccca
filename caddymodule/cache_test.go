package caddymodule

import (
	"net/http"
	"testing"
	"time"
)

func TestIdentityCacheBoundsAndExpiry(t *testing.T) {
	master, err := newCacheKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := newIdentityCache(master, "basic", 2, time.Minute)

	// Never past the token's exp, even with a longer TTL.
	k := c.key("alice", "pw")
	c.put(k, identity{User: "alice", Expiry: now.Add(10 * time.Second)}, now)
	if _, ok := c.get(k, now.Add(9*time.Second)); !ok {
		t.Error("entry gone before exp")
	}
	if _, ok := c.get(k, now.Add(10*time.Second)); ok {
		t.Error("entry served at exp")
	}
	// Never past the TTL, even with a longer-lived token.
	c.put(k, identity{User: "alice", Expiry: now.Add(time.Hour)}, now)
	if _, ok := c.get(k, now.Add(time.Minute)); ok {
		t.Error("entry served past the TTL")
	}
	// Already expired tokens are not stored.
	c.put(k, identity{User: "alice", Expiry: now.Add(-time.Second)}, now)
	if c.len() != 0 {
		t.Error("expired identity stored")
	}

	// Bounded: the least recently used entry goes first.
	ka, kb, kc := c.key("a", "1"), c.key("b", "1"), c.key("c", "1")
	for _, k := range [][32]byte{ka, kb} {
		c.put(k, identity{User: "x", Expiry: now.Add(time.Hour)}, now)
	}
	c.get(ka, now) // a is now more recent than b
	c.put(kc, identity{User: "x", Expiry: now.Add(time.Hour)}, now)
	if _, ok := c.get(kb, now); ok || c.len() != 2 {
		t.Errorf("LRU eviction: b still there or size %d", c.len())
	}
	if _, ok := c.get(ka, now); !ok {
		t.Error("recently used entry evicted")
	}

	// Keys separate user from password and depend on the kind.
	if c.key("ab", "c") == c.key("a", "bc") {
		t.Error("user/password boundary not in the key")
	}
	if newIdentityCache(master, "bearer", 2, time.Minute).key("a", "b") == c.key("a", "b") {
		t.Error("basic and bearer caches share keys")
	}
	c.purge()
	if c.len() != 0 {
		t.Error("purge left entries")
	}
}

func TestHeaderStripper(t *testing.T) {
	s := newHeaderStripper("X-Authenticated-User", "X-Authenticated-Groups")
	h := http.Header{}
	for _, k := range append(spoofed, "x-AUTHENTICATED-user", "X_authenticated.Groups") {
		h[k] = []string{"evil"}
	}
	h["X-Authenticated-Userx"] = []string{"keep"}
	h["Accept"] = []string{"keep"}
	s.strip(h)
	if len(h) != 2 || h.Get("Accept") != "keep" || h["X-Authenticated-Userx"] == nil {
		t.Errorf("after strip: %v", h)
	}
}
