package importcmd

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestImportMedallionMemory measures the peak memory (maximum resident set
// size, from /usr/bin/time -v) of `taxiway import medallion -dry-run` on a
// generated data file of TAXIWAY_IMPORT_MEMORY_OBJECTS objects (about 1 kB
// each), for each binary in TAXIWAY_IMPORT_MEMORY_BINS (comma-separated,
// for example an older build and this one), in one run:
//
//	TAXIWAY_IMPORT_MEMORY_OBJECTS=300000 TAXIWAY_IMPORT_MEMORY_BINS=/tmp/old-taxiway,bin/taxiway \
//	  go test ./cmd/taxiway/importcmd -run TestImportMedallionMemory -v -timeout 30m
func TestImportMedallionMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TAXIWAY_IMPORT_MEMORY_OBJECTS"))
	bins := os.Getenv("TAXIWAY_IMPORT_MEMORY_BINS")
	if n <= 0 || bins == "" {
		t.Skip("set TAXIWAY_IMPORT_MEMORY_OBJECTS and TAXIWAY_IMPORT_MEMORY_BINS to run")
	}
	path := filepath.Join(t.TempDir(), "data.json")
	size := writeMedallionFile(t, path, n, 10)
	t.Logf("generated %s: %d objects, %.0f MB", path, n, float64(size)/1e6)

	maxRSS := regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)
	for _, bin := range strings.Split(bins, ",") {
		pool := migratedPool(t) // a fresh database for each
		url := pool.Config().ConnString()
		pool.Close()
		start := time.Now()
		out, err := exec.Command("/usr/bin/time", "-v", bin, "import", "medallion", "-from", path, "-dry-run", "-quiet",
			"-database-url", url).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", bin, err, out)
		}
		m := maxRSS.FindSubmatch(out)
		if m == nil {
			t.Fatalf("%s: no maximum resident set size in\n%s", bin, out)
		}
		kb, _ := strconv.Atoi(string(m[1]))
		t.Logf("%s: peak RSS %.0f MB (%.2f times the file) in %s", bin, float64(kb)/1e3, float64(kb)*1e3/float64(size), time.Since(start).Round(time.Second))
	}
}

// writeMedallionFile writes a medallion data file with one collection of n
// indicators (with a description of pad sentences, 73 bytes each) and their
// manifest, and returns its size.
func writeMedallionFile(t *testing.T, path string, n, pad int) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	description := strings.Repeat("An indicator for the memory measurement, about as large as a real one. ", pad)
	ids := make([]string, n)
	fmt.Fprint(w, `{"/discovery": {"title": "big", "default": "http://localhost:5000/big/", "api_roots": ["http://localhost:5000/big/"]},`+
		`"big": {"information": {"title": "big", "max_content_length": 9765625}, "status": [], "collections": [`+
		`{"id": "91a7b528-80eb-42ed-a74d-c6fbd5a26116", "title": "big", "can_read": true, "can_write": true, "objects": [`)
	for i := range n {
		ids[i] = "indicator--" + uuid.NewString()
		if i > 0 {
			w.WriteString(",\n")
		}
		fmt.Fprintf(w, `{"type": "indicator", "spec_version": "2.1", "id": %q, "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z", `+
			`"name": "indicator %d", "description": %q, "pattern": "[ipv4-addr:value = '10.%d.%d.%d']", "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00Z"}`,
			ids[i], i, description, i/65536%256, i/256%256, i%256)
	}
	w.WriteString(`], "manifest": [`)
	base := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range ids {
		if i > 0 {
			w.WriteString(",\n")
		}
		fmt.Fprintf(w, `{"id": %q, "date_added": %q, "version": "2020-01-01T00:00:00.000Z", "media_type": "application/stix+json;version=2.1"}`,
			id, base.Add(time.Duration(i)*time.Millisecond).Format("2006-01-02T15:04:05.000000Z"))
	}
	w.WriteString("]}]}}\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestReadMedallionMemory: what reading a medallion file keeps grows with
// the number of objects, not with their size: the same number of objects
// four times as large stays within the same small bound per object.
func TestReadMedallionMemory(t *testing.T) {
	live := func(pad int) (uint64, int64) {
		path := filepath.Join(t.TempDir(), "data.json")
		size := writeMedallionFile(t, path, 5000, pad)
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		before := m.HeapAlloc
		src, err := ReadMedallion(path, "")
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		runtime.GC()
		runtime.ReadMemStats(&m)
		runtime.KeepAlive(src)
		return m.HeapAlloc - min(before, m.HeapAlloc), size
	}
	small, smallFile := live(10)
	large, largeFile := live(60)
	t.Logf("live heap after reading: %d kB for a %d kB file, %d kB for a %d kB file", small>>10, smallFile>>10, large>>10, largeFile>>10)
	// About 100 bytes an object in either file, with room for the
	// collector's timing; reading a file whole would keep megabytes.
	const perObject = 300
	if small > perObject*5000 || large > perObject*5000 {
		t.Fatalf("reading keeps %d bytes for a %d-byte file and %d bytes for a %d-byte file with as many objects", small, smallFile, large, largeFile)
	}
}
