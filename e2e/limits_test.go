package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGatewayHeaderLimitIsTAXII: a query over the core's 64 KiB limit on a
// request's line and headers (the gateway allows 128 KiB) gets a TAXII
// error body through the gateway, not Go's plain-text 431.
func TestGatewayHeaderLimitIsTAXII(t *testing.T) {
	c := basic(t, "test", "test")
	r, b := c.do("GET", demoObjects+"?match[id]=indicator--"+strings.Repeat("a", 70<<10), nil)
	checkTAXIIError(t, "a 70 KiB query", r, b, http.StatusRequestHeaderFieldsTooLarge)
}

// TestGatewayExpectContinueOverLimit: Add Objects with Expect: 100-continue
// and a 20 MB body, over the demo root's 10 MB max_content_length, gets the
// core's 413 with its TAXII body every time, several at once while other
// clients read: never a 502 from the core answering before the body is
// sent and closing under the proxy's upload.
func TestGatewayExpectContinueOverLimit(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 20<<20)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		// The client sends its body when asked or after a second, as curl
		// does. (The gateway's server holds an early answer until the
		// body has come, which a client that waits longer sees as delay.)
		ExpectContinueTimeout: time.Second,
	}}
	const workers, each = 4, 6
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 { // the load: readers polling the same collection
		readers.Go(func() {
			c := basic(t, "test", "test")
			for {
				select {
				case <-stop:
					return
				default:
				}
				c.do("GET", demoObjects+"?limit=50", nil)
			}
		})
	}
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				req, _ := http.NewRequest("POST", stack.GatewayURL()+demoObjects, bytes.NewReader(body))
				req.SetBasicAuth("test", "test")
				req.Header.Set("Accept", taxiiType)
				req.Header.Set("Content-Type", taxiiType)
				req.Header.Set("Expect", "100-continue")
				res, err := client.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"http_status":"413"`) ||
					!strings.Contains(string(b), "max_content_length") {
					errs <- fmt.Errorf("status %d: %.300s", res.StatusCode, b)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	n := 0
	for err := range errs {
		n++
		t.Error(err)
	}
	if n > 0 {
		t.Errorf("%d of %d oversized uploads did not get the 413", n, workers*each)
	}
}
