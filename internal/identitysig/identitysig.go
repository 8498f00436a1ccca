// Package identitysig is the signature that lets a backend tell identity
// headers set by the Taxiway gateway from headers any other local process
// could send. The gateway (caddymodule) signs; the core (taxiicore) checks.
//
// The header value is
//
//	v2;t=<unix seconds>;s=<base64url HMAC-SHA256>
//
// where the MAC, under a secret shared by gateway and core, covers a fixed
// label and then, each prefixed with its length as 4 bytes big-endian: "v2",
// the timestamp in decimal, the request method, the escaped request path
// (url.URL.EscapedPath), the raw query string (url.URL.RawQuery, as the
// client sent it), the user header's value and the groups header's value
// ("" when absent). A backend accepts it when the MAC matches under one of
// its keys and the timestamp is within MaxSkew of its own clock. A foreign
// backend that does not check it can simply ignore the header.
//
// Version 1 did not cover the query, so a signature overheard for
// DELETE …/objects/ID/?match[version]=X also deleted every version of ID
// when replayed without the query. It is refused: gateway and core come
// from one release and are upgraded together.
package identitysig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// Header carries the signature from the gateway to the backend.
const Header = "X-Authenticated-Signature"

// MinKeyLen is the shortest key accepted, in bytes.
const MinKeyLen = 32

// MaxSkew is how far the timestamp may be from the verifier's clock, either
// way: a signature overheard on the private network is worth at most this
// long, for the same method, path, query and identity.
const MaxSkew = 60 * time.Second

const (
	version = "v2"
	label   = "taxiway identity signature\x00"
)

// ParseKeys reads one or more keys separated by white space (the first
// signs; all verify, so that a key can be rotated without a flag day).
// Every key must have at least MinKeyLen bytes.
func ParseKeys(s string) ([][]byte, error) {
	var keys [][]byte
	for _, f := range strings.Fields(s) {
		if len(f) < MinKeyLen {
			return nil, fmt.Errorf("an identity key has %d bytes, at least %d are required", len(f), MinKeyLen)
		}
		keys = append(keys, []byte(f))
	}
	if len(keys) == 0 {
		return nil, errors.New("no identity key given")
	}
	return keys, nil
}

// Request is what a signature covers. Query is the raw query string,
// without its "?".
type Request struct {
	Method, Path, Query, User, Groups string
}

func mac(key []byte, ts string, r Request) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	for _, f := range []string{version, ts, r.Method, r.Path, r.Query, r.User, r.Groups} {
		writeField(m, f)
	}
	return m.Sum(nil)
}

func writeField(h hash.Hash, f string) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(f)))
	h.Write(n[:])
	h.Write([]byte(f))
}

// Sign returns the header value for r at time now, under key.
func Sign(key []byte, now time.Time, r Request) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return version + ";t=" + ts + ";s=" + base64.RawURLEncoding.EncodeToString(mac(key, ts, r))
}

// Errors of Verify.
var (
	ErrMissing   = errors.New("identity signature missing")
	ErrMalformed = errors.New("identity signature malformed")
	ErrExpired   = errors.New("identity signature outside the time window")
	ErrMismatch  = errors.New("identity signature does not match")
)

// Verify checks the header value against r under any of keys, at time now.
func Verify(keys [][]byte, value string, now time.Time, r Request) error {
	if value == "" {
		return ErrMissing
	}
	v, rest, ok1 := strings.Cut(value, ";t=")
	ts, sig, ok2 := strings.Cut(rest, ";s=")
	if !ok1 || !ok2 || v != version || len(ts) == 0 || len(ts) > 19 {
		return ErrMalformed
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(secs, 10) != ts {
		return ErrMalformed
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return ErrMalformed
	}
	if d := now.Sub(time.Unix(secs, 0)); d > MaxSkew || d < -MaxSkew {
		return ErrExpired
	}
	for _, k := range keys {
		if hmac.Equal(got, mac(k, ts, r)) {
			return nil
		}
	}
	return ErrMismatch
}
