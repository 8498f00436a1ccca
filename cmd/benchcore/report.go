package main

import (
	"fmt"
	"io"
	"time"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }

func printReport(w io.Writer, results []sizeResult) {
	for _, r := range results {
		fmt.Fprintf(w, "\n### %d objects (%d object versions)", r.objects, r.rows)
		if r.label != "" {
			fmt.Fprintf(w, ": %s", r.label)
		}
		fmt.Fprint(w, "\n\n")
		fmt.Fprintln(w, "| measurement | median ms | p95 ms | requests |")
		fmt.Fprintln(w, "|---|---:|---:|---:|")
		for _, t := range r.timings {
			fmt.Fprintf(w, "| %s | %s | %s | %d |\n", t.name, ms(t.median), ms(t.p95), t.n)
		}
		if len(r.timings) >= 2 && r.timings[0].median > 0 {
			fmt.Fprintf(w, "| last/first page median ratio | %.2f | | |\n", float64(r.timings[1].median)/float64(r.timings[0].median))
		}
		fmt.Fprintf(w, "| ingest into this collection, 1,000-object envelopes, one client | %.0f objects/s | | |\n", r.ingestRate)
		if r.ingestRate2 > 0 {
			fmt.Fprintf(w, "| ingest into this collection, 1,000-object envelopes, two concurrent clients | %.0f objects/s | | |\n", r.ingestRate2)
		}
		if r.copyRate > 0 {
			fmt.Fprintf(w, "| COPY floor: the same rows by raw COPY into the same table, one transaction per 1,000 | %.0f rows/s | | |\n", r.copyRate)
			fmt.Fprintf(w, "| ingest (one client) / COPY floor | %.2f | | |\n", r.ingestRate/r.copyRate)
		}
		fmt.Fprintf(w, "| core peak RSS (VmHWM) | %.1f MiB | | |\n", float64(r.peakRSSKiB)/1024)
	}
}
