package mssql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
)

// Read implements source.Source: the chunk's rows in SQL Server's key
// order, one keyset page (TOP (n) ... WHERE key > last ORDER BY key) at a
// time, never OFFSET, or the whole chunk in one statement where the
// dialect says so (dialect.pageRows). Range predicates are evaluated by SQL Server, in the
// key columns' own types and collations, so a chunk holds exactly the rows
// SQL Server puts in [Lo, Hi). A keyless table is one chunk read in
// %%physloc%% order.
func (s *Source) Read(ctx context.Context, task *proto.ChunkTask, emit func(line []byte) error) error {
	if enc := task.RowEncoding(); enc != proto.EncodingCopyText {
		return source.Permanent(fmt.Errorf("read %s chunk %d: SQL Server rows are printed as COPY text, not %s", task.Source, task.Chunk, enc))
	}
	if err := s.read(ctx, task, emit); err != nil {
		// classified before scrub, which may cut the error chain
		permanent := source.IsPermanent(classify(ctx, err))
		err = fmt.Errorf("read %s chunk %d%s: %w", task.Source, task.Chunk, chunkRange(task), scrub(err, s.secrets))
		if permanent {
			return source.Permanent(err)
		}
		return err
	}
	return nil
}

// Count implements source.Source: COUNT_BIG(*) in the database snapshot
// when the run has one; otherwise of the live table, which is no longer
// the run's point in time (SNAPSHOT isolation is per transaction).
func (s *Source) Count(ctx context.Context, t *schema.Table, snapshot string) (int64, bool, error) {
	v, err := s.openView(ctx, snapshot)
	if err != nil {
		return 0, false, fmt.Errorf("count %s: %w", t.Source, scrub(err, s.secrets))
	}
	var n int64
	err = scanAll(ctx, v.q, "SELECT COUNT_BIG(*) FROM "+tableRef(v.dbName, t.Source), "row count", func(r *sql.Rows) error { return r.Scan(&n) })
	if cerr := v.close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return 0, false, fmt.Errorf("count %s: %w", t.Source, scrub(err, s.secrets))
	}
	return n, v.dbName != "", nil
}

func (s *Source) read(ctx context.Context, task *proto.ChunkTask, emit func(line []byte) error) error {
	conv, err := s.newRowConverter(task)
	if err != nil {
		return err
	}
	keys, keyed, err := taskKeys(task)
	if err != nil {
		return err
	}
	if !keyed && task.Range == proto.RangeKey && (task.Lo != nil || task.Hi != nil) {
		return fmt.Errorf("a key range needs key columns caravan can bound")
	}
	if task.Range == proto.RangePhysical {
		return fmt.Errorf("physical ranges are not used for SQL Server: keyless tables are one chunk")
	}
	v, err := s.openConnView(ctx, task.Snapshot)
	if err != nil {
		return err
	}
	table := tableRef(v.dbName, schema.Name{Schema: task.Source.Schema, Name: task.Source.Name})
	if keyed {
		err = s.readKeyed(ctx, v.conn, table, task, keys, conv, emit)
	} else {
		err = s.readHeap(ctx, v.conn, table, conv, emit)
	}
	if cerr := v.close(); err == nil && cerr != nil {
		err = cerr
	}
	conv.report(s, task)
	return err
}

// chunkRange names the chunk's key range in errors.
func chunkRange(task *proto.ChunkTask) string {
	if task.Lo == nil && task.Hi == nil {
		return ""
	}
	b := func(v []string, open string) string {
		if v == nil {
			return open
		}
		return "(" + strings.Join(v, ", ") + ")"
	}
	return " [" + b(task.Lo, "-inf") + ", " + b(task.Hi, "+inf") + ")"
}

// taskKeys parses the task's key columns; keyed=false reads the table as
// a heap.
func taskKeys(task *proto.ChunkTask) ([]keyCol, bool, error) {
	if len(task.Key) == 0 {
		return nil, false, nil
	}
	if len(task.KeyTypes) != len(task.Key) {
		return nil, false, fmt.Errorf("%d key columns but %d key types", len(task.Key), len(task.KeyTypes))
	}
	keys := make([]keyCol, len(task.Key))
	for i, k := range task.Key {
		st, err := parseSQLType(task.KeyTypes[i])
		if err != nil {
			return nil, false, fmt.Errorf("key column %q: %w", k, err)
		}
		if !st.keyable() {
			return nil, false, nil
		}
		keys[i] = keyCol{Ref: quoteIdent(k), Type: st}
	}
	return keys, true, nil
}

func boundParams(d dialect, keys []keyCol, bound []string, what string) ([]any, error) {
	if len(bound) != len(keys) {
		return nil, fmt.Errorf("%s bound has %d values for %d key columns", what, len(bound), len(keys))
	}
	out := make([]any, len(keys))
	for i, k := range keys {
		p, err := d.paramFromText(k.Type, bound[i])
		if err != nil {
			return nil, fmt.Errorf("%s bound, key column %s: %w", what, k.Ref, err)
		}
		out[i] = p
	}
	return out, nil
}

func (s *Source) readKeyed(ctx context.Context, conn *sql.Conn, table string, task *proto.ChunkTask, keys []keyCol, conv *rowConverter, emit func([]byte) error) error {
	var lo, hi, after []any
	var err error
	if task.Lo != nil {
		if lo, err = boundParams(s.d, keys, task.Lo, "low"); err != nil {
			return err
		}
	}
	if task.Hi != nil {
		if hi, err = boundParams(s.d, keys, task.Hi, "high"); err != nil {
			return err
		}
	}
	page := s.d.pageRows(s.opts.PageRows)
	exprs := conv.exprs()
	extra, keyAt := s.d.keySelect(exprs, keys)
	width := conv.width + len(extra)
	vals := make([]driver.Value, width)
	keyVals := make([]any, len(keys))
	what := "rows"
	for {
		ps := s.d.rangeQuery(table, exprs, keys, lo != nil, hi != nil, after != nil, page > 0)
		var args []any
		if page > 0 {
			args = append(args, int64(page))
		}
		args = append(args, lo...)
		args = append(args, hi...)
		args = append(args, after...)
		n := 0
		var last []any
		err := rawRows(ctx, conn, ps.SQL, what, vals, func() error {
			n++
			for i, at := range keyAt {
				keyVals[i] = vals[at]
			}
			line, err := conv.line(vals[:conv.width], func() string { return describeKey(task.Key, keys, keyVals) })
			if err != nil {
				return err
			}
			last = append(last[:0], keyVals...)
			return emit(line)
		}, args...)
		if err != nil {
			return err
		}
		if page <= 0 || n < page {
			return nil
		}
		what = "rows after key " + describeKey(task.Key, keys, last)
		after = make([]any, len(keys))
		for i, k := range keys {
			if after[i], err = s.d.keyParam(k.Type, last[i]); err != nil {
				return fmt.Errorf("continue after key %s: %w", describeKey(task.Key, keys, last), err)
			}
		}
	}
}

// readHeap reads a keyless table in one statement, in the order the
// dialect gives (%%physloc%% on SQL Server, every column on Babelfish).
// Exactly once: the table is a single chunk; within an attempt the
// loader's ledger drops redelivered batches, and a new attempt starts by
// removing the earlier attempt's rows (the coordinator's job), so no row
// can land twice. The deterministic order makes a re-read in the same view
// produce the same batches.
func (s *Source) readHeap(ctx context.Context, conn *sql.Conn, table string, conv *rowConverter, emit func([]byte) error) error {
	query, locator := s.d.heapQuery(table, conv.cols)
	width := conv.width
	if locator {
		width++
	}
	vals := make([]driver.Value, width)
	var n int64
	return rawRows(ctx, conn, query, "rows", vals, func() error {
		n++
		line, err := conv.line(vals[:conv.width], func() string {
			if b, ok := vals[width-1].([]byte); ok && locator {
				return fmt.Sprintf("(no key; %%%%physloc%%%% 0x%X)", b)
			}
			return fmt.Sprintf("(no key; row %d in the read order)", n)
		})
		if err != nil {
			return err
		}
		return emit(line)
	})
}

// rawRows runs query on conn and calls row for each of its rows, the
// row's driver values in vals. It is what scanAll with Rows.Scan into
// *any did, less database/sql's work per row: two locks, and a copy of
// every []byte value (decimals, money, uuids, binaries, UTF-16 text) made
// because a driver may reuse its buffers. go-mssqldb does not: it copies
// each byte value out of its read buffer (rows wait in a channel), so a
// value may be kept after the next row, as Read keeps the last key. The
// statement and its parameters go to the driver as database/sql sends
// them for QueryContext on a connection: prepared (no round trip: the
// driver's Prepare only records the text), each argument checked by the
// driver's CheckNamedValue, run with sp_executesql.
func rawRows(ctx context.Context, conn *sql.Conn, query, what string, vals []driver.Value, row func() error, args ...any) error {
	err := conn.Raw(func(dc any) error {
		prep, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot prepare with a context", dc)
		}
		stmt, err := prep.PrepareContext(ctx, query)
		if err != nil {
			return err
		}
		defer stmt.Close()
		sq, ok := stmt.(driver.StmtQueryContext)
		if !ok {
			return fmt.Errorf("driver statement %T cannot query with a context", stmt)
		}
		named := make([]driver.NamedValue, len(args))
		checker, _ := dc.(driver.NamedValueChecker)
		for i, a := range args {
			named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
			if checker == nil {
				continue
			}
			if err := checker.CheckNamedValue(&named[i]); err != nil && !errors.Is(err, driver.ErrSkip) {
				return fmt.Errorf("parameter %d: %w", i+1, err)
			}
		}
		rows, err := sq.QueryContext(ctx, named)
		if err != nil {
			return err
		}
		if n := len(rows.Columns()); n != len(vals) {
			rows.Close()
			return fmt.Errorf("the statement returned %d columns, not %d", n, len(vals))
		}
		for {
			if err := rows.Next(vals); err != nil {
				cerr := rows.Close()
				if errors.Is(err, io.EOF) {
					return cerr
				}
				return err
			}
			if err := row(); err != nil {
				rows.Close()
				return err
			}
		}
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}

// describeKey names a row by its key for errors and warnings.
func describeKey(names []string, keys []keyCol, vals []any) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		txt, err := keyText(k.Type, vals[i])
		if err != nil {
			txt = "?"
		}
		parts[i] = names[i] + "=" + txt
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// readCol is one column as Read selects and prints it.
type readCol struct {
	Name  string
	Type  sqlType
	Kind  pgKind
	Exprs []string
}

// rowConverter turns scanned values into COPY text lines and applies the
// value policies.
type rowConverter struct {
	table  string
	cols   []readCol
	width  int
	nul    Policy
	sur    Policy
	issues map[string]*issueCount
	b      proto.RowBuilder
	text   []byte // one value's text, reused for every value
	v      value  // one decoded value, reused likewise
}

type issueCount struct {
	NUL, Surrogates int
	FirstKey        string
}

func (s *Source) newRowConverter(task *proto.ChunkTask) (*rowConverter, error) {
	if len(task.Types) != len(task.Cols) {
		return nil, fmt.Errorf("%d columns but %d types", len(task.Cols), len(task.Types))
	}
	c := &rowConverter{table: task.Source.String(), nul: s.opts.NUL, sur: s.opts.Surrogates, issues: map[string]*issueCount{}}
	if c.nul == "" {
		c.nul = PolicyFail
	}
	if c.sur == "" {
		c.sur = PolicyFail
	}
	for i, name := range task.Cols {
		st, err := parseSQLType(task.Types[i])
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", name, err)
		}
		pg := s.targetType(task, name, st)
		k, err := parsePGType(pg)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", name, err)
		}
		if !compatible(st, k) {
			return nil, fmt.Errorf("column %q: cannot convert %s to %s", name, st, pg)
		}
		rc := readCol{Name: name, Type: st, Kind: k, Exprs: s.d.selectExprs(quoteIdent(name), st, k)}
		c.cols = append(c.cols, rc)
		c.width += len(rc.Exprs)
	}
	return c, nil
}

// targetType is the column's PostgreSQL type: the coordinator's choice
// carried in the task (TargetTypes, or a "type.<column>" option), else the
// source's TypeOverrides, else the default mapping; Discover chose the same.
func (s *Source) targetType(task *proto.ChunkTask, col string, st sqlType) string {
	for i, c := range task.Cols {
		if c == col && i < len(task.TargetTypes) && task.TargetTypes[i] != "" {
			return task.TargetTypes[i]
		}
	}
	if t := task.Options["type."+col]; t != "" {
		return t
	}
	if t := s.opts.TypeOverrides[task.Source.Schema+"."+task.Source.Name+"."+col]; t != "" {
		return t
	}
	return defaultPGType(st, s.opts.PostGIS)
}

func (c *rowConverter) exprs() []string {
	var out []string
	for _, col := range c.cols {
		out = append(out, col.Exprs...)
	}
	return out
}

// line builds one row's COPY text line from its scanned values.
func (c *rowConverter) line(vals []driver.Value, key func() string) ([]byte, error) {
	c.b.Reset()
	i := 0
	for j := range c.cols {
		col := &c.cols[j]
		raw := vals[i]
		var base string
		if len(col.Exprs) > 1 {
			base, _ = vals[i+1].(string)
		}
		i += len(col.Exprs)
		if raw == nil {
			c.b.Null()
			continue
		}
		txt, err := c.value(col, raw, base, key)
		if err != nil {
			return nil, fmt.Errorf("table %s column %q key %s: %w", c.table, col.Name, key(), err)
		}
		c.b.Value(txt)
	}
	return c.b.Line(), nil
}

var (
	errNUL       = errors.New("string holds NUL characters, which PostgreSQL text cannot store (set the NUL policy to strip to remove them)")
	errSurrogate = errors.New("string holds unpaired UTF-16 surrogates, which UTF-8 cannot encode (set the surrogate policy to replace to use U+FFFD)")
)

// value prints one value into c.text and returns it.
func (c *rowConverter) value(col *readCol, raw any, base string, key func() string) ([]byte, error) {
	v := &c.v
	iss, err := decodeInto(v, &col.Type, &col.Kind, raw, base)
	if err != nil {
		return nil, err
	}
	if iss.Surrogates > 0 {
		if c.sur == PolicyFail {
			return nil, errSurrogate
		}
		c.note(col.Name, key, 0, iss.Surrogates)
	}
	if iss.NUL > 0 {
		if c.nul == PolicyFail {
			return nil, errNUL
		}
		v.s = strings.ReplaceAll(v.s, "\x00", "")
		c.note(col.Name, key, iss.NUL, 0)
	}
	c.text, err = appendValue(c.text[:0], v, &col.Kind)
	return c.text, err
}

func (c *rowConverter) note(col string, key func() string, nul, sur int) {
	ic := c.issues[col]
	if ic == nil {
		ic = &issueCount{FirstKey: key()}
		c.issues[col] = ic
	}
	ic.NUL += nul
	ic.Surrogates += sur
}

// report logs one warning per column the policies changed in this chunk.
func (c *rowConverter) report(s *Source, task *proto.ChunkTask) {
	for col, ic := range c.issues {
		if ic.NUL > 0 {
			s.log.Warn("mssql source: NUL characters stripped", "table", c.table, "column", col, "chunk", task.Chunk, "count", ic.NUL, "first_key", ic.FirstKey)
		}
		if ic.Surrogates > 0 {
			s.log.Warn("mssql source: unpaired UTF-16 surrogates replaced by U+FFFD", "table", c.table, "column", col, "chunk", task.Chunk, "count", ic.Surrogates, "first_key", ic.FirstKey)
		}
	}
}
