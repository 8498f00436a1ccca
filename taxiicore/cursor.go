package taxiicore

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// A cursor is the stateless `next` token: the date_added (Unix
// microseconds) of the last item of the previous page, and an HMAC binding
// it to the endpoint, collection, caller and normalized filters it was
// issued for. date_added is unique per collection, so it alone is the
// keyset position. Any replica holding the key can continue the listing.
type cursorSigner struct {
	key []byte
}

const (
	cursorMACSize = 16
	cursorSize    = 8 + cursorMACSize
)

var errCursor = errors.New("the next token is malformed, or was issued for another query, collection or user")

func (c cursorSigner) mac(after []byte, binding string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("taxiway-cursor-v1\x00"))
	m.Write([]byte(binding))
	m.Write([]byte{0})
	m.Write(after)
	return m.Sum(nil)[:cursorMACSize]
}

func (c cursorSigner) encode(afterMicros int64, binding string) string {
	buf := make([]byte, 8, cursorSize)
	binary.BigEndian.PutUint64(buf, uint64(afterMicros))
	buf = append(buf, c.mac(buf, binding)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// decode returns the position in token, provided it was issued for binding.
func (c cursorSigner) decode(token, binding string) (int64, error) {
	buf, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(buf) != cursorSize {
		return 0, errCursor
	}
	if !hmac.Equal(buf[8:], c.mac(buf[:8], binding)) {
		return 0, errCursor
	}
	return int64(binary.BigEndian.Uint64(buf[:8])), nil
}
