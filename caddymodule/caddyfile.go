package caddymodule

import (
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("taxii_auth", parseCaddyfile)
	// Authentication goes with the other auth directives: after rewrites,
	// before request_header (so a `request_header Authorization ...` for the
	// backend survives the removal of the client's header), and before
	// handle, route, reverse_proxy and every other handler. basic_auth and
	// taxii_auth are alternatives; taxii_auth runs first and, unless
	// keep_authorization is on, leaves basic_auth no credentials. Ordered
	// by basic_auth, not its deprecated alias basicauth.
	httpcaddyfile.RegisterDirectiveOrder("taxii_auth", httpcaddyfile.Before, "basic_auth")
}

// parseCaddyfile sets up the handler from Caddyfile tokens:
//
//	taxii_auth [<matcher>] {
//	    jwks_url              <url>
//	    token_url             <url>
//	    issuer                <iss>
//	    audience              <aud>
//	    algorithms            <EdDSA|HS256>...
//	    public_key_file       <pem file>
//	    hs256_secret_file     <file>
//	    leeway                <duration>
//	    max_lifetime          <duration>
//	    cache_ttl             <duration>
//	    cache_size            <entries>
//	    user_header           <name>
//	    groups_header         <name>
//	    keep_authorization    [on|off]
//	    basic                 on|off
//	    jwt_in_basic_password [on|off]
//	    anonymous             [on|off]
//	    skip                  <matcher>...
//	    max_header_bytes      <bytes>
//	    revocation_url        <url>
//	    revocation_max_age    <duration>|off
//	    identity_key          <key or {env.NAME}>
//	    identity_key_file     <file>
//	}
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	a := new(TaxiiAuth)
	if err := a.unmarshal(h); err != nil {
		return nil, err
	}
	return a, nil
}

// UnmarshalCaddyfile reads the directive without named matchers in `skip`
// (only path matchers like /taxii2/); the directive itself uses
// parseCaddyfile, which has the site's named matchers.
func (a *TaxiiAuth) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return a.unmarshal(httpcaddyfile.Helper{Dispenser: d})
}

func (a *TaxiiAuth) unmarshal(h httpcaddyfile.Helper) error {
	d := h.Dispenser
	d.Next() // the directive name
	// RegisterHandlerDirective has removed a leading matcher already.
	if d.NextArg() {
		return d.Errf("taxii_auth takes no arguments besides a matcher, got %q; options go in a block", d.Val())
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		opt := d.Val()
		if seen[opt] && opt != "skip" {
			return d.Errf("option %s given twice", opt)
		}
		seen[opt] = true

		switch opt {
		case "revocation_max_age":
			dur, err := feedMaxAgeArg(d)
			if err != nil {
				return err
			}
			a.RevocationMaxAge = dur
		case "jwks_url", "token_url", "revocation_url":
			v, err := httpURLArg(d)
			if err != nil {
				return err
			}
			*a.stringField(opt) = v
		case "issuer", "audience", "public_key_file", "hs256_secret_file", "identity_key", "identity_key_file":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			*a.stringField(opt) = v
		case "algorithms":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("algorithms needs at least one of %s, %s", AlgEdDSA, AlgHS256)
			}
			for _, alg := range args {
				if alg != AlgEdDSA && alg != AlgHS256 {
					return d.Errf("algorithms: %q is not supported (use %s and/or %s)", alg, AlgEdDSA, AlgHS256)
				}
			}
			a.Algorithms = args
		case "leeway":
			v, err := durationArg(d)
			if err != nil {
				return err
			}
			if err := checkLeeway(v); err != nil {
				return d.Err(err.Error())
			}
			d := caddy.Duration(v)
			a.Leeway = &d
		case "max_lifetime":
			v, err := durationArg(d)
			if err != nil {
				return err
			}
			if v <= 0 {
				return d.Errf("max_lifetime must be positive, got %s", v)
			}
			a.MaxLifetime = caddy.Duration(v)
		case "cache_ttl":
			v, err := durationArg(d)
			if err != nil {
				return err
			}
			if err := checkCacheTTL(v); err != nil {
				return d.Err(err.Error())
			}
			a.CacheTTL = caddy.Duration(v)
		case "cache_size":
			n, err := intArg(d, 1, maxCacheSize)
			if err != nil {
				return err
			}
			a.CacheSize = n
		case "max_header_bytes":
			n, err := intArg(d, minMaxHeaderBytes, maxMaxHeaderBytes)
			if err != nil {
				return err
			}
			a.MaxHeaderBytes = n
		case "user_header", "groups_header":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if err := checkHeaderName(opt, v); err != nil {
				return d.Err(err.Error())
			}
			if opt == "user_header" {
				a.UserHeader = v
			} else {
				a.GroupsHeader = v
			}
		case "keep_authorization":
			v, err := flagArg(d, true)
			if err != nil {
				return err
			}
			a.KeepAuthorization = v
		case "anonymous":
			v, err := flagArg(d, true)
			if err != nil {
				return err
			}
			a.Anonymous = v
		case "jwt_in_basic_password":
			v, err := flagArg(d, true)
			if err != nil {
				return err
			}
			a.JWTInBasicPassword = v
		case "basic":
			if !d.NextArg() {
				return d.Errf("basic needs on or off")
			}
			d.Prev()
			v, err := flagArg(d, true)
			if err != nil {
				return err
			}
			a.Basic = &v
		case "skip":
			if !d.NextArg() {
				return d.Errf("skip needs a matcher: a path such as /taxii2/ or a named matcher such as @public")
			}
			d.Prev()
			for d.NextArg() {
				d.Prev()
				set, ok, err := h.MatcherToken()
				if err != nil {
					return d.Errf("skip: %v", err)
				}
				if !ok {
					return d.Errf("skip: %q is not a matcher (use a path starting with / or a named matcher @name)", d.Val())
				}
				if set == nil {
					return d.Errf("skip: %q matches every request and would turn authentication off", d.Val())
				}
				a.SkipRaw = append(a.SkipRaw, set)
			}
		default:
			return d.Errf("unrecognized taxii_auth option %q", opt)
		}
	}
	return nil
}

// hasPlaceholder reports whether v holds a {placeholder} that is resolved
// stringField is the field a one-string option of the Caddyfile sets.
func (a *TaxiiAuth) stringField(opt string) *string {
	return map[string]*string{
		"jwks_url": &a.JWKSURL, "token_url": &a.TokenURL, "revocation_url": &a.RevocationURL,
		"issuer": &a.Issuer, "audience": &a.Audience,
		"public_key_file": &a.PublicKeyFile, "hs256_secret_file": &a.HS256SecretFile,
		"identity_key": &a.IdentityKey, "identity_key_file": &a.IdentityKeyFile,
	}[opt]
}

func hasPlaceholder(v string) bool { return strings.Contains(v, "{") }

func oneArg(d *caddyfile.Dispenser) (string, error) {
	opt := d.Val()
	if !d.NextArg() {
		return "", d.Errf("%s needs a value", opt)
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.Errf("%s takes one value, got another: %q", opt, d.Val())
	}
	if v == "" {
		return "", d.Errf("%s must not be empty", opt)
	}
	return v, nil
}

func durationArg(d *caddyfile.Dispenser) (time.Duration, error) {
	opt := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, d.Errf("%s: %q is not a duration (e.g. 30s, 5m)", opt, v)
	}
	return dur, nil
}

// httpURLArg reads one http(s) URL; a value with placeholders is checked
// once they are replaced, at provisioning.
func httpURLArg(d *caddyfile.Dispenser) (string, error) {
	opt := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return "", err
	}
	if !hasPlaceholder(v) {
		if err := checkHTTPURL(v); err != nil {
			return "", d.Errf("%s: %v", opt, err)
		}
	}
	return v, nil
}

// feedMaxAgeArg reads a feed's max age: a duration, or off (0).
func feedMaxAgeArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	opt := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	var dur time.Duration
	if v != "off" && v != "0" {
		if dur, err = caddy.ParseDuration(v); err != nil {
			return 0, d.Errf("%s: %q is not a duration (e.g. 1m) or off", opt, v)
		}
	}
	if err := checkFeedMaxAge(opt, dur); err != nil {
		return 0, d.Err(err.Error())
	}
	return caddy.Duration(dur), nil
}

func intArg(d *caddyfile.Dispenser, lo, hi int) (int, error) {
	opt := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, d.Errf("%s must be a whole number between %d and %d, got %q", opt, lo, hi, v)
	}
	return n, nil
}

// flagArg reads an optional on/off (or true/false); no value means def.
func flagArg(d *caddyfile.Dispenser, def bool) (bool, error) {
	opt := d.Val()
	if !d.NextArg() {
		return def, nil
	}
	v := d.Val()
	if d.NextArg() {
		return false, d.Errf("%s takes at most one value (on or off)", opt)
	}
	switch strings.ToLower(v) {
	case "on", "true", "yes":
		return true, nil
	case "off", "false", "no":
		return false, nil
	}
	return false, d.Errf("%s must be on or off, got %q", opt, v)
}
