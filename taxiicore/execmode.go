package taxiicore

// jsonParam passes encoded JSON as a query parameter for a json column, nil
// as NULL. A string, not []byte: in pgx's exec mode (what pgbouncer's
// transaction pooling needs) parameters go untyped in text format, and a
// []byte would be written as bytea's \x... text, which is not JSON.
func jsonParam(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}
