package taxiicore

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A page is cut by bytes as well as by count: it keeps its first object
// whatever its size, then objects while their total fits the cap, and says
// more: true with a next that continues without loss or repetition.
func TestPageByteCap(t *testing.T) {
	const pageCap = 5000
	f := newFixture(t, func(c *Config) { c.MaxPageBytes = pageCap })
	var want []string
	sizes := []int{1500, 1500, 1500, 1500, 9000, 100, 100, 1500, 1500}
	for _, n := range sizes {
		o := indicator(newID("indicator"), "2020-01-01T00:00:00Z", "")
		o["description"] = strings.Repeat("x", n)
		f.post(colRW, o)
		want = append(want, o["id"].(string))
	}
	var got []string
	var pages [][]int
	next := ""
	for i := 0; ; i++ {
		path := objectsPath(colRW)
		if next != "" {
			path += "?next=" + url.QueryEscape(next)
		}
		res := f.expect(req{path: path}, http.StatusOK)
		var env struct {
			More    bool              `json:"more"`
			Next    string            `json:"next"`
			Objects []json.RawMessage `json:"objects"`
		}
		if err := json.Unmarshal(res.body, &env); err != nil {
			t.Fatal(err)
		}
		total, lens := 0, []int{}
		for _, o := range env.Objects {
			total += len(o)
			lens = append(lens, len(o))
		}
		if len(env.Objects) > 1 && total > pageCap {
			t.Fatalf("page %d holds %d bytes over the cap of %d", i, total, pageCap)
		}
		pages = append(pages, lens)
		got = append(got, ids(t, res)...)
		if env.More != (env.Next != "") {
			t.Fatalf("more %v with next %q", env.More, env.Next)
		}
		if !env.More {
			break
		}
		next = env.Next
		if i > len(sizes) {
			t.Fatal("paging does not end")
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("paging lost or repeated objects:\n got %v\nwant %v", got, want)
	}
	// Two of ~1.75 kB fit in 5,000 bytes, a third would not; the 9 kB
	// object stands alone; then 351 + 351 + 1751 + 1751 fit together.
	if g := fmtPages(pages); g != "[[1751,1751],[1751,1751],[9251],[351,351,1751,1751]]" {
		t.Fatalf("pages (object sizes): %s", g)
	}
	// The count limit still applies within the byte cap.
	res := f.expect(req{path: objectsPath(colRW) + "?limit=1"}, http.StatusOK)
	if len(ids(t, res)) != 1 || !strings.Contains(string(res.body), `"more":true`) {
		t.Fatalf("limit=1: %s", res.body)
	}
}

func fmtPages(p [][]int) string {
	b, _ := json.Marshal(p)
	return string(b)
}
