// Command gateway is Caddy with Taxiway's auth module: the same binary that
// `xcaddy build --with github.com/taxiway/taxiway=.` produces.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/taxiway/taxiway"
)

func main() {
	caddycmd.Main()
}
