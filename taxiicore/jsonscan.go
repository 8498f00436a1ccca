package taxiicore

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// Add Objects reads only a few top-level members of each posted object. The
// envelope is checked once with json.Valid; these helpers then walk its bytes
// without decoding what the core does not read, which costs a fraction of
// decoding every object with encoding/json. They stay bounds-checked, so
// unvalidated input gets an error, never a panic.

var errBadJSON = errors.New("malformed JSON")

// skipSpace returns the index of the first non-whitespace byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just after the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errBadJSON
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errBadJSON
	default: // number, true, false, null
		start := i
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		if i == start {
			return 0, errBadJSON
		}
		return i, nil
	}
}

// skipString returns the index just after the string starting at b[i].
func skipString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errBadJSON
}

// scanMembers calls visit with the (unescaped) name and the raw value of each
// member of the JSON object in b, in order.
func scanMembers(b []byte, visit func(name, value []byte)) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errBadJSON
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return errBadJSON
		}
		end, err := skipString(b, i)
		if err != nil {
			return err
		}
		name := b[i+1 : end-1]
		if _, plain := plainString(b[i:end]); !plain {
			var s string
			if err := json.Unmarshal(b[i:end], &s); err != nil {
				return errBadJSON
			}
			name = []byte(s)
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return errBadJSON
		}
		start := skipSpace(b, i+1)
		end, err = skipValue(b, start)
		if err != nil {
			return err
		}
		visit(name, b[start:end])
		i = skipSpace(b, end)
		if i >= len(b) {
			return errBadJSON
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return nil
		default:
			return errBadJSON
		}
	}
}

// scanElements calls visit with the raw value of each element of the JSON
// array in b, in order.
func scanElements(b []byte, visit func(value []byte)) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return errBadJSON
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for {
		end, err := skipValue(b, i)
		if err != nil {
			return err
		}
		visit(b[i:end])
		i = skipSpace(b, end)
		if i >= len(b) {
			return errBadJSON
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return nil
		default:
			return errBadJSON
		}
	}
}

// plainString returns the content of the JSON string raw when it needs no
// decoding: no escapes and valid UTF-8 (encoding/json would replace invalid
// bytes). ok is false otherwise, and the caller decodes it properly.
func plainString(raw []byte) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	for _, c := range in {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}
