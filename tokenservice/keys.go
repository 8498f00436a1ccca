package tokenservice

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// keyLockKey serialises key creation and rotation across replicas and the
// admin command, so that two replicas starting at once make one key.
const keyLockKey = 0x7a_78_77_6b_65_79 // "taxiway key"

// retiredKeyKeep is how long a retired key's row (public part only) is kept
// before a later rotation deletes it: past any token lifetime allowed.
const retiredKeyKeep = MaxTTL + time.Hour

// signingKey is the Ed25519 key that signs new tokens.
type signingKey struct {
	kid  string
	priv ed25519.PrivateKey
}

// publicKey is a key published in the JWKS.
type publicKey struct {
	kid string
	pub ed25519.PublicKey
}

// thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key, used
// as its kid so a kid always names exactly one key.
func thumbprint(pub ed25519.PublicKey) string {
	x := base64.RawURLEncoding.EncodeToString(pub)
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// EnsureSigningKey creates the first Ed25519 signing key unless one is
// active, and returns the active key's kid. Safe when replicas start at once.
func EnsureSigningKey(ctx context.Context, pool *pgxpool.Pool, kek []byte) (string, error) {
	var kid string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", keyLockKey); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, "SELECT kid FROM token_signing_keys WHERE retired_at IS NULL").Scan(&kid)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		kid, err = insertKey(ctx, tx, kek)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("ensuring a signing key: %w", err)
	}
	return kid, nil
}

// RotateSigningKey makes a new signing key active and retires the current
// one. The retired key's private half is erased at once; its public half
// stays in the JWKS until every token it signed has expired. It returns the
// new kid. Running services pick the new key up within Config.KeyRefresh.
func RotateSigningKey(ctx context.Context, pool *pgxpool.Pool, kek []byte) (string, error) {
	var kid string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", keyLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE token_signing_keys SET retired_at = clock_timestamp(), private_key = ''::bytea
			WHERE retired_at IS NULL`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM token_signing_keys WHERE retired_at < clock_timestamp() - make_interval(secs => $1)`,
			retiredKeyKeep.Seconds()); err != nil {
			return err
		}
		var err error
		kid, err = insertKey(ctx, tx, kek)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("rotating the signing key: %w", err)
	}
	return kid, nil
}

func insertKey(ctx context.Context, tx pgx.Tx, kek []byte) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generating an Ed25519 key: %w", err)
	}
	kid := thumbprint(pub)
	stored := priv.Seed()
	if kek != nil {
		if stored, err = sealSeed(kek, kid, stored); err != nil {
			return "", err
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO token_signing_keys (kid, alg, private_key, encrypted, public_key) VALUES ($1, $2, $3, $4, $5)`,
		kid, AlgEdDSA, stored, kek != nil, []byte(pub))
	return kid, err
}

// sealSeed encrypts a private key seed with AES-256-GCM, bound to its kid.
func sealSeed(kek []byte, kid string, seed []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("reading a nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, seed, []byte(kid)), nil
}

func openSeed(kek []byte, kid string, sealed []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("sealed key too short")
	}
	seed, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(kid))
	if err != nil {
		return nil, errors.New("cannot unseal: wrong key encryption key")
	}
	return seed, nil
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("key encryption key: %w", err)
	}
	return cipher.NewGCM(block)
}

// keyring caches the active signing key and the published keys, rereading
// them every refresh so rotations by other processes take effect.
type keyring struct {
	pool    *pgxpool.Pool
	kek     []byte
	publish time.Duration // how long after retirement a key stays published
	refresh time.Duration
	logger  *slog.Logger

	mu       sync.Mutex
	active   signingKey
	jwks     []byte
	loadedAt time.Time
}

// current returns the signing key and the JWKS document, reloading them when
// stale. A failed reload keeps serving the cached keys (Postgres may be
// briefly away) and is logged.
func (k *keyring) current(ctx context.Context) (signingKey, []byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.loadedAt.IsZero() && time.Since(k.loadedAt) < k.refresh {
		return k.active, k.jwks, nil
	}
	active, jwks, err := k.load(ctx)
	if err != nil {
		if k.loadedAt.IsZero() {
			return signingKey{}, nil, err
		}
		k.logger.Warn("reloading signing keys failed; using cached keys", "error", err)
		k.loadedAt = time.Now() // retry after another refresh period, not per request
		return k.active, k.jwks, nil
	}
	k.active, k.jwks, k.loadedAt = active, jwks, time.Now()
	return k.active, k.jwks, nil
}

func (k *keyring) load(ctx context.Context) (signingKey, []byte, error) {
	rows, err := k.pool.Query(ctx, `SELECT kid, public_key, private_key, encrypted, retired_at IS NULL
		FROM token_signing_keys
		WHERE alg = $1 AND (retired_at IS NULL OR retired_at > clock_timestamp() - make_interval(secs => $2))
		ORDER BY created_at DESC`, AlgEdDSA, k.publish.Seconds())
	if err != nil {
		return signingKey{}, nil, fmt.Errorf("loading signing keys: %w", err)
	}
	defer rows.Close()
	var (
		active signingKey
		pubs   []publicKey
	)
	for rows.Next() {
		var (
			kid             string
			pub, stored     []byte
			sealed, current bool
		)
		if err := rows.Scan(&kid, &pub, &stored, &sealed, &current); err != nil {
			return signingKey{}, nil, fmt.Errorf("loading signing keys: %w", err)
		}
		if len(pub) != ed25519.PublicKeySize {
			return signingKey{}, nil, fmt.Errorf("signing key %s: malformed public key", kid)
		}
		pubs = append(pubs, publicKey{kid: kid, pub: pub})
		if !current {
			continue
		}
		seed := stored
		if sealed {
			if k.kek == nil {
				return signingKey{}, nil, fmt.Errorf("signing key %s is sealed: configure the key encryption key", kid)
			}
			if seed, err = openSeed(k.kek, kid, stored); err != nil {
				return signingKey{}, nil, fmt.Errorf("signing key %s: %w", kid, err)
			}
		}
		if len(seed) != ed25519.SeedSize {
			return signingKey{}, nil, fmt.Errorf("signing key %s: malformed private key", kid)
		}
		active = signingKey{kid: kid, priv: ed25519.NewKeyFromSeed(seed)}
		if !active.priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(pub)) {
			return signingKey{}, nil, fmt.Errorf("signing key %s: private and public halves differ", kid)
		}
	}
	if err := rows.Err(); err != nil {
		return signingKey{}, nil, fmt.Errorf("loading signing keys: %w", err)
	}
	if active.priv == nil {
		return signingKey{}, nil, errors.New("no active signing key (run taxiway key rotate, or start the service once)")
	}
	return active, marshalJWKS(pubs), nil
}
