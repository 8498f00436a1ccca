package tokenservice

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Argon2Params is the cost of new argon2id password hashes. Stored hashes
// keep the cost they were made with; a successful login re-hashes one whose
// cost differs from the configured one.
type Argon2Params struct {
	// Memory in KiB each hash uses. Every concurrent hash holds this much
	// (see Config.MaxConcurrentHashes).
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the parallelism (lanes) of one hash.
	Threads uint8
}

// DefaultArgon2Params is RFC 9106's second recommended option with one lane
// per hash (64 MiB, 3 passes): well above OWASP's minimum, while one core can
// still verify several logins per second. Concurrent hashes, not lanes, use
// the other cores.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Memory: 64 * 1024, Time: 3, Threads: 1}
}

// Bounds on parameters read from stored or imported hashes, so a crafted
// hash in a sync file cannot make one login allocate gigabytes or spin for
// minutes.
const (
	maxArgon2Memory     = 1 << 20 // KiB (1 GiB)
	maxArgon2Time       = 64
	maxPBKDF2Iterations = 10_000_000
	maxScryptN          = 1 << 20
	maxScryptRP         = 64
	argon2SaltLen       = 16
	argon2KeyLen        = 32
)

func (p Argon2Params) validate() error {
	switch {
	case p.Memory < 8*uint32(max(p.Threads, 1)) || p.Memory > maxArgon2Memory:
		return fmt.Errorf("argon2 memory %d KiB out of range (8 KiB per thread to %d KiB)", p.Memory, maxArgon2Memory)
	case p.Time < 1 || p.Time > maxArgon2Time:
		return fmt.Errorf("argon2 time %d out of range (1 to %d)", p.Time, maxArgon2Time)
	case p.Threads < 1:
		return errors.New("argon2 threads must be at least 1")
	}
	return nil
}

// String is the PHC parameter string, as in "m=65536,t=3,p=1".
func (p Argon2Params) String() string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads)
}

// ParseArgon2Params reads "m=65536,t=3,p=1" (any order; all three needed).
func ParseArgon2Params(s string) (Argon2Params, error) {
	var p Argon2Params
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || seen[k] {
			return Argon2Params{}, fmt.Errorf("argon2 parameters %q: want m=<KiB>,t=<passes>,p=<threads>", s)
		}
		seen[k] = true
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return Argon2Params{}, fmt.Errorf("argon2 parameters %q: p at most 255", s)
			}
			p.Threads = uint8(n)
		default:
			return Argon2Params{}, fmt.Errorf("argon2 parameters %q: unknown key %q", s, k)
		}
	}
	if len(seen) != 3 {
		return Argon2Params{}, fmt.Errorf("argon2 parameters %q: want m=<KiB>,t=<passes>,p=<threads>", s)
	}
	return p, p.validate()
}

// HashPassword hashes password with argon2id at cost p, in PHC format:
// $argon2id$v=19$m=...,t=...,p=...$salt$hash (unpadded standard base64).
func HashPassword(password string, p Argon2Params) (string, error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	salt := make([]byte, argon2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("reading a salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, argon2KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$%s$%s$%s", argon2.Version, p, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// errUnknownHash reports a stored value that is no hash format we know,
// for example a plain password pasted where a hash belongs.
var errUnknownHash = errors.New("not a supported password hash (argon2id PHC, bcrypt, Werkzeug pbkdf2: or scrypt:)")

// hashScheme names a stored hash's format, for metrics and re-hash decisions.
func hashScheme(encoded string) string {
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		return "argon2id"
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		return "bcrypt"
	case strings.HasPrefix(encoded, "pbkdf2:"):
		return "pbkdf2"
	case strings.HasPrefix(encoded, "scrypt:"):
		return "scrypt"
	}
	return "unknown"
}

// CheckPasswordHash reports whether encoded is a hash VerifyPassword can
// check, without checking any password. Sync uses it to refuse plain text.
func CheckPasswordHash(encoded string) error {
	_, err := verifyPassword(encoded, "", true)
	return err
}

// VerifyPassword reports whether password matches encoded. The comparison is
// constant-time; an error means encoded is malformed, never a mismatch.
func VerifyPassword(encoded, password string) (bool, error) {
	return verifyPassword(encoded, password, false)
}

// verifyPassword parses encoded and, unless parseOnly, derives and compares.
func verifyPassword(encoded, password string, parseOnly bool) (bool, error) {
	switch hashScheme(encoded) {
	case "argon2id":
		p, salt, want, err := parseArgon2id(encoded)
		if err != nil || parseOnly {
			return false, err
		}
		got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
		return subtle.ConstantTimeCompare(got, want) == 1, nil
	case "bcrypt":
		if _, err := bcrypt.Cost([]byte(encoded)); err != nil {
			return false, fmt.Errorf("bcrypt hash: %w", err)
		}
		if parseOnly {
			return false, nil
		}
		// Compares in constant time; passwords over 72 bytes are a mismatch.
		return bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password)) == nil, nil
	case "pbkdf2":
		newHash, iter, salt, want, err := parseWerkzeugPBKDF2(encoded)
		if err != nil || parseOnly {
			return false, err
		}
		got, err := pbkdf2.Key(newHash, password, []byte(salt), iter, len(want))
		if err != nil {
			return false, fmt.Errorf("pbkdf2: %w", err)
		}
		return subtle.ConstantTimeCompare(got, want) == 1, nil
	case "scrypt":
		n, r, p, salt, want, err := parseWerkzeugScrypt(encoded)
		if err != nil || parseOnly {
			return false, err
		}
		got, err := scrypt.Key([]byte(password), []byte(salt), n, r, p, len(want))
		if err != nil {
			return false, fmt.Errorf("scrypt: %w", err)
		}
		return subtle.ConstantTimeCompare(got, want) == 1, nil
	}
	return false, errUnknownHash
}

func parseArgon2id(encoded string) (Argon2Params, []byte, []byte, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return Argon2Params{}, nil, nil, errors.New("argon2id hash: want $argon2id$v=19$m=..,t=..,p=..$salt$hash")
	}
	p, err := ParseArgon2Params(parts[3])
	if err != nil {
		return Argon2Params{}, nil, nil, fmt.Errorf("argon2id hash: %w", err)
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 128 {
		return Argon2Params{}, nil, nil, errors.New("argon2id hash: bad salt or hash encoding")
	}
	return p, salt, key, nil
}

// parseWerkzeugPBKDF2 reads Werkzeug's "pbkdf2:sha256:600000$salt$hexhash".
// The salt is used as its literal text, as Werkzeug does.
func parseWerkzeugPBKDF2(encoded string) (func() hash.Hash, int, string, []byte, error) {
	method, salt, want, err := splitWerkzeug(encoded)
	if err != nil {
		return nil, 0, "", nil, err
	}
	args := strings.Split(strings.TrimPrefix(method, "pbkdf2:"), ":")
	// Werkzeug's default iteration count changed between releases, so an
	// explicit count is required rather than guessed.
	if len(args) != 2 {
		return nil, 0, "", nil, errors.New("pbkdf2 hash: want pbkdf2:<digest>:<iterations>$salt$hex")
	}
	var newHash func() hash.Hash
	switch args[0] {
	case "sha1":
		newHash = sha1.New
	case "sha256":
		newHash = sha256.New
	case "sha512":
		newHash = sha512.New
	default:
		return nil, 0, "", nil, fmt.Errorf("pbkdf2 hash: unsupported digest %q", args[0])
	}
	iter, err := strconv.Atoi(args[1])
	if err != nil || iter < 1 || iter > maxPBKDF2Iterations {
		return nil, 0, "", nil, fmt.Errorf("pbkdf2 hash: iterations %q out of range", args[1])
	}
	return newHash, iter, salt, want, nil
}

// parseWerkzeugScrypt reads Werkzeug's "scrypt:32768:8:1$salt$hexhash".
func parseWerkzeugScrypt(encoded string) (n, r, p int, salt string, want []byte, err error) {
	method, salt, want, err := splitWerkzeug(encoded)
	if err != nil {
		return 0, 0, 0, "", nil, err
	}
	args := strings.Split(strings.TrimPrefix(method, "scrypt:"), ":")
	if len(args) != 3 {
		return 0, 0, 0, "", nil, errors.New("scrypt hash: want scrypt:<N>:<r>:<p>$salt$hex")
	}
	n, err1 := strconv.Atoi(args[0])
	r, err2 := strconv.Atoi(args[1])
	p, err3 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil || err3 != nil || n < 2 || n > maxScryptN || n&(n-1) != 0 ||
		r < 1 || p < 1 || r*p > maxScryptRP {
		return 0, 0, 0, "", nil, errors.New("scrypt hash: parameters out of range")
	}
	return n, r, p, salt, want, nil
}

func splitWerkzeug(encoded string) (method, salt string, want []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 3 || parts[1] == "" {
		return "", "", nil, errors.New("werkzeug hash: want method$salt$hex")
	}
	want, err = hex.DecodeString(parts[2])
	if err != nil || len(want) < 16 || len(want) > 128 {
		return "", "", nil, errors.New("werkzeug hash: bad hex digest")
	}
	return parts[0], parts[1], want, nil
}

// needsRehash reports whether a hash that just verified should be replaced
// by argon2id at cost p: imported formats, bcrypt, and argon2id at another
// cost.
func needsRehash(encoded string, p Argon2Params) bool {
	if hashScheme(encoded) != "argon2id" {
		return true
	}
	got, _, _, err := parseArgon2id(encoded)
	return err != nil || got != p
}
