package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A cancelled context (SIGTERM) lets an in-flight request finish before
// serve returns; a taken port fails the start.
func TestServeShutsDownGracefully(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	started := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "finished")
	})
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, logger, func(addrs []string) { addrc <- addrs[0] },
			endpoint{"127.0.0.1:0", slow, 0}, endpoint{"127.0.0.1:0", http.NotFoundHandler(), 0})
	}()
	addr := <-addrc

	type result struct {
		body string
		err  error
	}
	resc := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		resc <- result{string(b), err}
	}()
	<-started
	cancel()
	if r := <-resc; r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request during shutdown: body %q, err %v", r.body, r.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after a clean shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after shutdown")
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still accepting connections after shutdown")
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	err = serve(context.Background(), logger, func([]string) { t.Error("ready called despite a taken port") },
		endpoint{"127.0.0.1:0", slow, 0}, endpoint{taken.Addr().String(), slow, 0})
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Fatalf("taken port: err = %v, want it named", err)
	}
}
