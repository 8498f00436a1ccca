package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("taxii_policy", parsePolicyCaddyfile)
	// After every rewrite (uri, rewrite) and after taxii_auth, whose
	// identity it reads; after encode, so that it rewrites the backend's
	// plain answer and encode compresses the result; before handle, route
	// and reverse_proxy. Inside a handle_path block it sees the stripped
	// path, as the backend does.
	httpcaddyfile.RegisterDirectiveOrder("taxii_policy", httpcaddyfile.After, "encode")
}

// parsePolicyCaddyfile sets up the handler from Caddyfile tokens:
//
//	taxii_policy [<matcher>] {
//	    policy_url     <url>
//	    backend        <name>
//	    discovery_path <path>
//	    admin_group    <group>
//	    max_age        <duration>|off
//	    max_list_bytes <bytes>
//	    max_entries    <n>
//	}
func parsePolicyCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	p := new(TaxiiPolicy)
	if err := p.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return p, nil
}

// UnmarshalCaddyfile reads the directive's block.
func (p *TaxiiPolicy) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.Errf("taxii_policy takes no arguments besides a matcher, got %q; options go in a block", d.Val())
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("option %s given twice", opt)
		}
		seen[opt] = true
		switch opt {
		case "policy_url":
			v, err := httpURLArg(d)
			if err != nil {
				return err
			}
			p.PolicyURL = v
		case "backend", "discovery_path", "admin_group":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			switch opt {
			case "backend":
				p.Backend = v
			case "discovery_path":
				p.DiscoveryPath = v
			default:
				p.AdminGroup = v
			}
		case "max_age":
			dur, err := feedMaxAgeArg(d)
			if err != nil {
				return err
			}
			p.MaxAge = dur
		case "max_list_bytes":
			n, err := intArg(d, 1, maxMaxListBytes)
			if err != nil {
				return err
			}
			p.MaxListBytes = n
		case "max_entries":
			n, err := intArg(d, 1, maxMaxPolicyEntries)
			if err != nil {
				return err
			}
			p.MaxEntries = n
		default:
			return d.Errf("unrecognized taxii_policy option %q", opt)
		}
	}
	if err := checkPolicyOptions(p); err != nil {
		return d.Err(err.Error())
	}
	return nil
}
