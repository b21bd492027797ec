package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
)

// Source is a PostgreSQL source database.
type Source struct {
	pool *pgxpool.Pool
	url  string
	log  *slog.Logger
	// ignoredEncoding warns once that a run's source encoding does not
	// apply to this database (only SQL_ASCII text needs one).
	ignoredEncoding sync.Once
}

var _ source.Source = (*Source)(nil)

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Open connects to a PostgreSQL source; maxConns bounds concurrent reads.
// log receives the warnings of the invalid-text policy (nil: slog.Default()).
func Open(ctx context.Context, connURL string, maxConns int32, log *slog.Logger) (*Source, error) {
	pool, err := pgutil.Pool(ctx, connURL, "caravan-source", maxConns)
	if err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Source{pool: pool, url: connURL, log: log}, nil
}

// Kind implements source.Source.
func (s *Source) Kind() string { return "postgres" }

// DefaultNames keeps PostgreSQL names as they are.
func (s *Source) DefaultNames() schema.NamePolicy {
	return schema.NamePolicy{Case: schema.CasePreserve}
}

// Close implements source.Source.
func (s *Source) Close() error { s.pool.Close(); return nil }

// Discover reads the catalog in one repeatable-read transaction, so the
// model is one consistent picture even while DDL happens elsewhere.
func (s *Source) Discover(ctx context.Context, filter schema.Filter) (*schema.Database, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	defer tx.Rollback(ctx)

	db := &schema.Database{}
	tables, byOID, all, err := discoverTables(ctx, tx, filter, db)
	if err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	db.Tables = tables
	db.ParentsFirst()
	if err := discoverSizes(ctx, tx, byOID); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	if err := discoverSchemas(ctx, tx, filter, db); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	// A SQL_ASCII source's text goes through the run's text policy, which
	// reads COPY text: its tables stay text.
	sqlASCIISource := tx.Conn().PgConn().ParameterStatus("server_encoding") == sqlASCII
	userTypes, err := discoverColumns(ctx, tx, byOID, !sqlASCIISource)
	if err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	if err := discoverConstraints(ctx, tx, byOID); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	if err := discoverIndexes(ctx, tx, byOID); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	if err := discoverTypes(ctx, tx, userTypes, db); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	if err := discoverExtensions(ctx, tx, db); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	if err := discoverSequences(ctx, tx, db); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	if sqlASCIISource {
		db.Warnings = append(db.Warnings, "the source database is SQL_ASCII, which stores text unchecked: text is checked as it is read, and "+
			"text that is not UTF-8 fails its chunk unless the run names its encoding (--source-encoding) or replaces it (--invalid-text replace)")
	}
	// Definitions are printed with every name qualified, whatever the
	// target session's search_path.
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	if err := discoverObjects(ctx, tx, db, byOID, all); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	return db, nil
}

// Snapshot exports a snapshot from a transaction that stays open until
// Release: every extractor and the planner import it, so the whole run reads
// one point in time however many connections and machines take part.
func (s *Source) Snapshot(ctx context.Context) (*source.Snapshot, error) {
	conn, err := pgutil.Conn(ctx, s.url, "caravan-snapshot")
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	var id string
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err == nil {
		err = conn.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&id)
	}
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("snapshot: export: %w", err)
	}
	release := func(ctx context.Context) error {
		return conn.Close(ctx)
	}
	return &source.Snapshot{ID: id, Note: "one exported snapshot (" + id + ") shared by every reader", Release: release}, nil
}

// Consistency implements source.Consistency.
func (s *Source) Consistency() string {
	return "one exported snapshot shared by every reader: the whole run reads one point in time"
}

// readTx opens a read-only transaction in the run's snapshot.
func (s *Source) readTx(ctx context.Context, snapshot string) (pgx.Tx, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	if snapshot != "" {
		// SET TRANSACTION SNAPSHOT takes no parameters; the id is PostgreSQL's
		// own output, quoted as a literal all the same.
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+schema.QuoteLiteral(snapshot)); err != nil {
			tx.Rollback(ctx)
			return nil, importFailed(snapshot, err)
		}
	}
	return tx, nil
}
