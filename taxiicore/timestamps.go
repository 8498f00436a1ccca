package taxiicore

import (
	"errors"
	"strconv"
	"time"
)

// timestampLayout is the only form TAXII timestamps are emitted in (GEN-07).
const timestampLayout = "2006-01-02T15:04:05.000000Z"

// versionKeyLayout renders a parsed STIX version at full precision in a
// fixed width, so that string order is time order.
const versionKeyLayout = "2006-01-02T15:04:05.000000000Z"

var errTimestamp = errors.New("not an RFC 3339 UTC timestamp of the form YYYY-MM-DDTHH:MM:SS[.fraction]Z with 0 to 9 fraction digits")

func formatTimestamp(t time.Time) string { return t.UTC().Format(timestampLayout) }

func versionKey(t time.Time) string { return t.UTC().Format(versionKeyLayout) }

// parseTimestamp accepts what clients really send (AMBIG-20): a UTC instant
// with 0 to 9 fraction digits and a literal Z.
func parseTimestamp(s string) (time.Time, error) {
	n := len(s)
	if n < 20 || n > 30 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[n-1] != 'Z' {
		return time.Time{}, errTimestamp
	}
	for _, i := range []int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}, errTimestamp
		}
	}
	if n > 20 {
		if s[19] != '.' || n == 21 {
			return time.Time{}, errTimestamp
		}
		for i := 20; i < n-1; i++ {
			if s[i] < '0' || s[i] > '9' {
				return time.Time{}, errTimestamp
			}
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errTimestamp
	}
	return t.UTC(), nil
}

// maxEmittedYear is the last year Postgres' timestamptz holds, so the last
// a stored date_added can have.
const maxEmittedYear = 294275

// parseAddedAfter reads added_after: what parseTimestamp reads, and also
// the years past 9999 that formatTimestamp writes in five or six digits
// (a date_added there comes only from data stored before imports were
// bounded), so that every X-TAXII-Date-Added-Last the core hands out can
// be sent back.
func parseAddedAfter(s string) (time.Time, error) {
	digits := 0
	for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
		digits++
	}
	if digits <= 4 || digits > 6 || s[0] == '0' {
		return parseTimestamp(s)
	}
	year, err := strconv.Atoi(s[:digits])
	if err != nil || year > maxEmittedYear {
		return time.Time{}, errTimestamp
	}
	// The rest as in a leap year, then moved to the year itself: a day
	// that year lacks (29 February) comes out in another month.
	t, err := parseTimestamp("2000" + s[digits:])
	if err != nil {
		return time.Time{}, err
	}
	moved := time.Date(year, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	if moved.Month() != t.Month() {
		return time.Time{}, errTimestamp
	}
	return moved, nil
}

// microsAfter is the exclusive lower bound, in Unix microseconds, of the
// date_added values strictly after t (date_added has microsecond precision).
func microsAfter(t time.Time) int64 {
	return t.Unix()*1_000_000 + int64(t.Nanosecond()/1000)
}

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
