// Command benchrevoke measures revocation latency through the real stack:
// the local stack (Postgres, token service, core, the gateway) plus a second
// gateway process, as `taxiway local` runs them from bin/. Each trial logs
// an account in, checks its Bearer token works at both gateways, runs
// `taxiway token revoke -user` and polls both gateways every 2 ms until
// both refuse the token. It prints Markdown (scripts/bench.sh collects it):
// the median and worst time from the start of the admin command, and from
// its return, to refusal at the later of the two gateways.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
)

func main() {
	trials := flag.Int("trials", 20, "revocations to time")
	bin := flag.String("bin", "bin", "folder holding the taxiway and gateway binaries (make build)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *trials, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "benchrevoke:", err)
		os.Exit(1)
	}
}

const account = "bench-revoke"

func run(ctx context.Context, trials int, bin string) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "taxiway-benchrevoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// Postgres runs as an unprivileged user when started as root.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	cfg := localstack.Defaults(root)
	cfg.DataDir = filepath.Join(tmp, "data")
	cfg.TaxiwayBin, _ = filepath.Abs(filepath.Join(bin, "taxiway"))
	cfg.GatewayBin, _ = filepath.Abs(filepath.Join(bin, "gateway"))
	ports, err := localstack.FreePorts(8)
	if err != nil {
		return err
	}
	cfg.GatewayPort, cfg.GatewayOpsPort = ports[0], ports[1]
	cfg.CorePort, cfg.CoreOpsPort = ports[2], ports[3]
	cfg.TokenPort, cfg.TokenOpsPort = ports[4], ports[5]
	st, err := localstack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Stop()
	if err := st.StartGateway(ctx, "gateway2", ports[6], ports[7]); err != nil {
		return err
	}
	gateways := []string{st.GatewayURL(), st.GatewayURLOf("gateway2")}

	admin := func(stdin string, args ...string) error {
		cmd := exec.CommandContext(ctx, cfg.TaxiwayBin, args...)
		cmd.Env = append(os.Environ(), "TAXIWAY_DATABASE_URL="+st.DatabaseURL())
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("taxiway %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := admin("bench-pw\n", "account", "create", account); err != nil {
		return err
	}

	var fromStart, fromReturn, command []time.Duration
	for range trials {
		token, err := login(gateways[0])
		if err != nil {
			return err
		}
		for _, gw := range gateways {
			if s, err := status(ctx, gw, token); err != nil || s != http.StatusOK {
				return fmt.Errorf("token not accepted at %s before the revocation: %d %v", gw, s, err)
			}
		}
		start := time.Now()
		var returned time.Time
		var wg sync.WaitGroup
		refused := make([]time.Time, len(gateways))
		errs := make([]error, len(gateways))
		for i, gw := range gateways {
			wg.Add(1)
			go func() {
				defer wg.Done()
				deadline := start.Add(30 * time.Second)
				for time.Now().Before(deadline) {
					s, err := status(ctx, gw, token)
					if err != nil {
						errs[i] = err
						return
					}
					if s == http.StatusUnauthorized {
						refused[i] = time.Now()
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
				errs[i] = fmt.Errorf("%s still accepts the token 30s after the revocation", gw)
			}()
		}
		err = admin("", "token", "revoke", "-user", account)
		returned = time.Now()
		wg.Wait()
		if err != nil {
			return err
		}
		for _, e := range errs {
			if e != nil {
				return e
			}
		}
		last := slices.MaxFunc(refused, func(a, b time.Time) int { return a.Compare(b) })
		fromStart = append(fromStart, last.Sub(start))
		fromReturn = append(fromReturn, max(0, last.Sub(returned)))
		command = append(command, returned.Sub(start))
	}

	fmt.Printf("%d trials, two gateway processes, `taxiway token revoke -user` (a new process connecting to Postgres each time).\n\n", trials)
	fmt.Println("| | median | worst |")
	fmt.Println("|---|---|---|")
	row := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		fmt.Printf("| %s | %s | %s |\n", name, ms(ds[len(ds)/2]), ms(ds[len(ds)-1]))
	}
	row("admin command start to refusal at both gateways", fromStart)
	row("admin command return to refusal at both gateways", fromReturn)
	row("the admin command itself", command)
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

var client = &http.Client{Timeout: 10 * time.Second}

func login(gw string) (string, error) {
	resp, err := client.PostForm(gw+"/management/auth", url.Values{"username": {account}, "password": {"bench-pw"}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login: status %d %v", resp.StatusCode, err)
	}
	return body.Token, nil
}

func status(ctx context.Context, gw, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw+"/taxii2/", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
