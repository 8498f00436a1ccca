package taxiierror

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("X-Request-Id", "req-1")
	w.Header().Set("X-TAXII-Date-Added-First", "2026-01-01T00:00:00.000000Z") // set before the error was known
	Write(w, http.StatusRequestEntityTooLarge, "", "the body exceeds 10 bytes")

	if w.Code != http.StatusRequestEntityTooLarge || w.Header().Get("Content-Type") != MediaType {
		t.Fatalf("status %d, Content-Type %q", w.Code, w.Header().Get("Content-Type"))
	}
	if w.Header().Get("X-TAXII-Date-Added-First") != "" {
		t.Error("an error response kept X-TAXII-Date-Added-First")
	}
	var e map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	// http_status is a string (TAXII 3.6.1); the title defaults to the status text.
	if e["http_status"] != "413" || e["title"] != "Request Entity Too Large" || e["error_id"] != "req-1" || e["description"] != "the body exceeds 10 bytes" {
		t.Errorf("body = %v", e)
	}
}

func TestUnauthorizedOffersBothSchemes(t *testing.T) {
	w := httptest.NewRecorder()
	Unauthorized(w, "send credentials")
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != `Bearer realm="taxii", Basic realm="taxii"` {
		t.Fatalf("status %d, WWW-Authenticate %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}
