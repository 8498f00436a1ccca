package caddymodule

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"io"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// identity is what a verified token says about its bearer.
type identity struct {
	User    string
	Groups  string    // comma-separated, as sent to the backend
	Expiry  time.Time // the token's exp
	JTI     string    // the token's id, for single-token revocation
	Version int64     // the token's account_version, for account revocation
}

// newCacheKey returns the per-process random HMAC key: cache keys are then
// useless to anyone who reads the process's memory without it, and never
// equal across processes.
func newCacheKey() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, nil
}

// identityCache remembers verified identities under an HMAC of the
// credentials (Basic user and password, or a Bearer token), so that a client
// costs one exchange or signature check per TTL rather than one per request.
// It is bounded (least recently used goes first), every entry expires at
// min(now + ttl, token exp), and failures are never stored. It also keeps one
// exchange in flight per key.
type identityCache struct {
	hashers sync.Pool
	ttl     time.Duration
	size    int

	mu    sync.Mutex
	order *list.List // front = most recently used; values are *cacheEntry
	items map[[sha256.Size]byte]*list.Element

	flight singleflight.Group
}

type cacheEntry struct {
	key   [sha256.Size]byte
	id    identity
	until time.Time
}

// newIdentityCache derives its own HMAC key from master and kind, so the
// Basic and Bearer caches never share keys.
func newIdentityCache(master []byte, kind string, size int, ttl time.Duration) *identityCache {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(kind))
	derived := m.Sum(nil)
	c := &identityCache{
		ttl:   ttl,
		size:  size,
		order: list.New(),
		items: make(map[[sha256.Size]byte]*list.Element),
	}
	c.hashers.New = func() any { return hmac.New(sha256.New, derived) }
	return c
}

// key is HMAC(derived key, each part prefixed with its length as 8 bytes),
// so that distinct (user, password) pairs always give distinct inputs,
// whatever bytes they hold (NUL included: Basic credentials are base64).
func (c *identityCache) key(parts ...string) [sha256.Size]byte {
	h := c.hashers.Get().(hash.Hash)
	h.Reset()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		_, _ = io.WriteString(h, p)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	c.hashers.Put(h)
	return k
}

// get returns the identity stored under k if it has not expired.
func (c *identityCache) get(k [sha256.Size]byte, now time.Time) (identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return identity{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.until) {
		c.order.Remove(el)
		delete(c.items, k)
		return identity{}, false
	}
	c.order.MoveToFront(el)
	return e.id, true
}

// put stores id under k until min(now + ttl, id.Expiry).
func (c *identityCache) put(k [sha256.Size]byte, id identity, now time.Time) {
	until := now.Add(c.ttl)
	if id.Expiry.Before(until) {
		until = id.Expiry
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		e := el.Value.(*cacheEntry)
		e.id, e.until = id, until
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(&cacheEntry{key: k, id: id, until: until})
	for c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*cacheEntry).key)
	}
}

// purge forgets everything, for example when the signing keys change.
func (c *identityCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	clear(c.items)
}

// remove forgets the entry under k.
func (c *identityCache) remove(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.order.Remove(el)
		delete(c.items, k)
	}
}

// len reports the number of entries, for tests.
func (c *identityCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
