// Package taxiierror writes TAXII 2.1 error resources (section 3.6.1): the
// body every 4xx/5xx on a TAXII path carries, from the gateway and the core.
package taxiierror

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// MediaType is the TAXII 2.1 media type, sent on every TAXII response.
const MediaType = "application/taxii+json;version=2.1"

// Error is the TAXII error resource. HTTPStatus is a string by the
// specification's definition (AMBIG-30).
type Error struct {
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	ErrorID     string         `json:"error_id,omitempty"`
	ErrorCode   string         `json:"error_code,omitempty"`
	HTTPStatus  string         `json:"http_status"`
	Details     map[string]any `json:"details,omitempty"`
}

// Write sends status with a TAXII error body. title defaults to the status
// text; description says what the client can do about it. A request id set
// by the caller in the X-Request-Id response header becomes error_id.
func Write(w http.ResponseWriter, status int, title, description string) {
	WriteError(w, status, Error{Title: title, Description: description})
}

// WriteError sends e with status, filling in http_status and a default title.
func WriteError(w http.ResponseWriter, status int, e Error) {
	if e.Title == "" {
		e.Title = http.StatusText(status)
	}
	if e.ErrorID == "" {
		e.ErrorID = w.Header().Get("X-Request-Id")
	}
	e.HTTPStatus = strconv.Itoa(status)
	body, _ := json.Marshal(e) // cannot fail: plain strings and caller-built details
	h := w.Header()
	h.Set("Content-Type", MediaType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("X-TAXII-Date-Added-First")
	h.Del("X-TAXII-Date-Added-Last")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Unauthorized sends 401 with both challenges the gateway accepts.
func Unauthorized(w http.ResponseWriter, description string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="taxii", Basic realm="taxii"`)
	Write(w, http.StatusUnauthorized, "Authentication required", description)
}
