// Package trustedproxy decides which peers may speak for a client: the core
// believes identity headers, and the token service client addresses in
// X-Forwarded-For, only from peers in a configured set of CIDRs.
package trustedproxy

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Default is loopback only: the gateway on the same host.
const Default = "127.0.0.0/8,::1/128"

// Set is a list of trusted networks. The zero Set trusts no one.
type Set struct {
	prefixes []netip.Prefix
}

// Parse reads a comma-separated list of CIDRs or bare addresses.
func Parse(list string) (Set, error) {
	var s Set
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			addr, err := netip.ParseAddr(item)
			if err != nil {
				return Set{}, fmt.Errorf("trusted proxy %q: not an address or CIDR", item)
			}
			s.prefixes = append(s.prefixes, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return Set{}, fmt.Errorf("trusted proxy %q: %w", item, err)
		}
		s.prefixes = append(s.prefixes, p.Masked())
	}
	return s, nil
}

// Contains reports whether addr is in a trusted network.
func (s Set) Contains(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range s.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// String lists the networks, for start-up logs.
func (s Set) String() string {
	parts := make([]string, len(s.prefixes))
	for i, p := range s.prefixes {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// Peer is the address of the TCP peer that sent r.
func Peer(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, _ := netip.ParseAddr(host)
	return addr.Unmap()
}

// FromTrusted reports whether r came straight from a trusted proxy.
func (s Set) FromTrusted(r *http.Request) bool {
	return s.Contains(Peer(r))
}

// ClientIP is the address of the client that r speaks for: the peer itself,
// or, when the peer is trusted, the right-most X-Forwarded-For entry that is
// not a trusted proxy (entries further left are client-supplied and could be
// forged).
func (s Set) ClientIP(r *http.Request) netip.Addr {
	peer := Peer(r)
	if !s.Contains(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		addr, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a malformed hop: stop believing the chain
		}
		if addr = addr.Unmap(); !s.Contains(addr) {
			return addr
		}
	}
	return peer
}
