// Package coordinator is the coordinator role: it discovers the source,
// maps it to PostgreSQL, creates the tables, plans and publishes chunks,
// tracks progress from the ledger, finalizes tables and foreign keys, and
// closes the run once the validator has judged every table.
package coordinator

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
)

// Target modes.
const (
	ModeCreate       = "create"        // create tables; refuse one that holds rows
	ModeTruncate     = "truncate"      // keep existing tables, emptied
	ModeDropRecreate = "drop-recreate" // drop existing tables and create them anew
)

// Options are what a user chooses for a run.
type Options struct {
	Filter schema.Filter
	// NameCase overrides the source's default name case ("" keeps it).
	NameCase string
	// SchemaMap maps source schemas to target schemas, on top of the
	// source's defaults.
	SchemaMap    map[string]string
	Mode         string
	RowsPerChunk int64
	BatchBytes   int
	BatchRows    int
	Unlogged     bool
	Validation   []string // levels: count, keys, digest, fk
	// SourceOptions are source-specific read options (e.g. the text policy
	// of postgres.TextOptions), carried in every ChunkTask so that every
	// extractor applies the run's choice, whatever its own flags.
	SourceOptions map[string]string
	// AcceptUnmigrated are globs over "kind:name" of objects the user
	// accepts the run does not migrate; a run with others refuses to start.
	AcceptUnmigrated []string
	// OwnersAndGrants gives objects their source owners and grants (off
	// by default: the target's roles often differ).
	OwnersAndGrants bool
	// CopyFormat is CopyAuto (binary COPY for the tables that allow it,
	// see ChooseEncodings) or CopyText (every table as COPY text).
	CopyFormat string
}

// Copy formats a user may ask for.
const (
	CopyAuto = "auto"
	CopyText = "text"
)

// DefaultBatchBytes is --batch-bytes unless told: 2 MiB less room for the
// message's other fields. On issue 9's 2 GB bench, count-only runs took
// 15.8-16.0 s with 960 KiB batches, 14.7-14.8 s with these (same peak
// RSS), 15.0 s with 4 MiB and 16.4-16.6 s with 7 MiB (more RSS): fewer
// batch transactions and messages, until larger messages cost the broker
// more than they save. A broker with a smaller max_payload (1 MiB is
// nats-server's default) caps it (Coordinator.batchBytes).
const DefaultBatchBytes = 2<<20 - 64<<10

// Defaults fills unset options.
func (o *Options) Defaults() {
	if o.Mode == "" {
		o.Mode = ModeCreate
	}
	if o.RowsPerChunk <= 0 {
		o.RowsPerChunk = 100_000
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.BatchRows <= 0 {
		o.BatchRows = 50_000
	}
	if o.Validation == nil {
		o.Validation = []string{"count", "keys", "digest", "fk"}
	}
	if o.CopyFormat == "" {
		o.CopyFormat = CopyAuto
	}
}

// Validate checks option values.
func (o *Options) Validate() error {
	switch o.Mode {
	case ModeCreate, ModeTruncate, ModeDropRecreate:
	default:
		return fmt.Errorf("target mode %q: want %s, %s or %s", o.Mode, ModeCreate, ModeTruncate, ModeDropRecreate)
	}
	switch o.CopyFormat {
	case CopyAuto, CopyText:
	default:
		return fmt.Errorf("copy format %q: want %s or %s", o.CopyFormat, CopyAuto, CopyText)
	}
	for _, l := range o.Validation {
		switch l {
		case "count", "keys", "digest", "fk", "none":
		default:
			return fmt.Errorf("validation level %q: want count, keys, digest, fk or none", l)
		}
	}
	for _, p := range append(append([]string{}, o.Filter.Include...), o.Filter.Exclude...) {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("table pattern %q: %w", p, err)
		}
	}
	for _, p := range o.AcceptUnmigrated {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("accept-unmigrated pattern %q: %w", p, err)
		}
	}
	return nil
}

// AcceptedBy returns the accept-unmigrated glob that accepts an object the
// run does not migrate, or "" when none does.
func (o *Options) AcceptedBy(u *schema.Unmigrated) string {
	for _, p := range o.AcceptUnmigrated {
		if ok, _ := path.Match(p, u.Key()); ok {
			return p
		}
	}
	return ""
}

// CheckUnmigrated refuses a run that would leave behind objects the user
// has not accepted, naming each and the setting that accepts it: better
// to learn it before hours of copying than from the report.
func (o *Options) CheckUnmigrated(db *schema.Database) error {
	var lines []string
	for _, u := range db.Unmigrated {
		if o.AcceptedBy(u) == "" {
			lines = append(lines, fmt.Sprintf("  %s (%s)", u.Key(), u.Reason))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return fmt.Errorf("caravan would not migrate %d objects, and nothing has been copied:\n%s\n"+
		"accept each with --accept-unmigrated 'KIND:NAME' (repeatable; globs such as 'function:*' work), "+
		"or list them under accept-unmigrated: in the config file, and run again", len(lines), strings.Join(lines, "\n"))
}

// Plan is what a run will do.
type Plan struct {
	DB     *schema.Database
	Tables []*TablePlan
}

// TablePlan is one table's chunks.
type TablePlan struct {
	Table  *schema.Table
	Chunks []source.Chunk
}

// MakePlan discovers the source, maps names and plans chunks. It touches
// nothing: `caravan plan` prints its result, a run executes it.
func MakePlan(ctx context.Context, src source.Source, snapshot string, opts Options) (*Plan, error) {
	db, err := src.Discover(ctx, opts.Filter)
	if err != nil {
		return nil, err
	}
	unmatched, err := unmatchedPatterns(ctx, src, opts.Filter, db)
	if err != nil {
		return nil, err
	}
	if len(db.Tables) == 0 {
		return nil, fmt.Errorf("no source table matches the include/exclude patterns (%s)", strings.Join(unmatched, "; "))
	}
	db.Warnings = append(db.Warnings, unmatched...)
	if err := NamePolicy(src, opts).Apply(db); err != nil {
		return nil, err
	}
	db.KeepVerbatimObjects()
	ChooseEncodings(db, opts.CopyFormat)
	plan := &Plan{DB: db}
	for _, t := range db.Tables {
		chunks, err := src.Plan(ctx, t, snapshot, rowsPerChunk(t, opts.RowsPerChunk))
		if err != nil {
			return nil, fmt.Errorf("plan chunks: %w", err)
		}
		plan.Tables = append(plan.Tables, &TablePlan{Table: t, Chunks: chunks})
	}
	return plan, nil
}

// ChooseEncodings sets each table's row encoding: binary COPY when every
// column it loads can travel so (the source marks it BinaryCopy: a built-in
// type of a source whose text needs no policy) and keeps its type on the
// target; COPY text otherwise, and for every table under CopyText. Binary
// spares PostgreSQL printing every value at the source and parsing it at
// the target (and the validator's read-back printing it again; bytea
// travels raw instead of as hex). User types (enums, domains, composites,
// arrays of them) stay text: their binary forms carry type oids, which
// differ between databases.
func ChooseEncodings(db *schema.Database, format string) {
	for _, t := range db.Tables {
		t.Encoding = proto.EncodingCopyText
		if format != CopyText && BinaryCopyable(t) {
			t.Encoding = proto.EncodingCopyBinary
		}
	}
}

// BinaryCopyable says whether every column t loads can travel as binary
// COPY (see ChooseEncodings).
func BinaryCopyable(t *schema.Table) bool {
	for _, c := range t.LoadColumns() {
		if !c.BinaryCopy || c.TypeRef != nil || c.Type != c.SourceType {
			return false
		}
	}
	return true
}

// chunkBytes is about the most of a table's size on disk one chunk holds:
// a table of wide rows (bytea, jsonb, long text) is cut into more chunks
// than its row count alone would give, so several extractors and loaders
// share it instead of one reading it all while the others idle.
const chunkBytes = 64 << 20

// rowsPerChunk is the chunk size for t: at most rows, and at most about
// chunkBytes of the table by the source's size and row estimates (but at
// least 1000 rows).
func rowsPerChunk(t *schema.Table, rows int64) int64 {
	if t.SizeBytes <= 0 || t.RowEstimate <= 0 {
		return rows
	}
	perRow := max(t.SizeBytes/t.RowEstimate, 1)
	// Never below 1000 rows for the bytes' sake (tiny chunks cost more in
	// overhead than they give in parallelism), never above what was asked.
	return min(rows, max(chunkBytes/perRow, 1000))
}

// LargestFirst is the order a run reads the tables in: largest first (by
// the source's size estimate, else its row estimate), so the longest table
// starts at once and its load overlaps the smaller ones' instead of
// holding up the end of the run alone.
func (p *Plan) LargestFirst() []*TablePlan {
	out := slices.Clone(p.Tables)
	slices.SortStableFunc(out, func(a, b *TablePlan) int {
		if c := cmp.Compare(b.Table.SizeBytes, a.Table.SizeBytes); c != 0 {
			return c
		}
		return cmp.Compare(b.Table.RowEstimate, a.Table.RowEstimate)
	})
	return out
}

// NamePolicy is the source's default policy with the user's choices on top.
func NamePolicy(src source.Source, opts Options) schema.NamePolicy {
	p := src.DefaultNames()
	if opts.NameCase != "" {
		p.Case = opts.NameCase
	}
	m := map[string]string{}
	for k, v := range p.SchemaMap {
		m[k] = v
	}
	for k, v := range opts.SchemaMap {
		m[k] = v
	}
	p.SchemaMap = m
	return p
}

// ViewFates says, for each view of the plan, what the run does with it:
// "created as PostgreSQL view" (a source's view translated, created with
// the tables), "created after the load" (a PostgreSQL source's own), or
// "not migrated: <reason>".
func (p *Plan) ViewFates() []string {
	var out []string
	for _, v := range p.DB.Views {
		out = append(out, fmt.Sprintf("%s %s: created as PostgreSQL view", v.Kind, v.Name))
	}
	for _, o := range p.DB.Objects {
		if o.Kind == "view" || o.Kind == "materialized view" {
			out = append(out, fmt.Sprintf("%s %s: created after the load", o.Kind, o.Name))
		}
	}
	for _, u := range p.DB.Unmigrated {
		if u.Kind == "view" || u.Kind == "materialized view" {
			out = append(out, fmt.Sprintf("%s %s: not migrated: %s", u.Kind, u.Name, u.Reason))
		}
	}
	return out
}

// DDL renders every statement that creates the plan's objects, for display.
func (p *Plan) DDL(unlogged bool) []string {
	var out []string
	for _, s := range p.DB.TargetSchemas() {
		out = append(out, schema.CreateSchema(s))
	}
	for _, e := range p.DB.Extensions {
		out = append(out, schema.CreateExtension(e))
	}
	for _, t := range p.DB.Types {
		out = append(out, schema.CreateType(t))
		if c := schema.CommentOnType(t); c != "" {
			out = append(out, c)
		}
	}
	for _, s := range p.DB.Sequences {
		out = append(out, schema.CreateSequence(s)...)
	}
	for _, t := range p.DB.Tables {
		out = append(out, schema.CreateSequences(t)...)
		if create, err := p.DB.CreateTable(t, unlogged); err == nil {
			out = append(out, create)
		}
	}
	out = append(out, p.DB.SequenceOwners()...)
	for _, v := range p.DB.Views {
		out = append(out, v.SQL...)
	}
	for _, t := range p.DB.Tables {
		out = append(out, schema.Finalize(t, p.DB.Policy)...)
	}
	out = append(out, p.DB.RowSecuritySQL()...)
	for _, o := range p.DB.Objects {
		out = append(out, o.SQL...)
	}
	for _, t := range p.DB.Tables {
		for _, fk := range t.ForeignKeys {
			add, validate, err := p.DB.ForeignKeySQL(t, fk)
			if err == nil {
				out = append(out, add, validate)
			}
		}
	}
	return out
}
