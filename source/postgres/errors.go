package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/caravan-db/caravan/source"
)

// permanentIfHopeless marks the errors no retry of a chunk can mend as
// permanent, so the extractor fails the chunk at once instead of trying it
// eight times: SQLSTATE class 42 (syntax error, undefined table or column,
// insufficient privilege) and class 22 (data exception: a value that
// cannot be printed or converted, an invalid byte sequence). Outages and
// everything unclassified are left as they are.
func permanentIfHopeless(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) >= 2 {
		switch pgErr.Code[:2] {
		case "42", "22":
			return source.Permanent(err)
		}
	}
	return err
}

// snapshotGoneError is a run's snapshot that can no longer be imported:
// the coordinator that exported it (and kept its transaction open) has
// stopped. PostgreSQL says "invalid snapshot identifier" (22023) once the
// exporting transaction has ended, or "could not import the requested
// snapshot" (55000) when it ends during the import.
type snapshotGoneError struct {
	id  string
	err error
}

func (e *snapshotGoneError) Error() string {
	return fmt.Sprintf("the coordinator that exported snapshot %s has stopped: %v", e.id, e.err)
}

func (e *snapshotGoneError) Unwrap() error { return e.err }

// importFailed classifies a failed SET TRANSACTION SNAPSHOT: the snapshot
// being gone is permanent, anything else (an outage above all) is left to
// the usual retries.
func importFailed(id string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "22023" || pgErr.Code == "55000") {
		return &snapshotGoneError{id: id, err: err}
	}
	return fmt.Errorf("import snapshot %s: %w", id, err)
}
