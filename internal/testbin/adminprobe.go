package testbin

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ListeningTCPPorts are the TCP ports process pid listens on, on any
// address (Linux: its socket inodes matched against /proc/net/tcp{,6} in
// the LISTEN state). The error says when /proc cannot tell.
func ListeningTCPPorts(pid int) ([]int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, fmt.Errorf("reading the sockets of process %d: %w", pid, err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			if port, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				ports = append(ports, int(port))
			}
		}
		f.Close()
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
}

// CaddyAdminOn tries what a local process would do with Caddy's admin API
// at host:port (read the config; load a server that answers with the
// gateway's identity key, on a port of leakPort) and describes the first
// attempt that worked, or "" when none did.
func CaddyAdminOn(host string, port, leakPort int) (string, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	leak := `{"apps":{"http":{"servers":{"leak":{"listen":["127.0.0.1:` + strconv.Itoa(leakPort) +
		`"],"routes":[{"handle":[{"handler":"static_response","body":"{env.TAXIWAY_IDENTITY_KEY}"}]}]}}}}}`
	base := "http://" + net.JoinHostPort(host, strconv.Itoa(port))
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/config/", ""}, {"POST", "/load", leak}, {"PUT", "/config/apps/http/servers/leak", leak},
	} {
		req, err := http.NewRequest(r.method, base+r.path, strings.NewReader(r.body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		// The Host the admin API accepts by default.
		req.Host = "localhost:" + strconv.Itoa(port)
		res, err := client.Do(req)
		if err != nil {
			return "", fmt.Errorf("%s %s%s: %w", r.method, base, r.path, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		// A config read back (JSON, null when empty); a load shows below.
		var config map[string]any
		if r.method == "GET" && res.StatusCode == http.StatusOK && json.Unmarshal(b, &config) == nil {
			return fmt.Sprintf("%s %s%s answered as the admin API: %.200s", r.method, base, r.path, b), nil
		}
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(leakPort), time.Second); err == nil {
		c.Close()
		return fmt.Sprintf("a config loaded through %s serves the identity key on port %d", base, leakPort), nil
	}
	return "", nil
}

// CheckPrivateSocket says what is wrong with sock as a socket only its
// owner may open: a socket of mode 0600, owned by this process's user, in
// a folder of mode 0700. "" when nothing is.
func CheckPrivateSocket(sock string) string {
	fi, err := os.Stat(sock)
	if err != nil {
		return err.Error()
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 || !ok || int(st.Uid) != os.Getuid() {
		return fmt.Sprintf("%s: mode %v, want a socket of mode 0600 owned by user %d", sock, fi.Mode(), os.Getuid())
	}
	dir := sock[:strings.LastIndex(sock, "/")]
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		return fmt.Sprintf("%s: %v %v, want mode 0700", dir, di.Mode(), err)
	}
	return ""
}
