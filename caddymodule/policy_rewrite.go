package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Collections lists and collection resources are rewritten for each caller:
// the backend answers its service account, which may see everything.

// errResponseTooLarge stops the backend's answer past max_list_bytes.
var errResponseTooLarge = errors.New("response larger than max_list_bytes")

// bufferedResponse holds a backend's answer, at most limit bytes of body,
// so that it can be rewritten before anything reaches the client. Headers
// go straight into the client's header map; nothing is written until
// finish.
type bufferedResponse struct {
	w        http.ResponseWriter
	status   int
	body     bytes.Buffer
	limit    int
	overflow bool
}

func (b *bufferedResponse) Header() http.Header { return b.w.Header() }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 && status >= 200 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.body.Len()+len(p) > b.limit {
		b.overflow = true
		return 0, errResponseTooLarge
	}
	return b.body.Write(p)
}

// member is one member of a JSON object, kept in the order it came.
type member struct {
	key   string
	value json.RawMessage
}

// parseObject reads a JSON object's members in order. Duplicate keys are
// refused: the policy and a client must read the same id.
func parseObject(b []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var out []member
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		if seen[key] {
			return nil, fmt.Errorf("duplicate member %q", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, member{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return out, nil
}

func encodeObject(ms []member) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// rewriteCollection gives one collection resource the caller's can_read
// and can_write; ok is false when the policy does not let the caller see
// it (or the resource names no collection).
func rewriteCollection(raw []byte, root *policyRoot, c *caller) (out []byte, ok bool, err error) {
	ms, err := parseObject(raw)
	if err != nil {
		return nil, false, err
	}
	var id, alias string
	for _, m := range ms {
		switch m.key {
		case "id":
			if json.Unmarshal(m.value, &id) != nil {
				return nil, false, nil
			}
		case "alias":
			_ = json.Unmarshal(m.value, &alias)
		}
	}
	// By id only: an alias that the policy gives another collection must
	// not lend this one its grants.
	col := root.byKey[lowerASCII(id)]
	if col != nil && col.id != lowerASCII(id) {
		col = nil
	}
	a := c.accessTo(col)
	if !a.visible() {
		return nil, false, nil
	}
	ms = setMember(ms, "can_read", a.read)
	ms = setMember(ms, "can_write", a.write)
	return encodeObject(ms), true, nil
}

// rewriteCollections filters a collections resource ({"collections": [...]})
// to what the caller may see; with nothing left the key goes (TAXII never
// sends an empty list). Other members pass unchanged.
func rewriteCollections(raw []byte, root *policyRoot, c *caller) ([]byte, error) {
	ms, err := parseObject(raw)
	if err != nil {
		return nil, err
	}
	out := ms[:0]
	for _, m := range ms {
		if m.key != "collections" {
			out = append(out, m)
			continue
		}
		var list []json.RawMessage
		if err := json.Unmarshal(m.value, &list); err != nil {
			return nil, fmt.Errorf("collections: %w", err)
		}
		kept := list[:0]
		for _, item := range list {
			rewritten, ok, err := rewriteCollection(item, root, c)
			if err != nil {
				return nil, fmt.Errorf("collections: %w", err)
			}
			if ok {
				kept = append(kept, rewritten)
			}
		}
		if len(kept) == 0 {
			continue
		}
		v, _ := json.Marshal(kept)
		out = append(out, member{m.key, v})
	}
	return encodeObject(out), nil
}

func setMember(ms []member, key string, v bool) []member {
	raw := json.RawMessage("false")
	if v {
		raw = json.RawMessage("true")
	}
	for i := range ms {
		if ms[i].key == key {
			ms[i].value = raw
			return ms
		}
	}
	return append(ms, member{key, raw})
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
