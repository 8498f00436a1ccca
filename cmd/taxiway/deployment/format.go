package deployment

// The sync YAML file format. This package owns it: the field comments here
// are its documentation, and the domain packages see only their own types
// (taxiicore.Catalog, tokenservice.AccountState).
//
//	discovery: {title: Taxiway, default: api1}
//	api_roots:
//	  - name: api1
//	    title: Demo API root
//	    collections:
//	      - id: edaca48c-eae6-47e0-82b3-18a87ff3692f
//	        title: Demo collection
//	        grants:
//	          - {to: "user:test", read: true, write: true}
//	accounts:
//	  - username: alice
//	    password_hash: "$argon2id$v=19$m=65536,t=3,p=1$..."
//	    groups: [analysts]
//	  - username: feed-bot
//	    password_file: secrets/feed-bot.password   # relative to the YAML's folder
//	fronted:                                       # collections of other TAXII servers
//	  - backend: legacy                            # taxii_policy's backend option
//	    api_roots:
//	      - path: /api1/
//	        collections:
//	          - id: 365fed99-08fa-fdcd-a1b3-fb247eb41d01
//	            alias: shared-iocs
//	            grants:
//	              - {to: "group:partners", read: true}

// File is the whole declarative file.
type File struct {
	// Discovery sets the /taxii2/ resource. When left out, whatever is
	// stored stays (title "Taxiway" if never set).
	Discovery *DiscoveryEntry `yaml:"discovery,omitempty"`
	// APIRoots lists the API roots with their collections.
	APIRoots []RootEntry `yaml:"api_roots"`
	// Accounts of the token service. Passwords appear only as hashes or as
	// files holding them, never in plain text here.
	Accounts []AccountEntry `yaml:"accounts"`
	// Fronted lists TAXII servers behind the gateway (not Taxiway's core)
	// whose collections the gateways' taxii_policy guards, with the same
	// grants as the core's collections.
	Fronted []FrontedEntry `yaml:"fronted,omitempty"`

	// dir resolves password_file paths relative to the file itself.
	dir string
}

// DiscoveryEntry is the discovery resource.
type DiscoveryEntry struct {
	// Title is required.
	Title       string `yaml:"title"`
	Description string `yaml:"description,omitempty"`
	Contact     string `yaml:"contact,omitempty"`
	// Default names the default API root; it must be one of api_roots.
	Default string `yaml:"default,omitempty"`
	// Public lets callers without credentials read it (with the gateway's
	// anonymous option on).
	Public bool `yaml:"public,omitempty"`
}

// RootEntry is one API root.
type RootEntry struct {
	// Name is the path segment: /<name>/.
	Name        string `yaml:"name"`
	Title       string `yaml:"title"`
	Description string `yaml:"description,omitempty"`
	// MaxContentLength is the largest accepted request body in bytes
	// (default 10485760).
	MaxContentLength int64 `yaml:"max_content_length,omitempty"`
	// Public lets callers without credentials read the API root and its
	// collection list (with the gateway's anonymous option on); which
	// collections they see is up to grants to anonymous.
	Public      bool              `yaml:"public,omitempty"`
	Collections []CollectionEntry `yaml:"collections,omitempty"`
}

// CollectionEntry is one collection of an API root.
type CollectionEntry struct {
	// ID is the collection's UUIDv4 (or, for a collection imported from
	// another server, the UUID it kept); it is required so that syncing
	// again updates the same collection.
	ID          string       `yaml:"id"`
	Title       string       `yaml:"title"`
	Description string       `yaml:"description,omitempty"`
	Alias       string       `yaml:"alias,omitempty"`
	Grants      []GrantEntry `yaml:"grants,omitempty"`
}

// GrantEntry gives one principal access to the collection.
type GrantEntry struct {
	// To is user:<name>, group:<name>, authenticated or anonymous (write
	// to anonymous only when asked for explicitly).
	To    string `yaml:"to"`
	Read  bool   `yaml:"read"`
	Write bool   `yaml:"write"`
}

// AccountEntry is one account of the token service.
type AccountEntry struct {
	// Username is the login name (no colon, no control characters).
	Username string `yaml:"username"`
	// PasswordHash is an argon2id PHC string (`taxiway account hash`), a
	// bcrypt hash, or a hash imported from OpenTAXII (Werkzeug pbkdf2: or
	// scrypt:).
	PasswordHash string `yaml:"password_hash,omitempty"`
	// PasswordFile names a file holding the password (one trailing newline
	// is ignored), relative to the YAML file's folder. It is hashed with
	// argon2id; an account whose stored hash still verifies the password
	// is left unchanged. Give exactly one of password_hash and
	// password_file.
	PasswordFile string `yaml:"password_file,omitempty"`
	// Groups are the account's groups, carried in its tokens.
	Groups []string `yaml:"groups,omitempty"`
	// Disabled refuses the account tokens while keeping it.
	Disabled bool `yaml:"disabled,omitempty"`
}

// FrontedEntry is one TAXII server behind the gateway.
type FrontedEntry struct {
	// Backend is the name taxii_policy's backend option selects.
	Backend string `yaml:"backend"`
	// PublicDiscovery lets callers without credentials read its discovery
	// resource (with taxii_auth's anonymous option on).
	PublicDiscovery bool               `yaml:"public_discovery,omitempty"`
	APIRoots        []FrontedRootEntry `yaml:"api_roots,omitempty"`
}

// FrontedRootEntry is an API root of a fronted server.
type FrontedRootEntry struct {
	// Path is the API root's path as the server sees it, e.g. /api1/.
	Path string `yaml:"path"`
	// Public lets callers without credentials read the API root and its
	// collection list, which shows them only collections granted to
	// anonymous.
	Public      bool                     `yaml:"public,omitempty"`
	Collections []FrontedCollectionEntry `yaml:"collections,omitempty"`
}

// FrontedCollectionEntry is a collection of a fronted server. Collections
// not listed here are hidden from everyone but the admin group.
type FrontedCollectionEntry struct {
	// ID is the collection's id on the server (a UUID).
	ID string `yaml:"id"`
	// Alias is the server's alias of the collection, if it has one, so
	// that requests by alias are judged as requests by id.
	Alias  string       `yaml:"alias,omitempty"`
	Grants []GrantEntry `yaml:"grants,omitempty"`
}
