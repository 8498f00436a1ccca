package taxiicore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// stixObject is what the core needs to know about one posted object.
type stixObject struct {
	raw         json.RawMessage
	id          string
	typ         string
	version     string // modified, else created; empty for unversioned objects
	versionKey  string
	specVersion string
}

// parseSTIX checks one posted object. Its error is the message reported in
// the status failures for that object alone. raw is normally one element of
// an envelope that was validated as a whole, so a single scan of its
// top-level members finds the properties the core reads; the rest stays
// untouched.
func parseSTIX(raw json.RawMessage) (stixObject, error) {
	o := stixObject{raw: raw}
	trimmed := strings.TrimLeft(string(raw[:min(len(raw), 64)]), " \t\r\n")
	if !strings.HasPrefix(trimmed, "{") {
		return o, errors.New("not a JSON object")
	}
	var idRaw, typeRaw, createdRaw, modifiedRaw, specRaw []byte
	// Property names are case-sensitive in STIX; a repeated name counts
	// once, with its last value, as in encoding/json and Python's json.
	err := scanMembers(raw, func(name, value []byte) {
		switch string(name) {
		case "id":
			idRaw = value
		case "type":
			typeRaw = value
		case "created":
			createdRaw = value
		case "modified":
			modifiedRaw = value
		case "spec_version":
			specRaw = value
		}
	})
	if err != nil {
		return o, fmt.Errorf("unreadable object: %v", err)
	}
	if o.id, err = stringProp(idRaw, "id", true); err != nil {
		return o, err
	}
	if o.typ, err = stringProp(typeRaw, "type", true); err != nil {
		return o, err
	}
	prefix, rest, ok := strings.Cut(o.id, "--")
	if !ok || !validSTIXType(prefix) || len(rest) != 36 || uuid.Validate(rest) != nil {
		return o, errors.New("id must be <type>--<UUID>")
	}
	if prefix != o.typ {
		return o, fmt.Errorf("type %q does not match the id's prefix %q", o.typ, prefix)
	}
	created, err := stringProp(createdRaw, "created", false)
	if err != nil {
		return o, err
	}
	modified, err := stringProp(modifiedRaw, "modified", false)
	if err != nil {
		return o, err
	}
	var createdAt time.Time
	if created != "" {
		if createdAt, err = parseTimestamp(created); err != nil {
			return o, fmt.Errorf("created: %v", err)
		}
		o.version, o.versionKey = created, versionKey(createdAt)
	}
	if modified != "" {
		if created == "" {
			return o, errors.New("an object with modified must also have created")
		}
		modifiedAt, err := parseTimestamp(modified)
		if err != nil {
			return o, fmt.Errorf("modified: %v", err)
		}
		if modifiedAt.Before(createdAt) {
			return o, errors.New("modified is earlier than created")
		}
		o.version, o.versionKey = modified, versionKey(modifiedAt)
	}
	spec, err := stringProp(specRaw, "spec_version", false)
	if err != nil {
		return o, err
	}
	switch {
	case spec == "2.1" || spec == "2.0":
		o.specVersion = spec
	case spec != "":
		return o, fmt.Errorf("unsupported spec_version %q (2.1 and 2.0 are stored)", spec)
	case o.version == "":
		o.specVersion = "2.1" // AMBIG-28: a SCO without spec_version is 2.1
	default:
		o.specVersion = "2.0" // AMBIG-28: STIX 2.0 objects have no spec_version
	}
	if err := storable(raw); err != nil {
		return o, err
	}
	return o, nil
}

func stringProp(raw []byte, name string, required bool) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if required {
			return "", fmt.Errorf("%s is required", name)
		}
		return "", nil
	}
	if s, ok := plainString(raw); ok {
		if s == "" && required {
			return "", fmt.Errorf("%s is required", name)
		}
		return s, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s must be a string", name)
	}
	if s == "" && required {
		return "", fmt.Errorf("%s is required", name)
	}
	return s, nil
}

// validSTIXType follows STIX 2.1's type-name rule: 3 to 250 of [a-z0-9-].
func validSTIXType(t string) bool {
	if len(t) < 3 || len(t) > 250 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func hex4(b []byte) int {
	n := 0
	for _, c := range b {
		n <<= 4
		switch {
		case c >= '0' && c <= '9':
			n |= int(c - '0')
		case c >= 'a' && c <= 'f':
			n |= int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			n |= int(c-'A') + 10
		default:
			return -1
		}
	}
	return n
}
