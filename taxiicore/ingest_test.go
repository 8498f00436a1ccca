package taxiicore

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Stored versions are read before the collection lock is taken, so requests
// racing with the same objects must still store each version once, keep an
// SCO immutable, and report every other copy as a duplicate.
func TestConcurrentAddObjectsOfTheSameObjects(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sdo, sco := newID("indicator"), newID("ipv4-addr")
	v1, v2 := "2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z"
	const writers = 6
	statuses := make([]statusResource, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		objs := []map[string]any{indicator(sdo, v1, v1), indicator(sdo, v1, v2),
			{"type": "ipv4-addr", "id": sco, "value": "198.51.100." + string(rune('1'+w))}}
		for range 500 { // a longer time under the lock, for the others to read meanwhile
			objs = append(objs, indicator(newID("indicator"), v1, ""))
		}
		rand.Shuffle(len(objs), func(i, j int) { objs[i], objs[j] = objs[j], objs[i] })
		raws := rawObjects(objs)
		wg.Go(func() {
			<-start
			st, _, err := f.srv.ingest(ctx, "api1", mustUUID(colRW), "alice", raws)
			if err != nil {
				t.Errorf("writer %d: %v", w, err)
			}
			statuses[w] = st
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	var scoVersion string
	if err := f.pool.QueryRow(ctx, `SELECT version FROM taxii_objects WHERE collection_id = $1 AND id = $2`, colRW, sco).Scan(&scoVersion); err != nil {
		t.Fatalf("the SCO should be stored exactly once: %v", err)
	}
	stored := map[string]int{} // id and version to the number of statuses that stored it
	for w, st := range statuses {
		if st.SuccessCount != st.TotalCount {
			t.Fatalf("writer %d: %+v", w, st)
		}
		for _, d := range st.Successes {
			if d.ID == sco && d.Version != scoVersion {
				t.Errorf("writer %d reports the SCO as version %s; stored is %s", w, d.Version, scoVersion)
			}
			if d.Message == "" {
				stored[d.ID+" "+d.Version]++
			}
		}
	}
	for _, k := range []string{sdo + " " + v1, sdo + " " + v2, sco + " " + scoVersion} {
		if stored[k] != 1 {
			t.Errorf("%s reported as stored by %d requests, want 1", k, stored[k])
		}
	}
	assertVersionFlags(t, f, sdo, v1, v2)
}

// Deletes racing with Add Objects: whatever interleaving, no request fails
// and the latest/first flags stay right; a final post stores what was deleted.
func TestAddObjectsRacingWithDelete(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := newID("indicator")
	v1, v2 := "2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z"
	objs := rawObjects([]map[string]any{indicator(id, v1, v1), indicator(id, v1, v2)})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for range 15 {
				if _, _, err := f.srv.ingest(ctx, "api1", mustUUID(colRW), "alice", objs); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 15 {
			if res := f.do(req{method: http.MethodDelete, path: objectsPath(colRW) + id + "/"}); res.status != http.StatusOK && res.status != http.StatusNotFound {
				t.Errorf("delete: %d %s", res.status, res.body)
				return
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	st, _, err := f.srv.ingest(ctx, "api1", mustUUID(colRW), "alice", objs)
	if err != nil || st.SuccessCount != 2 {
		t.Fatalf("final post: %+v %v", st, err)
	}
	assertVersionFlags(t, f, id, v1, v2)
}

// assertVersionFlags checks that id has exactly the versions first..latest
// given, with no older version on the first and no newer one on the latest
// only.
func assertVersionFlags(t *testing.T, f *fixture, id string, versions ...string) {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT version, older_at IS NULL, newer_at IS NULL FROM taxii_objects
		WHERE collection_id = $1 AND id = $2 ORDER BY version_key`, colRW, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int
	for rows.Next() {
		var v string
		var first, latest bool
		if err := rows.Scan(&v, &first, &latest); err != nil {
			t.Fatal(err)
		}
		if n >= len(versions) || v != versions[n] || first != (n == 0) || latest != (n == len(versions)-1) {
			t.Errorf("row %d: version %s first %v latest %v; want versions %v", n, v, first, latest, versions)
		}
		n++
	}
	if n != len(versions) {
		t.Errorf("%d rows for %s, want %d", n, id, len(versions))
	}
}
