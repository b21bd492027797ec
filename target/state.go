// Package target is caravan's PostgreSQL side: the caravan schema that holds
// a run's state, DDL application, COPY with its ledger row, the audit trail,
// rejects and verdicts, and the read-back digest of target rows.
package target

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// stateLock is the advisory lock key that serialises creating the caravan
// schema: two coordinators starting at once would otherwise race on
// CREATE TABLE IF NOT EXISTS, which is not concurrency-safe.
const stateLock = 0x63617261 // "cara"

var stateDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS caravan`,
	`CREATE TABLE IF NOT EXISTS caravan.runs (
		run_id      uuid PRIMARY KEY,
		status      text NOT NULL,
		source_kind text NOT NULL,
		source      text NOT NULL,
		snapshot    text NOT NULL DEFAULT '',
		consistency text NOT NULL DEFAULT '',
		config      jsonb NOT NULL DEFAULT '{}',
		model       jsonb,
		error       text,
		started_at  timestamptz NOT NULL DEFAULT now(),
		finished_at timestamptz)`,
	`CREATE TABLE IF NOT EXISTS caravan.tables (
		run_id        uuid NOT NULL REFERENCES caravan.runs ON DELETE CASCADE,
		table_id      text NOT NULL,
		source_name   text NOT NULL,
		status        text NOT NULL,
		chunks        int NOT NULL DEFAULT 0,
		est_rows      bigint NOT NULL DEFAULT 0,
		created       boolean NOT NULL DEFAULT true,
		error         text,
		started_at    timestamptz NOT NULL DEFAULT now(),
		loaded_at     timestamptz,
		finalized_at  timestamptz,
		PRIMARY KEY (run_id, table_id))`,
	`CREATE TABLE IF NOT EXISTS caravan.chunks (
		run_id       uuid NOT NULL,
		table_id     text NOT NULL,
		chunk        int NOT NULL,
		attempt      int NOT NULL DEFAULT 1,
		range_kind   text NOT NULL,
		lo           jsonb,
		hi           jsonb,
		est_rows     bigint NOT NULL DEFAULT 0,
		status       text NOT NULL,
		batches      int,
		rows         bigint,
		bytes        bigint,
		digest       text,
		error        text,
		published_at timestamptz,
		read_at      timestamptz,
		extracted_at timestamptz,
		loaded_at    timestamptz,
		PRIMARY KEY (run_id, table_id, chunk),
		FOREIGN KEY (run_id, table_id) REFERENCES caravan.tables ON DELETE CASCADE)`,
	// Columns added after the first schema: a target that held an older
	// caravan's state gets them too.
	`ALTER TABLE caravan.chunks ADD COLUMN IF NOT EXISTS read_at timestamptz`,
	// The source's own count of a table, independent of the chunk plan, and
	// how it was taken ("snapshot", "live", or why it could not be).
	`ALTER TABLE caravan.tables ADD COLUMN IF NOT EXISTS source_rows bigint`,
	`ALTER TABLE caravan.tables ADD COLUMN IF NOT EXISTS source_count text`,
	// The extractor process (host:pid) that read a chunk, for the report's
	// timeline.
	`ALTER TABLE caravan.chunks ADD COLUMN IF NOT EXISTS extractor text`,
	// A chunk's digest cut by key value (proto.Parts), for sync.
	`ALTER TABLE caravan.chunks ADD COLUMN IF NOT EXISTS parts bytea`,
	// When the run's coordinator last said it is alive (target.Heartbeat).
	`ALTER TABLE caravan.runs ADD COLUMN IF NOT EXISTS heartbeat_at timestamptz`,
	`CREATE TABLE IF NOT EXISTS caravan.ledger (
		run_id    uuid NOT NULL,
		table_id  text NOT NULL,
		chunk     int NOT NULL,
		attempt   int NOT NULL,
		seq       int NOT NULL,
		rows      int NOT NULL,
		bytes     bigint NOT NULL,
		digest    text NOT NULL,
		loaded_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (run_id, table_id, chunk, attempt, seq))`,
	// A sync records a whole chunk's copy in one ledger row: more than
	// 2 GiB does not fit an int. Checked first: ALTER ... TYPE would lock
	// the ledger against running loaders at every start.
	`DO $$ BEGIN
		IF (SELECT atttypid FROM pg_attribute WHERE attrelid = 'caravan.ledger'::regclass AND attname = 'bytes') = 'int4'::regtype THEN
			ALTER TABLE caravan.ledger ALTER COLUMN bytes TYPE bigint;
		END IF;
	END $$`,
	`CREATE TABLE IF NOT EXISTS caravan.audit (
		id           bigserial PRIMARY KEY,
		run_id       uuid NOT NULL,
		table_name   text,
		operation    text NOT NULL,
		rows         bigint,
		status       text NOT NULL,
		error        text,
		started_at   timestamptz NOT NULL,
		completed_at timestamptz,
		metadata     jsonb NOT NULL DEFAULT '{}')`,
	`CREATE INDEX IF NOT EXISTS audit_run_table ON caravan.audit (run_id, table_name)`,
	`CREATE TABLE IF NOT EXISTS caravan.rejects (
		id          bigserial PRIMARY KEY,
		run_id      uuid NOT NULL,
		table_id    text NOT NULL,
		chunk       int NOT NULL,
		attempt     int NOT NULL,
		seq         int NOT NULL,
		column_name text,
		key         text,
		error       text NOT NULL,
		row_text    text,
		rejected_at timestamptz NOT NULL DEFAULT now(),
		UNIQUE (run_id, table_id, chunk, attempt, seq))`,
	`CREATE TABLE IF NOT EXISTS caravan.verdicts (
		run_id      uuid NOT NULL,
		table_id    text NOT NULL,
		level       text NOT NULL,
		ok          boolean NOT NULL,
		source_rows bigint,
		target_rows bigint,
		detail      text NOT NULL DEFAULT '',
		seconds     double precision NOT NULL DEFAULT 0,
		checked_at  timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (run_id, table_id, level))`,
}

// EnsureState creates the caravan schema and its tables when missing.
func EnsureState(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("create caravan schema: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, stateLock); err != nil {
		return fmt.Errorf("create caravan schema: lock: %w", err)
	}
	for _, stmt := range stateDDL {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("create caravan schema: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("create caravan schema: %w", err)
	}
	return nil
}
