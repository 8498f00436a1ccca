package taxiicore

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

// A Get Objects page is capped by bytes as well as by count
// (Config.MaxPageBytes), so that one request holds at most about the cap
// plus one object in memory, however large the collection's objects are.
// The page keeps its first object whatever its size, then further objects
// while their total stays within the cap; a page cut short says more: true
// with a next, like one cut by limit. Collections whose largest object
// (max_object_size, kept on write) times the page's row count fits in the
// cap, which is every collection of ordinary STIX objects, skip the size
// accounting in SQL: no page there can reach the cap.

// byteCappedSQL wraps a page query (columns date_added, object,
// object_size; ordered by date_added) so that Postgres sends only the rows
// the cap can keep plus at most one: each row knows the size of the rows
// before it from the stored object_size (no object is read to learn it),
// and rows starting past the cap are not sent. The first two rows always
// are, so that a lone object over the cap still shows whether more follow.
func byteCappedSQL(inner, capParam string) string {
	return `SELECT date_added, object FROM (
	SELECT date_added, object, row_number() OVER w AS rn, sum(object_size) OVER w - object_size AS before
	FROM (` + inner + `) p WINDOW w AS (ORDER BY date_added ROWS UNBOUNDED PRECEDING)) s
WHERE rn <= 2 OR before <= ` + capParam + ` ORDER BY date_added`
}

// pageFits reports whether an object of size bytes joins a page that holds
// count objects of total bytes.
func pageFits(count int, total, size, cap int64) bool {
	return count == 0 || total+size <= cap
}

// writeEnvelope writes the stored objects as they are, without re-encoding
// them or copying them into one buffer: the response is written piece by
// piece, with its length computed first.
func writeEnvelope(w http.ResponseWriter, more bool, next string, objects [][]byte) {
	var head strings.Builder
	head.WriteString(`{"more":` + strconv.FormatBool(more))
	if next != "" {
		head.WriteString(`,"next":"` + next + `"`) // base64url: nothing to escape
	}
	size := head.Len() + 1
	if len(objects) > 0 {
		head.WriteString(`,"objects":[`)
		size += len(`,"objects":[]`) + len(objects) - 1
		for _, o := range objects {
			size += len(o)
		}
	}
	h := w.Header()
	h.Set("Content-Type", taxiierror.MediaType)
	h.Set("Content-Length", strconv.Itoa(size))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(head.String()))
	for i, o := range objects {
		if i > 0 {
			_, _ = w.Write([]byte{','})
		}
		_, _ = w.Write(o)
	}
	if len(objects) > 0 {
		_, _ = w.Write([]byte{']'})
	}
	_, _ = w.Write([]byte{'}'})
}
