package mssql

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"

	mssqldb "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
)

// Policy says what to do with a value PostgreSQL cannot store as is.
type Policy string

const (
	// PolicyFail stops the chunk with an error naming table, column and key.
	PolicyFail Policy = "fail"
	// PolicyStrip removes NUL characters (text cannot hold them) and warns.
	PolicyStrip Policy = "strip"
	// PolicyReplace turns unpaired UTF-16 surrogates into U+FFFD and warns.
	PolicyReplace Policy = "replace"
)

// Options configure the source. The zero value is usable.
type Options struct {
	// NUL is the policy for NUL characters in strings: PolicyFail (the
	// default: values stay exact unless the user says otherwise) or
	// PolicyStrip.
	NUL Policy
	// Surrogates is the policy for unpaired UTF-16 surrogates in nchar,
	// nvarchar and ntext: PolicyFail (default) or PolicyReplace.
	Surrogates Policy
	// TypeOverrides maps "schema.table.column" (source names) to a
	// PostgreSQL type; docs/TYPES.md lists the conversions caravan can do.
	// Extractors must be given the same overrides as the coordinator: the
	// target type decides the text of each value.
	TypeOverrides map[string]string
	// PostGIS makes geography and geometry PostGIS geometry instead of WKT
	// text. Set it when the target has the postgis extension.
	PostGIS bool
	// Computed is ComputedCopy (the default: a computed column's values
	// are copied into a plain column) or ComputedGenerated (the simple
	// expressions become GENERATED ALWAYS AS ... STORED; computed.go).
	Computed string
	// PreserveCase keeps identifiers' case (DefaultNames); the default is
	// lower case.
	PreserveCase bool
	// DatabaseSnapshot makes Snapshot create a database snapshot (CREATE
	// DATABASE ... AS SNAPSHOT OF): one point in time for every chunk.
	DatabaseSnapshot bool
	// PageRows is the keyset page size of Read; 0 means the dialect's
	// default (dialect.pageRows).
	PageRows int
	// MaxConns bounds open connections; 0 means no limit.
	MaxConns int
	// Readers is how many chunks will be read at once. Open opens all but
	// one of their connections in the background (warmConns), so logins
	// and the engine's first-statement costs overlap discovery and
	// planning instead of delaying the first chunks.
	Readers int
	// Logger receives value-policy warnings; nil means slog.Default().
	Logger *slog.Logger
}

// Source is a SQL Server source database.
type Source struct {
	db       *sql.DB
	opts     Options
	database string // DB_NAME() of the connection
	d        dialect
	siOn     bool   // ALLOW_SNAPSHOT_ISOLATION
	dsn      string // redacted, for messages
	secrets  []string
	log      *slog.Logger
	stopWarm context.CancelFunc
	warming  sync.WaitGroup
}

var _ source.Source = (*Source)(nil)

// Open connects to SQL Server. url is any go-mssqldb connection string;
// it is never logged or put into an error with its password.
func Open(ctx context.Context, url string, opts Options) (*Source, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	secrets := secretsOf(url)
	redacted := redactURL(url)
	cfg, err := msdsn.Parse(url)
	if err != nil {
		return nil, fmt.Errorf("mssql source %s: %w", redacted, scrub(err, secrets))
	}
	// Values are decoded assuming go-mssqldb's defaults: GUIDs in wire
	// order (guid.go) and date/time wall clocks built in UTC, where no
	// daylight-saving gap can move them (values.go). A connection string
	// asking otherwise is overruled rather than half-honoured.
	cfg.Encoding.GuidConversion = false
	cfg.Encoding.Timezone = time.UTC
	if cfg.AppName == "" {
		cfg.AppName = "caravan"
	}
	db := sql.OpenDB(mssqldb.NewConnectorConfig(cfg))
	if opts.MaxConns > 0 {
		db.SetMaxOpenConns(opts.MaxConns)
		db.SetMaxIdleConns(opts.MaxConns) // keep warmed connections
	}
	s := &Source{db: db, opts: opts, dsn: redacted, secrets: secrets, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	// the readers' connections are opened first, so that none of them is
	// the one the statements below leave idle for the caller
	s.warmConns(opts.Readers - 1)
	if s.d, err = detectDialect(ctx, db); err != nil {
		s.Close()
		return nil, fmt.Errorf("mssql source %s: %w", redacted, scrub(err, secrets))
	}
	var state int
	if err := db.QueryRowContext(ctx, snapshotStateSQL).Scan(&state, &s.database); err != nil {
		s.Close()
		return nil, fmt.Errorf("mssql source %s: %w", redacted, scrub(err, secrets))
	}
	s.siOn = state == 1
	s.log.Info("mssql source", "engine", s.d.String(), "database", s.database)
	return s, nil
}

// warmConns opens n more connections in the background and runs
// dialect.warmSQL on each, then leaves them idle in the pool for Read.
// Open and then the caller go on detecting, discovering and planning on
// another connection meanwhile. A failure, or a warmed connection taken
// by the caller first, only means a reader opens its connection itself.
func (s *Source) warmConns(n int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	s.stopWarm = cancel
	if n <= 0 {
		return
	}
	s.warming.Add(1)
	go func() {
		defer s.warming.Done()
		conns := make([]*sql.Conn, n)
		var wg sync.WaitGroup
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := s.db.Conn(ctx)
				if err != nil {
					return
				}
				conns[i] = c // held until all are open: each warms its own
				if _, err := c.ExecContext(ctx, warmSQL, int64(0), int64(1)); err != nil {
					s.log.Debug("mssql source: warming a connection", "err", scrub(err, s.secrets))
				}
			}()
		}
		wg.Wait()
		for _, c := range conns {
			if c != nil {
				c.Close() // back to the pool
			}
		}
	}()
}

func (o Options) check() error {
	switch o.NUL {
	case "", PolicyFail, PolicyStrip:
	default:
		return fmt.Errorf("mssql source: NUL policy %q: want %q or %q", o.NUL, PolicyFail, PolicyStrip)
	}
	switch o.Surrogates {
	case "", PolicyFail, PolicyReplace:
	default:
		return fmt.Errorf("mssql source: surrogate policy %q: want %q or %q", o.Surrogates, PolicyFail, PolicyReplace)
	}
	switch o.Computed {
	case "", ComputedCopy, ComputedGenerated:
	default:
		return fmt.Errorf("mssql source: computed columns %q: want %q or %q", o.Computed, ComputedCopy, ComputedGenerated)
	}
	for k, v := range o.TypeOverrides {
		if _, err := parsePGType(v); err != nil {
			return fmt.Errorf("mssql source: type override %s: %w", k, err)
		}
	}
	return nil
}

// Engine names the T-SQL engine caravan recognised: SQL Server, or
// Babelfish for PostgreSQL (dialect.go holds every difference).
func (s *Source) Engine() string { return s.d.String() }

// Kind implements source.Source.
func (s *Source) Kind() string { return "mssql" }

// DefaultNames lower-cases identifiers (PostgreSQL folds unquoted names to
// lower case, so lower-case names need no quoting in users' SQL) and maps
// dbo, SQL Server's default schema, to public, PostgreSQL's.
func (s *Source) DefaultNames() schema.NamePolicy {
	p := schema.NamePolicy{Case: schema.CaseLower, SchemaMap: map[string]string{"dbo": "public"}}
	if s != nil && s.opts.PreserveCase {
		p.Case = schema.CasePreserve
	}
	return p
}

// Discover implements source.Source. Expressions it translates (checks,
// index filters) name target columns under DefaultNames.
func (s *Source) Discover(ctx context.Context, filter schema.Filter) (*schema.Database, error) {
	rows, err := readCatalog(ctx, s.db, s.d)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", s.database, scrub(err, s.secrets))
	}
	filter = s.d.filter(filter)
	db, err := buildModel(rows, filter, s.opts, s.DefaultNames())
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", s.database, err)
	}
	db.Unmigrated = append(db.Unmigrated, inventory(rows, filter)...)
	// SQL text is translated again once the run's names are known
	db.Translate = func(db *schema.Database) {
		s.expressionsUnder(rows, filter, db)
		sequenceDefaults(rows, db)
		translateViews(rows, s.d, db)
	}
	db.Unmigrated = append(db.Unmigrated, migrateSequences(rows, filter, db)...)
	for k := range s.opts.TypeOverrides {
		if !overrideUsed(db, k) {
			db.Warnings = append(db.Warnings, fmt.Sprintf("type override %s matches no discovered column", k))
		}
	}
	return db, nil
}

// expressionsUnder translates the checks, index filters and generated
// columns again under the run's name policy: Discover names their columns
// under DefaultNames, and a run may choose another case (--name-case).
// The same catalog rows built the model once, so they build it again.
func (s *Source) expressionsUnder(rows *catalogRows, filter schema.Filter, db *schema.Database) {
	if db.Policy.Case == s.DefaultNames().Case {
		return
	}
	again, err := buildModel(rows, filter, s.opts, db.Policy)
	if err != nil {
		return
	}
	for _, t := range db.Tables {
		a := again.Table(t.Source)
		if a == nil || len(a.Indexes) != len(t.Indexes) {
			continue
		}
		t.Checks = a.Checks
		for i, ix := range t.Indexes {
			ix.Where = a.Indexes[i].Where
		}
		for _, c := range t.Columns {
			if ac := a.Column(c.Name); ac != nil {
				c.Generated = ac.Generated
			}
		}
	}
}

func overrideUsed(db *schema.Database, key string) bool {
	for _, t := range db.Tables {
		for _, c := range t.Columns {
			if t.Source.Schema+"."+t.Source.Name+"."+c.Name == key {
				return true
			}
		}
	}
	return false
}

// Close implements source.Source.
func (s *Source) Close() error {
	if s.stopWarm != nil {
		s.stopWarm()
		s.warming.Wait()
	}
	return s.db.Close()
}
