package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
)

// ChunkState is one row of caravan.chunks.
type ChunkState struct {
	Table   string
	Chunk   int
	Attempt int
	Range   string
	Lo, Hi  []string // nil for an open end
	EstRows int64
	Status  string
	Batches *int
	Rows    int64
	Bytes   int64
	Digest  string
	Parts   *proto.Parts // the digest cut by key value; nil for none
	Error   string
}

// AddChunks records a table's planned chunks.
func AddChunks(ctx context.Context, pool *pgxpool.Pool, run string, chunks []ChunkState) error {
	batch := &pgx.Batch{}
	for _, c := range chunks {
		batch.Queue(`INSERT INTO caravan.chunks (run_id, table_id, chunk, attempt, range_kind, lo, hi, est_rows, status)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			run, c.Table, c.Chunk, c.Attempt, c.Range, c.Lo, c.Hi, c.EstRows, StatusPending)
	}
	if err := pool.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("record chunks: %w", err)
	}
	return nil
}

// MarkPublished stamps the chunks of a table as published.
func MarkPublished(ctx context.Context, pool *pgxpool.Pool, run, table string, chunk int) error {
	_, err := pool.Exec(ctx, `UPDATE caravan.chunks SET published_at = now() WHERE run_id = $1 AND table_id = $2 AND chunk = $3`, run, table, chunk)
	if err != nil {
		return fmt.Errorf("chunk %s/%d published: %w", table, chunk, err)
	}
	return nil
}

// MarkExtracted records what an extractor read for a chunk attempt. A
// report for an older attempt changes nothing. A chunk already failed (a
// batch of it rejected before this report came) keeps its status but gets
// what was read, once: the table's source rows are then its real rows, not
// the rows of its loaded chunks only.
func MarkExtracted(ctx context.Context, pool *pgxpool.Pool, run, table string, chunk, attempt, batches int, rows, bytes int64, digest string, readAt time.Time) error {
	ev := proto.ChunkExtracted{Table: table, Chunk: chunk, Attempt: attempt, Batches: batches, Rows: rows, Bytes: bytes, Digest: digest}
	return MarkExtractedBy(ctx, pool, run, &ev, readAt, time.Time{})
}

// MarkExtractedBy is MarkExtracted from an extractor's report, with when
// the read ended (zero: now), the extractor process that read the chunk
// and the chunk's parts.
func MarkExtractedBy(ctx context.Context, pool *pgxpool.Pool, run string, ev *proto.ChunkExtracted, readAt, doneAt time.Time) error {
	var done *time.Time
	if !doneAt.IsZero() {
		done = &doneAt
	}
	parts, err := marshalParts(ev.Parts)
	if err != nil {
		return fmt.Errorf("chunk %s/%d extracted: %w", ev.Table, ev.Chunk, err)
	}
	_, err = pool.Exec(ctx, `UPDATE caravan.chunks SET status = CASE WHEN status = 'pending' THEN 'extracted' ELSE status END,
			batches = $5, rows = $6, bytes = $7, digest = $8, read_at = $9, extracted_at = coalesce($10, now()), extractor = nullif($11, ''),
			parts = $12
		WHERE run_id = $1 AND table_id = $2 AND chunk = $3 AND attempt = $4
		  AND (status = 'pending' OR (status = 'failed' AND rows IS NULL))`,
		run, ev.Table, ev.Chunk, ev.Attempt, ev.Batches, ev.Rows, ev.Bytes, ev.Digest, readAt, done, ev.Worker, parts)
	if err != nil {
		return fmt.Errorf("chunk %s/%d extracted: %w", ev.Table, ev.Chunk, err)
	}
	return nil
}

// marshalParts is a chunk's parts as caravan.chunks keeps them: msgpack,
// NULL for none.
func marshalParts(p *proto.Parts) ([]byte, error) {
	if p == nil {
		return nil, nil
	}
	return proto.Marshal(p)
}

// unmarshalParts reads back what marshalParts kept.
func unmarshalParts(b []byte) (*proto.Parts, error) {
	if b == nil {
		return nil, nil
	}
	p := new(proto.Parts)
	if err := proto.Unmarshal(b, p); err != nil {
		return nil, err
	}
	if len(p.Sums) == 0 || len(p.Rows) != len(p.Sums) || len(p.Bounds) != len(p.Sums)-1 {
		return nil, fmt.Errorf("parts of %d sums, %d counts, %d bounds", len(p.Sums), len(p.Rows), len(p.Bounds))
	}
	return p, nil
}

// CompletedChunk is a chunk CompleteChunks found fully loaded.
type CompletedChunk struct {
	Table string
	Chunk int
	Rows  int64
	Bytes int64
}

// CompleteChunks marks loaded every extracted chunk whose ledger holds seq
// 0..n-1 of its attempt, n being the batch count the extractor reported.
// Progress lives in the ledger, so this works after any restart.
func CompleteChunks(ctx context.Context, pool *pgxpool.Pool, run string) ([]CompletedChunk, error) {
	rows, err := pool.Query(ctx, `UPDATE caravan.chunks c SET status = 'loaded', loaded_at = now()
		WHERE c.run_id = $1 AND c.status = 'extracted'
		  AND c.batches = (SELECT count(*) FROM caravan.ledger l
		                    WHERE l.run_id = c.run_id AND l.table_id = c.table_id AND l.chunk = c.chunk
		                      AND l.attempt = c.attempt AND l.seq < c.batches)
		RETURNING table_id, chunk, rows, bytes`, run)
	if err != nil {
		return nil, fmt.Errorf("complete chunks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CompletedChunk, error) {
		var c CompletedChunk
		err := r.Scan(&c.Table, &c.Chunk, &c.Rows, &c.Bytes)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("complete chunks: %w", err)
	}
	return out, nil
}

// Chunks lists a run's chunks (of one table when table is not "").
func Chunks(ctx context.Context, pool *pgxpool.Pool, run, table string) ([]ChunkState, error) {
	rows, err := pool.Query(ctx, `SELECT table_id, chunk, attempt, range_kind, lo, hi, est_rows, status, batches,
			coalesce(rows, 0), coalesce(bytes, 0), coalesce(digest, ''), coalesce(error, ''), parts
		FROM caravan.chunks WHERE run_id = $1 AND ($2 = '' OR table_id = $2) ORDER BY table_id, chunk`, run, table)
	if err != nil {
		return nil, fmt.Errorf("list chunks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChunkState, error) {
		var c ChunkState
		var parts []byte
		if err := r.Scan(&c.Table, &c.Chunk, &c.Attempt, &c.Range, &c.Lo, &c.Hi, &c.EstRows, &c.Status, &c.Batches, &c.Rows, &c.Bytes, &c.Digest, &c.Error, &parts); err != nil {
			return c, err
		}
		var err error
		if c.Parts, err = unmarshalParts(parts); err != nil {
			return c, fmt.Errorf("chunk %s/%d: %w", c.Table, c.Chunk, err)
		}
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list chunks: %w", err)
	}
	return out, nil
}

// ChunkCount is how many of a table's chunks are done.
type ChunkCount struct {
	Table                     string
	Chunks                    int
	Extracted, Loaded, Failed int
}

// ChunkCounts counts each table's chunks by outcome. It reads only the
// chunks table (a row per chunk), never the ledger, so the coordinator can
// ask after every event however large the run.
func ChunkCounts(ctx context.Context, pool *pgxpool.Pool, run string) ([]ChunkCount, error) {
	rows, err := pool.Query(ctx, `SELECT table_id, count(*), count(*) FILTER (WHERE status = 'extracted'),
			count(*) FILTER (WHERE status = 'loaded'), count(*) FILTER (WHERE status = 'failed')
		FROM caravan.chunks WHERE run_id = $1 GROUP BY table_id ORDER BY table_id`, run)
	if err != nil {
		return nil, fmt.Errorf("count chunks of run %s: %w", run, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChunkCount, error) {
		var c ChunkCount
		err := r.Scan(&c.Table, &c.Chunks, &c.Extracted, &c.Loaded, &c.Failed)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("count chunks of run %s: %w", run, err)
	}
	return out, nil
}

// UnsettledBatches counts the batches of a table's failed chunks that are
// neither loaded (a ledger row) nor rejected (a rejects row) in the chunk's
// current attempt: batches a rejected one left in flight. Chunks whose
// extraction never ended (no batch count) are not counted. The coordinator
// closes a failed table once this is 0, so the table holds every row of
// its failed chunks but the rejected ones, whatever the timing.
func UnsettledBatches(ctx context.Context, pool *pgxpool.Pool, run, table string) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, `SELECT coalesce(sum(greatest(c.batches
			- (SELECT count(*) FROM caravan.ledger l
				WHERE l.run_id = c.run_id AND l.table_id = c.table_id AND l.chunk = c.chunk AND l.attempt = c.attempt)
			- (SELECT count(DISTINCT r.seq) FROM caravan.rejects r
				WHERE r.run_id = c.run_id AND r.table_id = c.table_id AND r.chunk = c.chunk AND r.attempt = c.attempt), 0)), 0)
		FROM caravan.chunks c
		WHERE c.run_id = $1 AND c.table_id = $2 AND c.status = 'failed' AND c.batches IS NOT NULL`, run, table).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("batches in flight of the failed chunks of %s: %w", table, err)
	}
	return n, nil
}

// TableProgress is what the ledger says about one table.
type TableProgress struct {
	Table        string
	Status       string
	EstRows      int64
	Chunks       int
	ChunksLoaded int
	ChunksFailed int
	Rows         int64 // committed rows
	Bytes        int64
	Batches      int64 // committed batches
	SourceRows   int64 // rows the extractors read (reported per chunk)
	Started      time.Time
	FirstRead    *time.Time // when the table's first chunk was read (or published)
	FirstLoad    *time.Time // first and last batch commits
	LastLoad     *time.Time
	Error        string
}

// Progress reads per-table progress from the ledger and the chunks.
func Progress(ctx context.Context, pool *pgxpool.Pool, run string) ([]TableProgress, error) {
	rows, err := pool.Query(ctx, `SELECT t.table_id, t.status, t.est_rows, t.chunks,
			coalesce(c.loaded, 0), coalesce(c.failed, 0), coalesce(l.rows, 0), coalesce(l.bytes, 0), coalesce(l.batches, 0), coalesce(c.rows, 0),
			t.started_at, c.first_read, l.first_load, l.last_load, coalesce(t.error, '')
		FROM caravan.tables t
		LEFT JOIN (SELECT table_id, sum(rows) AS rows, sum(bytes) AS bytes, count(*) AS batches, min(loaded_at) AS first_load, max(loaded_at) AS last_load
		           FROM caravan.ledger WHERE run_id = $1 GROUP BY table_id) l
		  ON l.table_id = t.table_id
		LEFT JOIN (SELECT table_id, count(*) FILTER (WHERE status = 'loaded') AS loaded, count(*) FILTER (WHERE status = 'failed') AS failed,
		                  sum(rows)::bigint AS rows, min(coalesce(read_at, published_at)) AS first_read
		           FROM caravan.chunks WHERE run_id = $1 GROUP BY table_id) c
		  ON c.table_id = t.table_id
		WHERE t.run_id = $1 ORDER BY t.table_id`, run)
	if err != nil {
		return nil, fmt.Errorf("progress of run %s: %w", run, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TableProgress, error) {
		var p TableProgress
		err := r.Scan(&p.Table, &p.Status, &p.EstRows, &p.Chunks, &p.ChunksLoaded, &p.ChunksFailed, &p.Rows, &p.Bytes, &p.Batches, &p.SourceRows,
			&p.Started, &p.FirstRead, &p.FirstLoad, &p.LastLoad, &p.Error)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("progress of run %s: %w", run, err)
	}
	return out, nil
}

// FailChunk marks a chunk attempt failed.
func FailChunk(ctx context.Context, pool *pgxpool.Pool, run, table string, chunk, attempt int, errText string) error {
	_, err := pool.Exec(ctx, `UPDATE caravan.chunks SET status = 'failed', error = $5
		WHERE run_id = $1 AND table_id = $2 AND chunk = $3 AND attempt = $4`, run, table, chunk, attempt, errText)
	if err != nil {
		return fmt.Errorf("fail chunk %s/%d: %w", table, chunk, err)
	}
	return nil
}

// RestartChunk moves an unfinished chunk of a table whose chunks the target
// can re-select to a new attempt and removes what its earlier attempts
// loaded: the target rows in the chunk's range (where says which, with
// args), their ledger rows and rejects. FOR UPDATE waits
// for loaders committing a batch of the chunk (they hold FOR KEY SHARE)
// and makes every later batch of an old attempt stale.
func RestartChunk(ctx context.Context, pool *pgxpool.Pool, run string, t schema.Name, table string, chunk, attempt int, where string, args ...any) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("restart chunk %s/%d: %w", table, chunk, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM caravan.chunks WHERE run_id = $1 AND table_id = $2 AND chunk = $3 FOR UPDATE`, run, table, chunk); err != nil {
		return fmt.Errorf("restart chunk %s/%d: %w", table, chunk, err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM "+schema.QuoteOnly(t)+" WHERE "+where, args...); err != nil {
		return fmt.Errorf("restart chunk %s/%d: remove earlier rows: %w", table, chunk, err)
	}
	for _, q := range []string{
		`DELETE FROM caravan.ledger WHERE run_id = $1 AND table_id = $2 AND chunk = $3`,
		`DELETE FROM caravan.rejects WHERE run_id = $1 AND table_id = $2 AND chunk = $3`,
	} {
		if _, err := tx.Exec(ctx, q, run, table, chunk); err != nil {
			return fmt.Errorf("restart chunk %s/%d: %w", table, chunk, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE caravan.chunks SET attempt = $4, status = 'pending', batches = NULL, rows = NULL,
			bytes = NULL, digest = NULL, error = NULL, published_at = NULL, read_at = NULL, extracted_at = NULL, loaded_at = NULL, extractor = NULL
		WHERE run_id = $1 AND table_id = $2 AND chunk = $3`, run, table, chunk, attempt); err != nil {
		return fmt.Errorf("restart chunk %s/%d: %w", table, chunk, err)
	}
	return tx.Commit(ctx)
}

// RestartTable gives a table whose chunks the target cannot re-select
// (keyless tables, SQL Server key orders) new attempts, in one transaction.
// When whole is set, or when any unfinished chunk already committed a
// batch, the table is emptied and every chunk starts over; otherwise only
// the unfinished chunks move on (they hold no rows). Every chunk row is
// locked FOR UPDATE first, before anything is looked at: that waits for
// the loaders committing a batch of the table (they hold FOR KEY SHARE) and
// holds back every later one until the new attempts are visible, so no
// batch of an old attempt can commit between the decision, the emptying
// and the attempt change. It says whether the table was emptied.
func RestartTable(ctx context.Context, pool *pgxpool.Pool, run string, t schema.Name, table string, whole bool) (bool, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("restart table %s: %w", table, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM caravan.chunks WHERE run_id = $1 AND table_id = $2 ORDER BY chunk FOR UPDATE`, run, table); err != nil {
		return false, fmt.Errorf("restart table %s: lock chunks: %w", table, err)
	}
	if !whole {
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM caravan.ledger l JOIN caravan.chunks c USING (run_id, table_id, chunk)
			WHERE l.run_id = $1 AND l.table_id = $2 AND c.status <> 'loaded')`, run, table).Scan(&whole)
		if err != nil {
			return false, fmt.Errorf("restart table %s: %w", table, err)
		}
	}
	if whole {
		// ONLY: an inheritance parent's children are tables of the run of
		// their own. A partitioned table holds no rows to remove (and
		// refuses TRUNCATE ONLY).
		var partitioned bool
		if err := tx.QueryRow(ctx, `SELECT relkind = 'p' FROM pg_class WHERE oid = $1::regclass`, schema.QuoteName(t)).Scan(&partitioned); err != nil {
			return false, fmt.Errorf("restart table %s: %w", table, err)
		}
		if !partitioned {
			if _, err := tx.Exec(ctx, "TRUNCATE "+schema.QuoteOnly(t)); err != nil {
				return false, fmt.Errorf("restart table %s: empty it: %w", table, err)
			}
		}
	}
	// $3: every chunk, or only those not loaded.
	for _, q := range []string{
		`DELETE FROM caravan.ledger l USING caravan.chunks c
		 WHERE l.run_id = $1 AND l.table_id = $2 AND c.run_id = l.run_id AND c.table_id = l.table_id AND c.chunk = l.chunk
		   AND ($3 OR c.status <> 'loaded')`,
		`DELETE FROM caravan.rejects r USING caravan.chunks c
		 WHERE r.run_id = $1 AND r.table_id = $2 AND c.run_id = r.run_id AND c.table_id = r.table_id AND c.chunk = r.chunk
		   AND ($3 OR c.status <> 'loaded')`,
		`UPDATE caravan.chunks SET attempt = attempt + 1, status = 'pending', batches = NULL, rows = NULL,
			bytes = NULL, digest = NULL, error = NULL, published_at = NULL, read_at = NULL, extracted_at = NULL, loaded_at = NULL, extractor = NULL
		 WHERE run_id = $1 AND table_id = $2 AND ($3 OR status <> 'loaded')`,
	} {
		if _, err := tx.Exec(ctx, q, run, table, whole); err != nil {
			return false, fmt.Errorf("restart table %s: %w", table, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("restart table %s: %w", table, err)
	}
	return whole, nil
}

// ChunkCopy is what a re-copy read for one chunk: the figures the
// extractor would have reported for it.
type ChunkCopy struct {
	Chunk  int
	Rows   int64
	Bytes  int64
	Digest string
	Parts  *proto.Parts // nil for none
	// Split, when set, cuts the chunk short at the end of what was copied.
	Split *ChunkSplit
}

// ChunkSplit cuts a key-range chunk short: from now on it ends at Hi, and a
// new chunk Rest of the same table holds the rest of its range, from Hi to
// where the chunk ended. Rest records no rows and no digest (no digest
// ever matches ""), so whatever reads it next compares it whole, against
// what the target holds: a sync interrupted after a split finds the
// remainder changed and brings it up to date. The plan's chunks partition
// the key space before and after, in one transaction.
type ChunkSplit struct {
	Hi   []string
	Rest int
}

// Replacement says which rows of a table a re-copy replaces.
type Replacement struct {
	Run    string
	Table  string // the table's id
	Target schema.Name
	Chunks []int    // the chunks replaced
	Cols   []string // the load columns, target names
	// Key holds the target's key columns; empty for a keyless table, which
	// is replaced whole (TRUNCATE).
	Key []string
	// Always holds the target's GENERATED ALWAYS identity columns that are
	// not key columns: PostgreSQL updates those only to DEFAULT, so the
	// update of a changed row lifts ALWAYS for its transaction.
	Always []string
	// Where selects the replaced rows of a keyed table (their key range, or
	// TRUE), with Args.
	Where string
	Args  []any
	// Narrow, when set, replaces Where and Args once the chunks are locked,
	// in the replacing transaction: it chooses the parts of a keyed chunk
	// that differ from what produce will write, so only those are copied.
	Narrow func(ctx context.Context, tx pgx.Tx) (Narrowed, error)
	// Written, when set, runs in the replacing transaction once the rows
	// are written, before the chunks are recorded: sync reads back the rows
	// it wrote there to prove the chunk's new content.
	Written func(ctx context.Context, tx pgx.Tx) error
	// Encoding is the row encoding produce writes ("" is COPY text); in
	// binary, produce writes tuples and the stream's header and trailer
	// are added here.
	Encoding string
}

// Narrowed is the part of a keyed table a re-copy replaces, as
// Replacement.Narrow chose it.
type Narrowed struct {
	Where string
	Args  []any
	// New says that no row produce writes has its key on the target (they
	// are all new there): the rows of Where are deleted and the new ones
	// copied straight into the table, with no merge through a temporary
	// table (whose joins cost seconds for a few hundred thousand rows).
	New bool
}

// ReplaceChunks re-copies chunks of a loaded table in one transaction, for
// `caravan sync`: it locks the chunks' rows FOR UPDATE, makes the target's
// rows in r.Where the rows produce writes, and records each chunk's new
// figures under a new attempt with one ledger row. Inserts, updates and
// deletes thus arrive together or not at all, and the recorded digest is
// always that of the rows on the target: a sync interrupted anywhere and
// run again compares against what is really there.
//
// A keyed table's rows are merged, not deleted and loaded again: the rows
// are copied into a temporary table, then rows whose key is gone are
// deleted, rows whose key remains and whose values differ are updated in
// place and new keys are inserted (r.Narrow may first restrict all that to
// the parts of a chunk that differ). A foreign key to the table then sees its keys stay, and only a
// key really gone can be refused (the caller retries once the referencing
// table is synced).
func ReplaceChunks(ctx context.Context, pool *pgxpool.Pool, r Replacement, produce func(ctx context.Context, w io.Writer) ([]ChunkCopy, error)) error {
	fail := func(err error) error { return fmt.Errorf("re-copy %s chunks %v: %w", r.Table, r.Chunks, err) }
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM caravan.chunks WHERE run_id = $1 AND table_id = $2 AND chunk = ANY($3) ORDER BY chunk FOR UPDATE`,
		r.Run, r.Table, r.Chunks); err != nil {
		return fail(fmt.Errorf("lock chunks: %w", err))
	}
	fresh := false
	if r.Narrow != nil && len(r.Key) > 0 {
		n, err := r.Narrow(ctx, tx)
		if err != nil {
			return fail(err)
		}
		r.Where, r.Args, fresh = n.Where, n.Args, n.New
	}
	into := proto.TableRef{Schema: r.Target.Schema, Name: r.Target.Name}
	switch {
	case len(r.Key) == 0:
		if _, err := tx.Exec(ctx, "TRUNCATE "+schema.QuoteOnly(r.Target)); err != nil {
			return fail(fmt.Errorf("empty the table: %w", err))
		}
	case fresh:
		// Parentheses: r.Where may be any predicate.
		if _, err := tx.Exec(ctx, "DELETE FROM "+schema.QuoteOnly(r.Target)+" WHERE ("+r.Where+")", r.Args...); err != nil {
			return fail(fmt.Errorf("delete the rows gone from the source: %w", err))
		}
	default:
		if _, err := tx.Exec(ctx, "CREATE TEMP TABLE caravan_sync (LIKE "+schema.QuoteName(r.Target)+") ON COMMIT DROP"); err != nil {
			return fail(err)
		}
		into = proto.TableRef{Schema: "pg_temp", Name: "caravan_sync"}
	}
	copied, err := copyProduced(ctx, tx, into, r.Encoding, r.Cols, produce)
	if err != nil {
		return fail(err)
	}
	if len(r.Key) > 0 && !fresh {
		if err := merge(ctx, tx, r); err != nil {
			return fail(err)
		}
	}
	if r.Written != nil {
		if err := r.Written(ctx, tx); err != nil {
			return fail(err)
		}
	}
	for _, q := range []string{
		`DELETE FROM caravan.ledger WHERE run_id = $1 AND table_id = $2 AND chunk = ANY($3)`,
		`DELETE FROM caravan.rejects WHERE run_id = $1 AND table_id = $2 AND chunk = ANY($3)`,
	} {
		if _, err := tx.Exec(ctx, q, r.Run, r.Table, r.Chunks); err != nil {
			return fail(err)
		}
	}
	for _, c := range copied {
		if c.Split != nil {
			if err := splitChunk(ctx, tx, r, c.Chunk, c.Split); err != nil {
				return fail(err)
			}
		}
		parts, err := marshalParts(c.Parts)
		if err != nil {
			return fail(fmt.Errorf("record chunk %d: %w", c.Chunk, err))
		}
		if _, err := tx.Exec(ctx, `WITH c AS (
				UPDATE caravan.chunks SET attempt = attempt + 1, status = 'loaded', batches = 1, rows = $4, bytes = $5, digest = $6,
					error = NULL, read_at = now(), extracted_at = now(), loaded_at = now(), extractor = NULL, parts = $7
				WHERE run_id = $1 AND table_id = $2 AND chunk = $3 RETURNING attempt)
			INSERT INTO caravan.ledger (run_id, table_id, chunk, attempt, seq, rows, bytes, digest)
			SELECT $1, $2, $3, attempt, 0, $4, $5, $6 FROM c`,
			r.Run, r.Table, c.Chunk, c.Rows, c.Bytes, c.Digest, parts); err != nil {
			return fail(fmt.Errorf("record chunk %d: %w", c.Chunk, err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(err)
	}
	return nil
}

// splitChunk records a ChunkSplit of chunk: the remainder as a chunk of its
// own, the chunk's range cut short, the table's planned chunks one more.
func splitChunk(ctx context.Context, tx pgx.Tx, r Replacement, chunk int, sp *ChunkSplit) error {
	tag, err := tx.Exec(ctx, `INSERT INTO caravan.chunks (run_id, table_id, chunk, attempt, range_kind, lo, hi, est_rows, status, batches, rows, bytes, digest, loaded_at)
		SELECT run_id, table_id, $4, 0, range_kind, $5, hi, 0, $6, 0, 0, 0, '', now()
		FROM caravan.chunks WHERE run_id = $1 AND table_id = $2 AND chunk = $3 AND range_kind = $7`,
		r.Run, r.Table, chunk, sp.Rest, sp.Hi, StatusLoaded, proto.RangeKey)
	if err != nil {
		return fmt.Errorf("split chunk %d: %w", chunk, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("split chunk %d: it is not a key-range chunk of run %s table %s", chunk, r.Run, r.Table)
	}
	if _, err := tx.Exec(ctx, `UPDATE caravan.chunks SET hi = $4 WHERE run_id = $1 AND table_id = $2 AND chunk = $3`,
		r.Run, r.Table, chunk, sp.Hi); err != nil {
		return fmt.Errorf("split chunk %d: %w", chunk, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE caravan.tables SET chunks = chunks + 1 WHERE run_id = $1 AND table_id = $2`, r.Run, r.Table); err != nil {
		return fmt.Errorf("split chunk %d: %w", chunk, err)
	}
	return nil
}

// copyProduced streams what produce writes into a COPY.
func copyProduced(ctx context.Context, tx pgx.Tx, into proto.TableRef, enc string, cols []string,
	produce func(ctx context.Context, w io.Writer) ([]ChunkCopy, error)) ([]ChunkCopy, error) {
	pr, pw := io.Pipe()
	var copied []ChunkCopy
	produced := make(chan error, 1)
	binary := enc == proto.EncodingCopyBinary
	go func() {
		var err error
		if binary {
			_, err = pw.Write(proto.BinaryHeader)
		}
		if err == nil {
			copied, err = produce(ctx, pw)
		}
		if err == nil && binary {
			_, err = pw.Write(proto.BinaryTrailer)
		}
		pw.CloseWithError(err)
		produced <- err
	}()
	_, copyErr := tx.Conn().PgConn().CopyFrom(ctx, pr, CopySQL(into, enc, cols))
	pr.CloseWithError(errors.New("copy ended")) // unblocks a producer the COPY stopped reading
	if err := <-produced; err != nil {
		return nil, err
	}
	if copyErr != nil {
		return nil, fmt.Errorf("copy: %w", copyErr)
	}
	return copied, nil
}

// merge makes the rows of r.Where those of the temporary table: keys gone
// are deleted, keys kept whose other columns differ are updated in place
// (the key columns are equal, so no foreign key to them is checked), new
// keys are inserted.
func merge(ctx context.Context, tx pgx.Tx, r Replacement) error {
	t := schema.QuoteName(r.Target)
	var match, set, cols, from, was, now []string
	isKey := map[string]bool{}
	for _, k := range r.Key {
		isKey[k] = true
		match = append(match, "d."+schema.Quote(k)+" = s."+schema.Quote(k))
	}
	for _, c := range r.Cols {
		cols = append(cols, schema.Quote(c))
		from = append(from, "s."+schema.Quote(c))
		if !isKey[c] {
			set = append(set, schema.Quote(c)+" = s."+schema.Quote(c))
			// Compared as text: every type has a text form (json has no
			// equality), and it is the form the rows were loaded from.
			was = append(was, "d."+schema.Quote(c)+"::text")
			now = append(now, "s."+schema.Quote(c)+"::text")
		}
	}
	on := strings.Join(match, " AND ")
	// The range predicate names the target's columns unqualified: they are
	// the DELETE's own. r.Narrow's may be any predicate, hence the
	// parentheses.
	if _, err := tx.Exec(ctx, "DELETE FROM ONLY "+t+" d WHERE ("+r.Where+") AND NOT EXISTS (SELECT 1 FROM pg_temp.caravan_sync s WHERE "+on+")", r.Args...); err != nil {
		return fmt.Errorf("delete the rows gone from the source: %w", err)
	}
	if len(set) > 0 {
		// Only the rows that differ are written: a chunk with one changed
		// row rewrites one row, not the chunk (and its index entries, WAL
		// and a dead version of every row).
		differ := "ROW(" + strings.Join(was, ", ") + ") IS DISTINCT FROM ROW(" + strings.Join(now, ", ") + ")"
		if err := identityBy(ctx, tx, t, r.Always, "BY DEFAULT"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE ONLY "+t+" d SET "+strings.Join(set, ", ")+" FROM pg_temp.caravan_sync s WHERE "+on+" AND "+differ); err != nil {
			return fmt.Errorf("update the rows the source still has: %w", err)
		}
		if err := identityBy(ctx, tx, t, r.Always, "ALWAYS"); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+t+" ("+strings.Join(cols, ", ")+") OVERRIDING SYSTEM VALUE SELECT "+strings.Join(from, ", ")+
		" FROM pg_temp.caravan_sync s WHERE NOT EXISTS (SELECT 1 FROM ONLY "+t+" d WHERE "+on+")"); err != nil {
		return fmt.Errorf("insert the rows new on the source: %w", err)
	}
	return nil
}

// identityBy switches identity columns between GENERATED ALWAYS and BY
// DEFAULT (how, one of the two); inside the merge's transaction, so no
// other session ever sees the columns changed.
func identityBy(ctx context.Context, tx pgx.Tx, table string, cols []string, how string) error {
	for _, c := range cols {
		if _, err := tx.Exec(ctx, "ALTER TABLE "+table+" ALTER COLUMN "+schema.Quote(c)+" SET GENERATED "+how); err != nil {
			return fmt.Errorf("identity column %s: set generated %s: %w", c, strings.ToLower(how), err)
		}
	}
	return nil
}

// KeyRange re-selects a chunk's key range on the target: the table's key
// columns by their target names, the bounds cast to their target types.
// copyBound binds the bounds for COPY, which takes no parameters
// (pgutil.BoundSetting); otherwise they are $1, $2, ... Resume, the
// validator and sync all select a chunk's rows with it.
func KeyRange(t *schema.Table, ch ChunkState, copyBound bool) (string, []any) {
	cols := make([]string, len(t.PrimaryKey))
	types := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		col := t.Column(k)
		cols[i], types[i] = schema.Quote(col.TargetName), col.Type
	}
	if copyBound {
		return pgutil.RangePredicateWith(cols, types, ch.Lo, ch.Hi, pgutil.BoundSetting)
	}
	return pgutil.RangePredicate(cols, types, ch.Lo, ch.Hi, 0)
}
