package main

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"

	"github.com/taxiway/taxiway/tokenservice"
)

// timingCase is one kind of failed login: an account stored with hash (or
// none), tried with a wrong password (or, disabled, the right one).
type timingCase struct {
	name, user, hash string
	disabled         bool
}

// failureTiming times failed logins of every kind, one at a time with the
// cases interleaved (so that load from elsewhere hits them alike), and
// prints each median with its ratio to an unknown user's, the baseline an
// attacker compares against. Beside it: what verifying each stored hash
// alone costs, which the answer's time must not reveal.
func failureTiming(ctx context.Context, pool *pgxpool.Pool, argon tokenservice.Argon2Params, rounds int, fail func(user, password string) error) error {
	const password = "timing-password"
	otherArgon, err := tokenservice.HashPassword(password, tokenservice.Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1})
	if err != nil {
		return err
	}
	configured, err := tokenservice.HashPassword(password, argon)
	if err != nil {
		return err
	}
	bc, err := bcrypt.GenerateFromPassword([]byte(password), 10)
	if err != nil {
		return err
	}
	cases := []timingCase{
		{name: "unknown user", user: "nobody"},
		{name: "wrong password, Argon2id " + argon.String(), user: "t-argon", hash: configured},
		{name: "wrong password, Argon2id m=19456,t=2,p=1", user: "t-argon-other", hash: otherArgon},
		{name: "wrong password, Werkzeug pbkdf2:sha256:600000", user: "t-pbkdf2", hash: werkzeugPBKDF2(password, 600000)},
		{name: "wrong password, Werkzeug scrypt:32768:8:1", user: "t-scrypt", hash: werkzeugScrypt(password)},
		{name: "wrong password, bcrypt cost 10", user: "t-bcrypt", hash: string(bc)},
		{name: "disabled account, right password", user: "t-disabled", hash: configured, disabled: true},
	}
	for _, c := range cases[1:] {
		if err := tokenservice.CreateAccount(ctx, pool, c.user, c.hash, nil); err != nil {
			return err
		}
		if c.disabled {
			if err := tokenservice.SetDisabled(ctx, pool, c.user, true); err != nil {
				return err
			}
		}
	}
	took := make([][]time.Duration, len(cases))
	verify := make([][]time.Duration, len(cases))
	for range rounds {
		for i, c := range cases {
			pw := "wrong-" + password
			if c.disabled {
				pw = password
			}
			start := time.Now()
			if err := fail(c.user, pw); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			took[i] = append(took[i], time.Since(start))
			if c.hash != "" {
				start = time.Now()
				_, _ = tokenservice.VerifyPassword(c.hash, pw)
				verify[i] = append(verify[i], time.Since(start))
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	fmt.Printf("Failed logins over HTTP on loopback, one at a time, %d per case interleaved:\n\n", rounds)
	fmt.Println("| case | answer median | ratio to unknown user | verifying the stored hash alone, median |")
	fmt.Println("|---|---|---|---|")
	base := median(took[0])
	for i, c := range cases {
		alone := "-"
		if len(verify[i]) > 0 {
			alone = median(verify[i]).Round(100 * time.Microsecond).String()
		}
		m := median(took[i])
		fmt.Printf("| %s | %s | %.3f | %s |\n", c.name, m.Round(100*time.Microsecond), float64(m)/float64(base), alone)
	}
	return nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// werkzeugPBKDF2 and werkzeugScrypt make hashes as Werkzeug's
// generate_password_hash does (the salt is used as its text).
func werkzeugPBKDF2(password string, iterations int) string {
	salt := rand.Text()[:16]
	key, err := pbkdf2.Key(sha256.New, password, []byte(salt), iterations, 32)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("pbkdf2:sha256:%d$%s$%s", iterations, salt, hex.EncodeToString(key))
}

func werkzeugScrypt(password string) string {
	salt := rand.Text()[:16]
	key, err := scrypt.Key([]byte(password), []byte(salt), 32768, 8, 1, 64)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("scrypt:32768:8:1$%s$%s", salt, hex.EncodeToString(key))
}
