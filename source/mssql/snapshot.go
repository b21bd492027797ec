package mssql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/caravan-db/caravan/source"
)

// Snapshot IDs, as they travel in ChunkTask.Snapshot.
const (
	snapIsolation = "isolation:snapshot" // every chunk in its own SNAPSHOT transaction
	snapDatabase  = "database:"          // + the database snapshot's name
)

const noteIsolation = "SNAPSHOT isolation: each chunk (every page of it) is read in one SNAPSHOT transaction, " +
	"so a chunk is internally consistent and re-reads of it are identical only if nothing changed in between; " +
	"SQL Server's SNAPSHOT isolation is per transaction, so chunks read by different extractors see different " +
	"points in time: writes during the run can leave the target matching no single moment of the source. " +
	"Keep the source quiet, or ask for a database snapshot, for one point in time"

const noteQuiet = "no snapshot: ALLOW_SNAPSHOT_ISOLATION is OFF and no database snapshot was asked for; " +
	"chunks are read under READ COMMITTED, so the source must be quiet (no writes) for the whole run"

// Consistency implements source.Consistency: the note Snapshot will give.
// It names the engine first, so `caravan plan` says what it talks to.
func (s *Source) Consistency() string {
	switch {
	case s.opts.DatabaseSnapshot:
		return s.d.describe("database snapshot (created when the run starts): every chunk reads the same point in time")
	case s.siOn:
		return s.d.describe(noteIsolation)
	}
	return s.d.describe(noteQuiet)
}

// Snapshot implements source.Source.
func (s *Source) Snapshot(ctx context.Context) (*source.Snapshot, error) {
	if s.opts.DatabaseSnapshot {
		return s.databaseSnapshot(ctx)
	}
	if s.siOn {
		return &source.Snapshot{ID: snapIsolation, Note: noteIsolation, Release: func(context.Context) error { return nil }}, nil
	}
	return &source.Snapshot{Note: noteQuiet, Release: func(context.Context) error { return nil }}, nil
}

// databaseSnapshot creates a read-only, copy-on-write snapshot of the
// whole database: every chunk, on every extractor, reads the same point in
// time. Needs CREATE DATABASE permission, and an edition and deployment
// that support snapshots (not Azure SQL Database).
func (s *Source) databaseSnapshot(ctx context.Context) (*source.Snapshot, error) {
	var files [][2]string
	err := scanAll(ctx, s.db, dataFilesSQL, "data files", func(r *sql.Rows) error {
		var f [2]string
		err := r.Scan(&f[0], &f[1])
		files = append(files, f)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("database snapshot of %s: %w", s.database, scrub(err, s.secrets))
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	name := s.database + "_caravan_" + hex.EncodeToString(rnd[:])
	if _, err := s.db.ExecContext(ctx, createSnapshotSQL(name, s.database, files)); err != nil {
		return nil, fmt.Errorf("create database snapshot %s of %s: %w", name, s.database, scrub(err, s.secrets))
	}
	return &source.Snapshot{
		ID:   snapDatabase + name,
		Note: "database snapshot " + name + ": every chunk reads the same point in time",
		Release: func(ctx context.Context) error {
			if _, err := s.db.ExecContext(ctx, dropSnapshotSQL(name)); err != nil {
				return fmt.Errorf("drop database snapshot %s: %w", name, scrub(err, s.secrets))
			}
			return nil
		},
	}, nil
}

// view is where one Plan or Read runs: a SNAPSHOT transaction, a database
// snapshot's name, or the live database.
type view struct {
	q      queryer
	dbName string // database snapshot name, "" for the live database
	tx     *sql.Tx
	conn   *sql.Conn // the view's one connection (Read's views), for rawRows
}

func (s *Source) openView(ctx context.Context, snapshot string) (*view, error) {
	switch {
	case snapshot == "":
		return &view{q: s.db}, nil
	case snapshot == snapIsolation:
		tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSnapshot})
		if err != nil {
			return nil, fmt.Errorf("begin SNAPSHOT transaction: %w", scrub(err, s.secrets))
		}
		return &view{q: tx, tx: tx}, nil
	case strings.HasPrefix(snapshot, snapDatabase) && len(snapshot) > len(snapDatabase):
		return &view{q: s.db, dbName: strings.TrimPrefix(snapshot, snapDatabase)}, nil
	}
	return nil, fmt.Errorf("snapshot %q is not a SQL Server snapshot id", snapshot)
}

// openConnView is openView on one connection of the pool, held until
// close: Read's rows come through rawRows on that connection, inside the
// view's transaction when it has one (the driver's session carries it).
func (s *Source) openConnView(ctx context.Context, snapshot string) (*view, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", scrub(err, s.secrets))
	}
	v := &view{q: conn, conn: conn}
	switch {
	case snapshot == "":
	case snapshot == snapIsolation:
		if v.tx, err = conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSnapshot}); err != nil {
			conn.Close()
			return nil, fmt.Errorf("begin SNAPSHOT transaction: %w", scrub(err, s.secrets))
		}
		v.q = v.tx
	case strings.HasPrefix(snapshot, snapDatabase) && len(snapshot) > len(snapDatabase):
		v.dbName = strings.TrimPrefix(snapshot, snapDatabase)
	default:
		conn.Close()
		return nil, fmt.Errorf("snapshot %q is not a SQL Server snapshot id", snapshot)
	}
	return v, nil
}

// close ends the view; reads never write, so commit and rollback are
// the same, and commit reports a SNAPSHOT update conflict if any.
func (v *view) close() error {
	var err error
	if v.tx != nil {
		err = v.tx.Commit()
	}
	if v.conn != nil {
		if cerr := v.conn.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
