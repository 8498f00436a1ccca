// Command probe is what the compose test runs in throwaway containers on the
// stack's networks (the images have no shell or client of their own):
//
//	probe http URL [Name: value]...   prints the status code, then the body
//	probe tcp HOST:PORT               prints "open", or "closed: <why>"
//
// It always exits 0 once it has an answer, so the test reads the verdict.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: probe http URL [Name: value]... | probe tcp HOST:PORT")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "tcp":
		conn, err := net.DialTimeout("tcp", os.Args[2], 3*time.Second)
		if err != nil {
			fmt.Println("closed:", err)
			return
		}
		conn.Close()
		fmt.Println("open")
	case "http":
		req, err := http.NewRequest(http.MethodGet, os.Args[2], nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, h := range os.Args[3:] {
			name, value, _ := strings.Cut(h, ":")
			req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		defer resp.Body.Close()
		fmt.Println(resp.StatusCode)
		io.Copy(os.Stdout, resp.Body)
	default:
		fmt.Fprintln(os.Stderr, "unknown probe", os.Args[1])
		os.Exit(2)
	}
}
