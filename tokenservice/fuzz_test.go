package tokenservice

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzReadCredentials: the login endpoint's form and JSON bodies (and its
// query and Content-Type) give credentials fit for the accounts table or a
// 4xx, never a panic; form bodies read as url.ParseQuery does and JSON ones
// as encoding/json does.
func FuzzReadCredentials(f *testing.F) {
	for _, s := range []struct{ ct, q, body string }{
		{"application/x-www-form-urlencoded", "", "username=test&password=test"},
		{"application/json", "", `{"username":"test","password":"test"}`},
		{"application/json; charset=utf-8", "", `{"username":"t\u0000","password":"p"} `},
		{"application/json", "", `{"username":"a","password":"b"}{}`},
		{"application/json", "", `{"username":1}`},
		{"application/x-www-form-urlencoded; charset=latin1", "", "username=a&password=b"},
		{"application/x-www-form-urlencoded", "", "username=%FF&password=b"},
		{"application/x-www-form-urlencoded", "", "username=a&username=b&password=c"},
		{"application/x-www-form-urlencoded", "password=x", "username=a&password=b"},
		{"text/plain", "", "username=a&password=b"},
		{"application/x-www-form-urlencoded", "", "%zz"},
	} {
		f.Add(s.ct, s.q, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ct, rawQuery string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/management/auth", bytes.NewReader(body))
		r.URL.RawQuery = rawQuery
		r.Header.Set("Content-Type", ct)
		c, rerr := readCredentials(httptest.NewRecorder(), r)
		if rerr != nil {
			if rerr.status < 400 || rerr.status > 499 || rerr.descr == "" {
				t.Fatalf("refusal %+v is not a described 4xx", rerr)
			}
			return
		}
		if c.username == "" || c.password == "" || len(c.username) > maxUsernameLen || len(c.password) > maxPasswordLen ||
			!utf8.ValidString(c.username) || strings.ContainsRune(c.username, 0) {
			t.Fatalf("unfit credentials accepted: %q", c.username)
		}
		if len(body) > maxBodyBytes {
			t.Fatalf("a %d-byte body was read", len(body))
		}
		if strings.HasPrefix(strings.ToLower(ct), "application/json") {
			var in struct{ Username, Password string }
			if err := json.NewDecoder(bytes.NewReader(body)).Decode(&in); err != nil || in.Username != c.username || in.Password != c.password {
				t.Fatalf("JSON credentials %q/%q differ from encoding/json's %q/%q (%v)", c.username, c.password, in.Username, in.Password, err)
			}
		} else if form, err := url.ParseQuery(string(body)); err != nil || form.Get("username") != c.username || form.Get("password") != c.password {
			t.Fatalf("form credentials differ from url.ParseQuery's (%v)", err)
		}
	})
}
