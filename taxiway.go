// Package taxiway is what `xcaddy build --with github.com/taxiway/taxiway=.`
// imports: it registers the taxii_auth Caddy module, taxii_client_body
// (client body errors are the client's: 400, not 502) and taxii_errors (the
// gateway's own errors get TAXII error bodies). The services live in
// taxiicore and tokenservice; their binary is cmd/taxiway.
package taxiway

import (
	_ "github.com/taxiway/taxiway/caddymodule"
	_ "github.com/taxiway/taxiway/caddymodule/clientbody"
	_ "github.com/taxiway/taxiway/caddymodule/gatewayerrors"
)
