// Package taxiway is what `xcaddy build --with github.com/taxiway/taxiway=.`
// imports: it registers the taxii_auth Caddy module. The services live in
// taxiicore and tokenservice; their binary is cmd/taxiway.
package taxiway

import _ "github.com/taxiway/taxiway/caddymodule"
