// Package source defines what caravan needs from a source database. Each
// implementation (source/postgres, source/mssql) reads its own catalog into
// the neutral schema model, splits tables into chunks, and streams a chunk's
// rows in key order as canonical COPY text lines (see proto/rowtext.go).
package source

import (
	"context"
	"errors"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
)

// Source is one source database.
type Source interface {
	// Kind names the source type ("postgres", "mssql").
	Kind() string
	// Discover reads the catalog: every table that passes the filter, with
	// target types chosen and names not yet mapped (schema.NamePolicy does
	// that afterwards).
	Discover(ctx context.Context, filter schema.Filter) (*schema.Database, error)
	// DefaultNames is the name policy a user gets without asking.
	DefaultNames() schema.NamePolicy
	// Snapshot opens the consistent view every chunk of the run is read in.
	// The view lives until Release; workers join it through ID.
	Snapshot(ctx context.Context) (*Snapshot, error)
	// Plan splits a table into chunks of about rowsPerChunk rows, reading
	// inside the snapshot. Chunks cover the table exactly, without overlap,
	// in key order.
	Plan(ctx context.Context, t *schema.Table, snapshot string, rowsPerChunk int64) ([]Chunk, error)
	// Read streams the rows of one chunk, in the chunk's deterministic order,
	// calling emit with each row in the task's encoding: one COPY text line
	// (newline-terminated), or one binary COPY tuple (PostgreSQL sources
	// only: the planner chooses binary only for columns the source marks
	// BinaryCopy). The row is only valid during the call.
	Read(ctx context.Context, task *proto.ChunkTask, emit func(row []byte) error) error
	// Count counts a table's rows independently of the chunk plan and the
	// reader, so a plan or paging bug that never reads some rows fails the
	// table's count verdict. It counts in the run's snapshot when the source
	// keeps one point in time for the whole run (exact says so); otherwise
	// it counts the live table, and a difference may also mean the source
	// changed during the run.
	Count(ctx context.Context, t *schema.Table, snapshot string) (n int64, exact bool, err error)
	// Close releases connections.
	Close() error
}

// Consistency describes, without opening anything, the consistency a run
// would get (what Snapshot's Note will say), so `caravan plan` can tell a
// user before a run whether the source must be kept quiet.
type Consistency interface {
	Consistency() string
}

// Snapshot is a consistent view of the source.
type Snapshot struct {
	// ID is what workers pass in ChunkTask.Snapshot; "" when the source has
	// no shareable snapshot.
	ID string
	// Note explains the consistency the run gets, for the plan and the log
	// (e.g. "SNAPSHOT isolation", "no snapshot: the source must be quiet").
	Note string
	// Release ends the view.
	Release func(ctx context.Context) error
}

// Chunk is one planned range of a table.
type Chunk struct {
	Range   string   // proto.RangeKey, proto.RangePhysical or proto.RangeAll
	Lo, Hi  []string // nil for an open end
	EstRows int64
	// Note says how the table's plan was made (which statistics or sample
	// gave its bounds), the same on every chunk of the table, for
	// `caravan plan`; "" when the source has nothing to say.
	Note string
}

// PermanentError marks a source error that no retry can mend: a syntax or
// permission error, a value that cannot be converted, a snapshot that is
// gone. The extractor fails the chunk at once with it instead of retrying;
// only outages (pgutil.IsTransient) are waited out.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError (nil stays nil).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent says whether err, or an error it wraps, is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// KeyReader is a Source that also reads chosen rows of a key-range chunk
// by key, in the same snapshot and with the same row text as Read:
// `caravan sync` copies only the rows of a changed chunk that differ from
// the target. keys holds one text value per key column, as Read prints
// them.
type KeyReader interface {
	ReadKeys(ctx context.Context, task *proto.ChunkTask, keys [][]string, emit func(line []byte) error) error
}
