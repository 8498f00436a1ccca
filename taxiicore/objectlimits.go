package taxiicore

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Objects are stored as the bytes received and served to every reader, so
// Add Objects refuses, per object, what no STIX content needs and ordinary
// JSON readers choke on (README, "Hostile input"). STIX nests a few levels
// (extensions, dictionaries, lists of them), far below maxNestingDepth,
// which stays well inside the recursion limits of common parsers (Python's
// json stops near 1,000). A number of maxNumberLength characters holds any
// float64 spelt out in full (the longest shortest-form is 24); STIX integers
// fit in 2^53 and floats in IEEE 754 doubles (I-JSON, RFC 7493), so a
// number beyond a double's range is refused too.
const (
	maxNestingDepth = 100
	maxNumberLength = 64
)

// storable checks one object's bytes in a single pass: the limits above,
// and what Postgres's json input or a reader would refuse: bytes that are
// not UTF-8 (JSON must be, RFC 8259), the escape \u0000 and unpaired
// surrogate escapes. raw is normally valid JSON already; anything else gets
// an error, never a panic.
func storable(raw []byte) error {
	if !utf8.Valid(raw) {
		return errors.New("the object is not valid UTF-8")
	}
	depth := 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			end, err := checkString(raw, i)
			if err != nil {
				return err
			}
			i = end - 1
		case c == '{' || c == '[':
			if depth++; depth > maxNestingDepth {
				return fmt.Errorf("the object nests deeper than %d levels, the most this server stores", maxNestingDepth)
			}
		case c == '}' || c == ']':
			depth--
		case c == '-' || c >= '0' && c <= '9':
			end := i
			for end < len(raw) && isNumberByte(raw[end]) {
				end++
			}
			if err := checkNumber(raw[i:end]); err != nil {
				return err
			}
			i = end - 1
		}
	}
	return nil
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

func checkNumber(num []byte) error {
	if len(num) > maxNumberLength {
		return fmt.Errorf("a number in the object is longer than %d characters, the most this server stores", maxNumberLength)
	}
	// Syntax errors are for json.Valid to report; only range matters here.
	// Underflow rounds to zero without an error, and is kept as sent.
	if f, err := strconv.ParseFloat(string(num), 64); errors.Is(err, strconv.ErrRange) && math.IsInf(f, 0) {
		return fmt.Errorf("the number %s is outside the range of a 64-bit float (RFC 7493), the most this server stores", num)
	}
	return nil
}

// checkString returns the index just after the string starting at raw[i],
// refusing \u0000 and unpaired UTF-16 surrogate escapes.
func checkString(raw []byte, i int) (int, error) {
	for i++; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			return i + 1, nil
		case '\\':
			i++
			if i >= len(raw) || raw[i] != 'u' || i+4 >= len(raw) {
				continue
			}
			cp := hex4(raw[i+1 : i+5])
			i += 4
			switch {
			case cp == 0:
				return 0, errors.New(`the object contains \u0000, which cannot be stored`)
			case cp >= 0xDC00 && cp <= 0xDFFF:
				return 0, errors.New("the object contains an unpaired UTF-16 surrogate escape")
			case cp >= 0xD800 && cp <= 0xDBFF:
				if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
					return 0, errors.New("the object contains an unpaired UTF-16 surrogate escape")
				}
				if low := hex4(raw[i+3 : i+7]); low < 0xDC00 || low > 0xDFFF {
					return 0, errors.New("the object contains an unpaired UTF-16 surrogate escape")
				}
				i += 6
			}
		}
	}
	return 0, errBadJSON
}
