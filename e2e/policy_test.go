package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
)

// The fronting scenario of README's "Per-collection access in front of
// another TAXII server": a second core process on the stack's database plays
// the existing TAXII server. It knows one account: the policy gateways call
// it as svc, in its admin group, so it shows and takes everything (it
// trusts its loopback proxy's identity headers, without a signature, as a
// single-account backend does its one credential). Users log in at the
// policy gateways, whose taxii_policy enforces the grants of the sync
// YAML's fronted section.

const policyCaddyfile = `{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
}
http://127.0.0.1:%d {
	taxii_auth {
		jwks_url http://127.0.0.1:%d/.well-known/jwks.json
		token_url http://127.0.0.1:%d/management/auth
		revocation_url http://127.0.0.1:%d/internal/revocations
		anonymous
		leeway 2s
	}
	taxii_policy {
		policy_url http://127.0.0.1:%d/internal/policy
		backend legacy
	}
	reverse_proxy %s {
		# the backend's one account
		header_up X-Authenticated-User svc
		header_up X-Authenticated-Groups taxiway-admin
	}
}
`

// fronted is the scenario, set up once for the test binary.
type fronted struct {
	gateways                 []string
	shared, internal, public string // collection ids on the backend
}

var (
	frontedOnce  sync.Once
	frontedSetup fronted
	frontedErr   error
)

func frontedScenario(t *testing.T) fronted {
	t.Helper()
	frontedOnce.Do(func() { frontedSetup, frontedErr = setUpFronted(t) })
	if frontedErr != nil {
		t.Fatalf("setting up the fronted scenario: %v", frontedErr)
	}
	return frontedSetup
}

func setUpFronted(t *testing.T) (fronted, error) {
	var f fronted
	// The backend: three collections.
	f.shared = strings.TrimSpace(taxiway(t, "", "collection", "add", "-root", "api1", "-title", "Shared IOCs", "-alias", "shared-iocs"))
	f.internal = strings.TrimSpace(taxiway(t, "", "collection", "add", "-root", "api1", "-title", "Internal"))
	f.public = strings.TrimSpace(taxiway(t, "", "collection", "add", "-root", "api1", "-title", "Public feed"))
	// Its users, who have no account on the backend.
	taxiway(t, "pat-password\n", "account", "create", "-groups", "partners", "pat")
	taxiway(t, "ann-password\n", "account", "create", "-groups", "analysts", "ann")
	syncYAML(t, fmt.Sprintf(`
fronted:
  - backend: legacy
    api_roots:
      - path: /api1/
        public: true
        collections:
          - id: %s
            alias: shared-iocs
            grants:
              - {to: "group:partners", read: true}
              - {to: "group:analysts", read: true, write: true}
          - id: %s
            grants:
              - {to: "group:analysts", read: true, write: true}
          - id: %s
            grants:
              - {to: anonymous, read: true}
`, f.shared, f.internal, f.public))

	ports, err := localstack.FreePorts(2)
	if err != nil {
		return f, err
	}
	backend := fmt.Sprintf("127.0.0.1:%d", ports[0])
	if err := startProcess(t.TempDir(), "backend-core", fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1]), http.StatusOK,
		[]string{"TAXIWAY_DATABASE_URL=" + stack.DatabaseURL(), "TAXIWAY_CORE_LISTEN=" + backend,
			fmt.Sprintf("TAXIWAY_CORE_OPS_LISTEN=127.0.0.1:%d", ports[1]), "TAXIWAY_IDENTITY_KEY="},
		taxiwayBin, "core"); err != nil {
		return f, err
	}
	for i := range 2 {
		ports, err := localstack.FreePorts(2)
		if err != nil {
			return f, err
		}
		dir := t.TempDir()
		conf := filepath.Join(dir, "Caddyfile")
		body := fmt.Sprintf(policyCaddyfile, ports[1], ports[0], tokenPort, tokenPort, tokenPort, tokenPort, backend)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			return f, err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		// Anonymous callers get 401 on the discovery resource: it is up.
		if err := startProcess(dir, fmt.Sprintf("policy-gateway-%d", i+1), url+"/taxii2/", http.StatusUnauthorized,
			[]string{"XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")},
			gatewayBin, "run", "--config", conf, "--adapter", "caddyfile"); err != nil {
			return f, err
		}
		f.gateways = append(f.gateways, url)
	}
	return f, nil
}

// startProcess runs a process of the scenario until the test binary ends
// (its output in dir) and waits until readyURL answers readyStatus.
func startProcess(dir, name, readyURL string, readyStatus int, env []string, bin string, args ...string) error {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	frontedProcs = append(frontedProcs, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if resp, err := http.Get(readyURL); err == nil {
			resp.Body.Close()
			if resp.StatusCode == readyStatus {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(logf.Name())
	return fmt.Errorf("%s did not get ready:\n%s", name, b)
}

// frontedProcs (the scenario's gateways and backend) are stopped by
// stopFrontedProcesses when the tests end.
var frontedProcs []*exec.Cmd

func stopFrontedProcesses() {
	for _, cmd := range frontedProcs {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
}

// visibleCollections lists what c sees at its gateway, id -> can_write.
func visibleCollections(t *testing.T, c client) map[string]bool {
	t.Helper()
	body, _ := c.json("GET", demoRoot+"collections/", nil, http.StatusOK)
	out := map[string]bool{}
	list, _ := body["collections"].([]any)
	for _, item := range list {
		m := item.(map[string]any)
		if m["can_read"] != true && m["can_write"] != true {
			t.Errorf("listed %v without access", m["id"])
		}
		out[m["id"].(string)] = m["can_write"] == true
	}
	return out
}

func keys(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func sortedIDs(ids ...string) string {
	sort.Strings(ids)
	return strings.Join(ids, ",")
}

// TestPolicyPerCollectionAccess: two groups and anonymous callers get
// different collection lists and different answers on objects, manifest,
// versions, status and writes, with Bearer and Basic alike; the backend
// saw only its service account.
func TestPolicyPerCollectionAccess(t *testing.T) {
	f := frontedScenario(t)
	gw := f.gateways[0]
	objects := func(col string) string { return demoRoot + "collections/" + col + "/objects/" }
	for _, auth := range []string{"basic", "bearer"} {
		t.Run(auth, func(t *testing.T) {
			as := func(user, pw string) client {
				c := freshBearer(t, user, pw)
				if auth == "basic" {
					c = basic(t, user, pw)
				}
				c.patient = true
				return c.at(gw)
			}
			pat, ann, anon := as("pat", "pat-password"), as("ann", "ann-password"), anonymous(t).at(gw)

			// Lists: what each may see, with its own can_write.
			if got := visibleCollections(t, pat); keys(got) != sortedIDs(f.shared, f.public) || got[f.shared] {
				t.Errorf("partner's list: %v", got)
			}
			if got := visibleCollections(t, ann); keys(got) != sortedIDs(f.shared, f.internal, f.public) || !got[f.shared] || !got[f.internal] {
				t.Errorf("analyst's list: %v", got)
			}
			if got := visibleCollections(t, anon); keys(got) != f.public {
				t.Errorf("anonymous list: %v", got)
			}
			one, _ := pat.json("GET", demoRoot+"collections/shared-iocs/", nil, http.StatusOK)
			if one["id"] != f.shared || one["can_read"] != true || one["can_write"] != false {
				t.Errorf("partner's view of shared-iocs: %v", one)
			}

			// Writes need write; the analyst's status is the analyst's.
			obj := indicator(time.Now().UTC())
			st, _ := ann.json("POST", objects(f.shared), map[string]any{"objects": []any{obj}}, http.StatusAccepted)
			if st["success_count"] != float64(1) {
				t.Fatalf("analyst's write: %v", st)
			}
			statusPath := demoRoot + "status/" + st["id"].(string) + "/"
			ann.json("GET", statusPath, nil, http.StatusOK)
			pat.json("GET", statusPath, nil, http.StatusNotFound)
			anon.json("GET", statusPath, nil, http.StatusUnauthorized)
			pat.json("POST", objects(f.shared), map[string]any{"objects": []any{indicator(time.Now().UTC())}}, http.StatusForbidden)
			pat.json("POST", objects(f.internal), map[string]any{"objects": []any{indicator(time.Now().UTC())}}, http.StatusNotFound)
			ann.json("POST", objects(f.internal), map[string]any{"objects": []any{indicator(time.Now().UTC())}}, http.StatusAccepted)

			// Reads: the partner reads shared (by id and by alias), not internal.
			oid := obj["id"].(string)
			for _, path := range []string{objects(f.shared), objects("shared-iocs"), objects(f.shared) + oid + "/",
				objects(f.shared) + oid + "/versions/", demoRoot + "collections/" + f.shared + "/manifest/"} {
				pat.json("GET", path, nil, http.StatusOK)
			}
			for _, path := range []string{objects(f.internal), objects(f.internal) + oid + "/versions/",
				demoRoot + "collections/" + f.internal + "/manifest/", demoRoot + "collections/" + f.internal + "/",
				objects(demoCol), objects(strings.ToUpper(f.internal))} {
				resp, b := pat.do("GET", path, nil)
				if resp.StatusCode != http.StatusNotFound || string(b) != string(unknownBody(t, pat)) {
					t.Errorf("partner GET %s: %d %s, want the unknown collection's 404", path, resp.StatusCode, b)
				}
			}

			// Anonymous callers: only what anonymous is granted.
			anon.json("GET", objects(f.public), nil, http.StatusOK)
			anon.json("GET", demoRoot, nil, http.StatusOK)
			anon.json("GET", objects(f.shared), nil, http.StatusUnauthorized)
			anon.json("POST", objects(f.public), map[string]any{"objects": []any{indicator(time.Now().UTC())}}, http.StatusForbidden) // readable: 403, as the core answers
			anon.json("GET", "/taxii2/", nil, http.StatusUnauthorized)
		})
	}
}

// unknownBody is the answer to a collection nobody has.
func unknownBody(t *testing.T, c client) []byte {
	t.Helper()
	_, b := c.do("GET", demoRoot+"collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/objects/", nil)
	return b
}

// TestPolicyPathSpellings: spellings a backend might read as another
// collection than the policy would are refused or judged as that
// collection; none reaches the internal collection for a partner.
func TestPolicyPathSpellings(t *testing.T) {
	f := frontedScenario(t)
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("pat:pat-password")) + "\r\n"
	host := strings.TrimPrefix(f.gateways[0], "http://")
	for _, path := range []string{
		"/api1/collections/shared-iocs%2F..%2F" + f.internal + "/objects/",
		"/api1/collections/shared-iocs/../" + f.internal + "/objects/",
		"/api1/collections/shared-iocs/%2e%2e/" + f.internal + "/objects/",
		"/api1/collections/./" + f.internal + "/objects/",
		"/api1//collections/" + f.internal + "/objects/",
		"//api1/collections/" + f.internal + "/objects/",
		"/API1/collections/" + f.internal + "/objects/",
		"/api1/Collections/" + f.internal + "/objects/",
		"/api1/collections/" + strings.ToUpper(f.internal) + "/objects/",
		"/api1/collections/" + f.internal + "%00/objects/",
		"/api1/collections/" + f.internal + ";x=1/objects/",
		"/api1/collections/" + f.internal + "%5C/objects/",
		"/api1/collections/shared-iocs\\..\\" + f.internal + "/objects/",
		"/%61pi1/collections/" + f.internal + "/objects/",
		"/api1/collections/" + f.internal + "/objects",
	} {
		res, body := rawRequestTo(t, host, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n"+auth+"Accept: "+taxiiType+"\r\nConnection: close\r\n")
		if res == nil {
			continue // closed without an answer: nothing reached the backend
		}
		if res.StatusCode != http.StatusBadRequest && res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d %s", path, res.StatusCode, body)
			continue
		}
		checkTAXIIError(t, path, res, body, res.StatusCode)
	}
}

// rawRequestTo sends head as it is to host and reads the answer.
func rawRequestTo(t *testing.T, host, head string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// TestPolicyGrantChangeReachesEveryGateway: a grant removed with `taxiway
// grant remove` is refused at both policy gateways within 2 s, and given
// back with `taxiway grant add` it works again as fast.
func TestPolicyGrantChangeReachesEveryGateway(t *testing.T) {
	f := frontedScenario(t)
	path := demoRoot + "collections/" + f.shared + "/objects/"
	// A fresh token for each phase: the stack's tokens live seconds.
	expect := func(want int) time.Duration {
		t.Helper()
		pat := "Bearer " + login(t, "pat", "pat-password")
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var fails []string
		var slowest time.Duration
		for _, gw := range f.gateways {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					req, _ := http.NewRequest(http.MethodGet, gw+path, nil)
					req.Header.Set("Authorization", pat)
					req.Header.Set("Accept", taxiiType)
					got := 0
					if resp, err := httpClient.Do(req); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						got = resp.StatusCode
					}
					mu.Lock()
					if got == want {
						slowest = max(slowest, time.Since(start))
						mu.Unlock()
						return
					}
					if time.Since(start) > revocationBound {
						fails = append(fails, fmt.Sprintf("%s: %d after %v, want %d", gw, got, time.Since(start), want))
						mu.Unlock()
						return
					}
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		if len(fails) > 0 {
			t.Fatal(strings.Join(fails, "\n"))
		}
		return slowest
	}
	expect(http.StatusOK)
	taxiway(t, "", "grant", "remove", "-backend", "legacy", "-root", "/api1/", "-collection", f.shared, "-to", "group:partners")
	t.Logf("revoked at both gateways after %v", expect(http.StatusNotFound))
	taxiway(t, "", "grant", "add", "-backend", "legacy", "-root", "/api1/", "-collection", f.shared, "-to", "group:partners", "-read")
	t.Logf("granted again at both gateways after %v", expect(http.StatusOK))
	if out := taxiway(t, "", "grant", "list", "-backend", "legacy"); !strings.Contains(out, "group:partners") || !strings.Contains(out, "shared-iocs") {
		t.Errorf("grant list: %s", out)
	}
}
