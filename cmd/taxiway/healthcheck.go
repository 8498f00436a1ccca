package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"time"
)

func healthcheckCommands() []command {
	return []command{{name: "healthcheck", summary: "exit 0 when a service's /readyz (or URL) answers 200: a container health check", run: runHealthcheck}}
}

// runHealthcheck is the health check of images that have no shell or wget:
// `taxiway healthcheck http://127.0.0.1:9011/readyz`.
func runHealthcheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 3*time.Second, "time allowed for the request")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: taxiway healthcheck [-timeout D] URL\n\nGET URL (a service's ops /readyz); exit 0 on 200, 1 otherwise.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("want one URL, got %d arguments", fs.NArg())
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fs.Arg(0), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", fs.Arg(0), resp.Status)
	}
	return nil
}
