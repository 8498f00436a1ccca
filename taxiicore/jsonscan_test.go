package taxiicore

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// The member scan must find exactly what encoding/json would: escaped names,
// the last of repeated names, and nothing from nested objects or strings.
func TestParseSTIXReadsTopLevelMembersOnly(t *testing.T) {
	const id = "indicator--6ba7b810-9dad-41d1-80b4-00c04fd430c8"
	cases := []struct {
		name, raw, wantID, wantVersion, wantErr string
	}{
		{"escaped names", `{"\u0069d":"` + id + `","type":"indicator","created":"2020-01-01T00:00:00Z"}`, id, "2020-01-01T00:00:00Z", ""},
		{"escaped value", `{"id":"indicator--6ba7b810-9dad-41d1-80b4-00c04fd430c\u0038","type":"indicator","created":"2020-01-01T00:00:00Z"}`, id, "2020-01-01T00:00:00Z", ""},
		{"repeated name: last wins", `{"id":"indicator--00000000-0000-4000-8000-000000000000","type":"indicator","id":"` + id + `","created":"2020-01-01T00:00:00Z"}`, id, "2020-01-01T00:00:00Z", ""},
		{"nested members are not the object's", `{"x":{"id":"malware--6ba7b810-9dad-41d1-80b4-00c04fd430c8","modified":"2030-01-01T00:00:00Z"},"y":["id",{"created":1}],"id":"` + id + `","type":"indicator","created":"2020-01-01T00:00:00Z"}`, id, "2020-01-01T00:00:00Z", ""},
		{"names inside strings are not members", `{"name":"\"id\":\"x\", \"modified\":","id":"` + id + `","type":"indicator","created":"2020-01-01T00:00:00Z"}`, id, "2020-01-01T00:00:00Z", ""},
		{"names are case-sensitive", `{"ID":"` + id + `","type":"indicator"}`, "", "", "id is required"},
		{"numbers, literals and spaces", "{ \"n\" : -1.5e3 , \"t\":true,\"f\":false,\"z\":null,\n\"id\" :\t\"" + id + "\", \"type\":\"indicator\" }", id, "", ""},
		{"non-string id", `{"id":5,"type":"indicator"}`, "", "", "id must be a string"},
		{"null modified is absent", `{"id":"` + id + `","type":"indicator","created":"2020-01-01T00:00:00Z","modified":null}`, id, "2020-01-01T00:00:00Z", ""},
		{"truncated", `{"id":"` + id + `","type":"indic`, "", "", "unreadable object"},
		{"missing colon", `{"id" "` + id + `"}`, "", "", "unreadable object"},
		{"trailing garbage in the member list", `{"id":"` + id + `" "type":"indicator"}`, "", "", "unreadable object"},
	}
	for _, c := range cases {
		o, err := parseSTIX(json.RawMessage(c.raw))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil || o.id != c.wantID || o.version != c.wantVersion {
			t.Errorf("%s: got id %q version %q err %v", c.name, o.id, o.version, err)
		}
	}
}

// Invalid UTF-8 and escapes are decoded as encoding/json would.
func TestStringPropDecodesLikeEncodingJSON(t *testing.T) {
	for _, raw := range []string{`"plain"`, `"caf\u00e9"`, "\"caf\xc3\xa9\"", "\"bad \xff byte\"", `"tab\tand \"quotes\""`, `""`} {
		got, err := stringProp([]byte(raw), "p", false)
		var want string
		if jerr := json.Unmarshal([]byte(raw), &want); jerr != nil {
			t.Fatalf("%q: %v", raw, jerr)
		}
		if err != nil || got != want {
			t.Errorf("%q: got %q (%v), want %q", raw, got, err, want)
		}
	}
}

// The scanners never index past their input, whatever they are given.
func TestScannersRefuseTruncatedInput(t *testing.T) {
	full := `{"a":[1,{"b":"c\"d"}],"objects":[{"id":"x"}, {"y":null}],"e":true}`
	for n := 0; n < len(full); n++ {
		if err := scanMembers([]byte(full[:n]), func(_, _ []byte) {}); err == nil {
			t.Errorf("scanMembers accepted %q", full[:n])
		}
	}
	arr := `[{"id":"x"}, "s", 1, [2], null]`
	var n int
	if err := scanElements([]byte(arr), func([]byte) { n++ }); err != nil || n != 5 {
		t.Fatalf("scanElements: %d elements, %v", n, err)
	}
	for k := 0; k < len(arr); k++ {
		if err := scanElements([]byte(arr[:k]), func([]byte) {}); err == nil {
			t.Errorf("scanElements accepted %q", arr[:k])
		}
	}
}

func TestParseEnvelope(t *testing.T) {
	cases := []struct {
		body   string
		status int
		count  int
	}{
		{`{"objects":[{"a":1},{"b":[2]}]}`, 0, 2},
		{` {"more":false, "obj\u0065cts" : [ {"a":1} ] } `, 0, 1},
		{`{"objects":[{"a":1}],"objects":[{"a":1},{"b":2},3]}`, 0, 3}, // the last objects member counts
		{`null`, http.StatusUnprocessableEntity, 0},
		{`{"objects":"x"}`, http.StatusUnprocessableEntity, 0},
		{`{"objects":[1,2`, http.StatusBadRequest, 0},
		{`{"objects":[]} x`, http.StatusBadRequest, 0},
	}
	for _, c := range cases {
		objs, status, msg := parseEnvelope([]byte(c.body))
		if status != c.status || len(objs) != c.count {
			t.Errorf("%s: got %d objects, status %d (%s); want %d, %d", c.body, len(objs), status, msg, c.count, c.status)
		}
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	obj := `{"type":"indicator","spec_version":"2.1","id":"indicator--6ba7b810-9dad-41d1-80b4-00c04fd430c8","created":"2020-01-01T00:00:00.000Z","modified":"2020-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.1']","pattern_type":"stix","valid_from":"2020-01-01T00:00:00Z"}`
	body := []byte(`{"objects":[` + strings.Repeat(obj+",", 999) + obj + `]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		objs, status, _ := parseEnvelope(body)
		if status != 0 {
			b.Fatal(status)
		}
		for _, o := range objs {
			if _, err := parseSTIX(o); err != nil {
				b.Fatal(err)
			}
		}
	}
}
