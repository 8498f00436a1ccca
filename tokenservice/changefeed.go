package tokenservice

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// feedPoll is how often a replica rereads a feed's head without a
// notification, in case one was lost.
const feedPoll = time.Second

// changeFeed knows the newest head of one feed the gateways follow (the
// revocations' seq, the policy's version) and wakes the long polls waiting
// on it when it moves. It LISTENs on channel and rereads headSQL every
// feedPoll; maintain, when set, runs on each tick (pruning).
type changeFeed struct {
	pool     *pgxpool.Pool
	logger   *slog.Logger
	what     string // for logs
	channel  string
	headSQL  string
	maintain func(ctx context.Context)
	every    time.Duration // how often maintain runs
	stopped  chan struct{} // closed when run returns: the service is shutting down

	mu      sync.Mutex
	head    int64
	changed chan struct{} // closed and replaced when head moves
}

func newChangeFeed(pool *pgxpool.Pool, logger *slog.Logger, what, channel, headSQL string) *changeFeed {
	return &changeFeed{pool: pool, logger: logger, what: what, channel: channel, headSQL: headSQL,
		changed: make(chan struct{}), stopped: make(chan struct{})}
}

// run follows notifications (reconnecting with backoff) and polls the head
// every feedPoll, until ctx ends.
func (f *changeFeed) run(ctx context.Context) {
	// Long polls end when the service starts shutting down, so that they
	// do not hold its graceful shutdown for their whole wait.
	defer close(f.stopped)
	go f.listen(ctx)
	tick := time.NewTicker(feedPoll)
	defer tick.Stop()
	lastMaintained := time.Time{}
	for {
		f.refresh(ctx)
		if f.maintain != nil && time.Since(lastMaintained) > f.every {
			lastMaintained = time.Now()
			f.maintain(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// refresh rereads the head and wakes the waiters if it moved.
func (f *changeFeed) refresh(ctx context.Context) {
	var head int64
	if err := f.pool.QueryRow(ctx, f.headSQL).Scan(&head); err != nil {
		if ctx.Err() == nil {
			f.logger.Debug("reading the "+f.what+" head", "error", err)
		}
		return
	}
	f.advance(head)
}

func (f *changeFeed) advance(head int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if head != f.head {
		f.head = head
		close(f.changed)
		f.changed = make(chan struct{})
	}
}

// listen holds a connection of its own in LISTEN and refreshes the head on
// every notification.
func (f *changeFeed) listen(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		err := f.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		f.logger.Warn(f.what+" notifications interrupted; polling every second meanwhile",
			"error", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (f *changeFeed) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, f.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+f.channel); err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	f.refresh(ctx) // rows committed while not listening
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if head, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
			f.mu.Lock()
			newer := head > f.head
			f.mu.Unlock()
			if !newer {
				continue
			}
		}
		f.refresh(ctx)
	}
}

// wait blocks until the head is past after, d passes or ctx ends. Both
// heads only grow; a reader ahead of the feed (the database was replaced)
// is answered by its handler before it waits.
func (f *changeFeed) wait(ctx context.Context, after int64, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		f.mu.Lock()
		head, changed := f.head, f.changed
		f.mu.Unlock()
		if head > after {
			return
		}
		select {
		case <-changed:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		case <-f.stopped:
			return
		}
	}
}

// feedQuery reads a feed request: GET with after (a cursor or version from
// an earlier answer, 0 at first) and wait (seconds of long poll, up to
// MaxRevocationWait). It answers a bad request itself and returns false.
func feedQuery(w http.ResponseWriter, r *http.Request) (after int64, wait time.Duration, ok bool) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return 0, 0, false
	}
	q := r.URL.Query()
	after, err := strconv.ParseInt(q.Get("after"), 10, 64)
	if q.Get("after") == "" {
		after, err = 0, nil
	}
	if err != nil || after < 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "after must be a cursor from an earlier answer, or 0")
		return 0, 0, false
	}
	if v := q.Get("wait"); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 0 || time.Duration(secs)*time.Second > MaxRevocationWait {
			writeError(w, http.StatusBadRequest, "invalid_request",
				fmt.Sprintf("wait must be whole seconds from 0 to %d", int(MaxRevocationWait/time.Second)))
			return 0, 0, false
		}
		wait = time.Duration(secs) * time.Second
	}
	return after, wait, true
}

// writeFeedAnswer sends a feed's JSON answer.
func writeFeedAnswer(w http.ResponseWriter, v any) {
	body, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}
