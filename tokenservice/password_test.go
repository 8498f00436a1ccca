package tokenservice

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Hashes made by Werkzeug's generate_password_hash (as OpenTAXII stores
// them) for the password "opentaxii-pw".
const (
	werkzeugPBKDF2    = "pbkdf2:sha256:1000$54nqkQM3FI0gM6QH$b054eedf9f9ce81e183418e06b07f6873d5cac204b9b33ddd422618b89d1fc8a"
	werkzeugPBKDF2512 = "pbkdf2:sha512:1000$qTgl9nnpv8XygkuA$935ea192890028b3cdb864e85465053a1e8ef19e9da1d62a1871bcadeadf4ffd636e07e7ccaebc0f6d6d88e5efde4da2d80474c446305a12068e9dcbf8085bd9"
	werkzeugScrypt    = "scrypt:1024:8:1$GTU2eK4mbNAFtqkE$aef49e427d1af6316d01b27b05ac69b076d8b88eb9430ff0ae3ff1325575504ff5db6f227ed865cc4f36654359936941a7520d127bc0801e5dcf3124a09bf03d"
	werkzeugPassword  = "opentaxii-pw"
)

func TestVerifyPasswordFormats(t *testing.T) {
	argon, err := HashPassword("pw", cheapArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(argon, "$argon2id$v=19$m=256,t=1,p=1$") {
		t.Errorf("PHC string %q", argon)
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	cases := []struct {
		name, hash, right string
	}{
		{"argon2id", argon, "pw"},
		{"bcrypt", string(bc), "pw"},
		{"werkzeug pbkdf2 sha256", werkzeugPBKDF2, werkzeugPassword},
		{"werkzeug pbkdf2 sha512", werkzeugPBKDF2512, werkzeugPassword},
		{"werkzeug scrypt", werkzeugScrypt, werkzeugPassword},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if ok, err := VerifyPassword(c.hash, c.right); !ok || err != nil {
				t.Errorf("right password: %v %v", ok, err)
			}
			if ok, err := VerifyPassword(c.hash, c.right+"x"); ok || err != nil {
				t.Errorf("wrong password: %v %v", ok, err)
			}
			if err := CheckPasswordHash(c.hash); err != nil {
				t.Errorf("CheckPasswordHash: %v", err)
			}
		})
	}
}

func TestMalformedHashesRefused(t *testing.T) {
	for _, h := range []string{
		"hunter2", // a plain password where a hash belongs
		"",
		"$argon2id$v=19$m=256,t=1,p=1$c2FsdA$", // salt too short, empty hash
		"$argon2id$v=16$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",                // old version
		"$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA", // 4 GiB
		"pbkdf2:sha256$salt$00112233445566778899aabbccddeeff",                      // no iteration count
		"pbkdf2:md5:1000$salt$00112233445566778899aabbccddeeff",
		"pbkdf2:sha256:999999999$salt$00112233445566778899aabbccddeeff",
		"scrypt:1000:8:1$salt$00112233445566778899aabbccddeeff", // N not a power of two
		"scrypt:32768:8:1$salt$nothex",
		"$2b$04$short",
	} {
		if err := CheckPasswordHash(h); err == nil {
			t.Errorf("CheckPasswordHash(%q) accepted", h)
		}
		if ok, err := VerifyPassword(h, "hunter2"); ok || err == nil {
			t.Errorf("VerifyPassword(%q) = %v, %v; want false and an error", h, ok, err)
		}
	}
}

func TestParseArgon2Params(t *testing.T) {
	p, err := ParseArgon2Params("t=2,m=19456,p=1")
	if err != nil || p != (Argon2Params{Memory: 19456, Time: 2, Threads: 1}) {
		t.Errorf("got %+v %v", p, err)
	}
	if p.String() != "m=19456,t=2,p=1" {
		t.Errorf("String %q", p.String())
	}
	for _, bad := range []string{"", "m=1024,t=1", "m=1024,t=1,p=1,x=2", "m=1024,t=0,p=1", "m=4,t=1,p=1", "m=a,t=1,p=1", "m=1,m=2,t=1"} {
		if _, err := ParseArgon2Params(bad); err == nil {
			t.Errorf("ParseArgon2Params(%q) accepted", bad)
		}
	}
	if d := DefaultArgon2Params(); d.validate() != nil || d.Memory < 19*1024 {
		t.Errorf("default cost %+v below OWASP's minimum", d)
	}
}

// TestImportedHashesUpgraded logs in with OpenTAXII and bcrypt hashes and
// checks each is re-hashed with argon2id at the configured cost, and that
// the new hash still verifies the password.
func TestImportedHashesUpgraded(t *testing.T) {
	ts := startService(t, nil, nil)
	ctx := context.Background()
	bc, _ := bcrypt.GenerateFromPassword([]byte(werkzeugPassword), bcrypt.MinCost)
	olderArgon, _ := HashPassword(werkzeugPassword, Argon2Params{Memory: 128, Time: 1, Threads: 1})
	imports := map[string]string{
		"pbkdf2-user": werkzeugPBKDF2, "scrypt-user": werkzeugScrypt, "bcrypt-user": string(bc), "old-argon": olderArgon,
	}
	for user, h := range imports {
		if err := CreateAccount(ctx, ts.pool, user, h, nil); err != nil {
			t.Fatal(err)
		}
	}
	for user, old := range imports {
		if r := ts.login(t, user, "wrong", ""); r.status != 401 {
			t.Errorf("%s wrong password: %d", user, r.status)
		}
		tokenFrom(t, ts.login(t, user, werkzeugPassword, ""))
		var stored string
		if err := ts.pool.QueryRow(ctx, "SELECT password_hash FROM token_accounts WHERE username = $1", user).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored == old || !strings.HasPrefix(stored, "$argon2id$v=19$"+cheapArgon2.String()+"$") {
			t.Errorf("%s: stored hash %.30s... not upgraded to argon2id at %s", user, stored, cheapArgon2)
		}
		if ok, _ := VerifyPassword(stored, werkzeugPassword); !ok {
			t.Errorf("%s: upgraded hash does not verify", user)
		}
		// And the upgraded account still logs in.
		tokenFrom(t, ts.login(t, user, werkzeugPassword, ""))
	}
	if n := counterValue(t, ts.srv, "taxiway_token_rehashed_total"); n != float64(len(imports)) {
		t.Errorf("rehashed metric %v, want %d", n, len(imports))
	}
}
