package mssql

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/caravan-db/caravan/schema"
)

// A SQL Server sequence (CREATE SEQUENCE) is created on the target with
// its type, start, increment, bounds and cycling, and continues from the
// source's last used value: NEXT VALUE FOR on the source and nextval on the
// target then hand out the same next number. One whose values do not fit
// a PostgreSQL sequence (decimal beyond bigint) stays listed, with its
// T-SQL definition.

// sequenceRow is one sys.sequences row. Numbers are read as text: a
// decimal(38,0) sequence's bounds exceed every Go integer.
type sequenceRow struct {
	Schema, Name, Type         string
	Start, Increment, Min, Max string
	Cycle                      bool
	Last                       sql.NullString // NULL until NEXT VALUE FOR was first called
}

// sequencesSQL reads sys.sequences. last_used_value (SQL Server 2017) is
// NULL for a sequence never used; current_value cannot tell that apart
// from one used once (both are the start value).
const sequencesSQL = `SELECT CAST(SCHEMA_NAME(s.schema_id) AS nvarchar(128)), CAST(s.name AS nvarchar(128)), CAST(TYPE_NAME(s.system_type_id) AS nvarchar(128)),
  CAST(s.start_value AS nvarchar(60)), CAST(s.increment AS nvarchar(60)), CAST(s.minimum_value AS nvarchar(60)), CAST(s.maximum_value AS nvarchar(60)),
  s.is_cycling, CAST(s.last_used_value AS nvarchar(60))
FROM sys.sequences AS s
ORDER BY 1, 2`

func readSequences(ctx context.Context, q queryer, d dialect, c *catalogRows) error {
	return scanAll(ctx, q, d.sequencesSQL(), "sequences", func(r *sql.Rows) error {
		var x sequenceRow
		err := r.Scan(&x.Schema, &x.Name, &x.Type, &x.Start, &x.Increment, &x.Min, &x.Max, &x.Cycle, &x.Last)
		c.Sequences = append(c.Sequences, x)
		return err
	})
}

// sequenceTypes maps a sequence's type to the PostgreSQL sequence type
// that holds every value it can take (tinyint has none of its own).
var sequenceTypes = map[string]string{
	"tinyint": "smallint", "smallint": "smallint", "int": "integer", "integer": "integer",
	"bigint": "bigint", "decimal": "bigint", "numeric": "bigint",
}

// migrateSequences adds to db the sequences of the inventory (sys.objects
// type SO) whose schema holds a table of the run, and returns as
// unmigrated, with their definition, those it cannot create. Those of
// schemas outside the run (runSchemas) are not the run's.
func migrateSequences(rows *catalogRows, filter schema.Filter, db *schema.Database) []*schema.Unmigrated {
	ofRun := runSchemas(rows, filter)
	inRun := map[string]bool{}
	for _, t := range db.Tables {
		inRun[t.Source.Schema] = true
	}
	listed := map[schema.Name]bool{}
	for _, o := range rows.Objects {
		if o.Type == "SO" {
			listed[schema.Name{Schema: o.Schema, Name: o.Name}] = true
		}
	}
	var out []*schema.Unmigrated
	for _, r := range rows.Sequences {
		name := schema.Name{Schema: r.Schema, Name: r.Name}
		if !listed[name] || !ofRun(r.Schema) {
			continue // Babelfish's sequence behind an identity column, or another schema's
		}
		s, why := r.sequence()
		if why == "" && !inRun[r.Schema] {
			why = fmt.Sprintf("not migrated: schema %s holds no table of the run; create it on the target", r.Schema)
		}
		if why != "" {
			out = append(out, &schema.Unmigrated{Kind: "sequence", Name: name.String(), Reason: why, Definition: r.definition()})
			continue
		}
		db.Sequences = append(db.Sequences, s)
	}
	return out
}

// sequence is the PostgreSQL sequence the row becomes, or why there is none.
func (r sequenceRow) sequence() (*schema.Sequence, string) {
	typ, ok := sequenceTypes[strings.ToLower(r.Type)]
	if !ok {
		return nil, fmt.Sprintf("not migrated: sequence type %s has no PostgreSQL equivalent", r.Type)
	}
	s := &schema.Sequence{Name: schema.Name{Schema: r.Schema, Name: r.Name}, Type: typ, Cache: 1, Cycle: r.Cycle}
	for _, f := range []struct {
		text string
		to   *int64
	}{{r.Start, &s.Start}, {r.Increment, &s.Increment}, {r.Min, &s.Min}, {r.Max, &s.Max}} {
		v, err := strconv.ParseInt(strings.TrimSpace(f.text), 10, 64)
		if err != nil {
			return nil, fmt.Sprintf("not migrated: value %s does not fit a PostgreSQL sequence (bigint)", f.text)
		}
		*f.to = v
	}
	if r.Last.Valid {
		v, err := strconv.ParseInt(strings.TrimSpace(r.Last.String), 10, 64)
		if err != nil {
			return nil, fmt.Sprintf("not migrated: last value %s does not fit a PostgreSQL sequence (bigint)", r.Last.String)
		}
		s.Last = &v
	}
	return s, ""
}

// definition is the row's CREATE SEQUENCE in T-SQL, with its last value.
func (r sequenceRow) definition() string {
	cycle := "NO CYCLE"
	if r.Cycle {
		cycle = "CYCLE"
	}
	last := "never used"
	if r.Last.Valid {
		last = "last value " + r.Last.String
	}
	return fmt.Sprintf("-- %s\nCREATE SEQUENCE %s.%s AS %s START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s %s;",
		last, quoteIdent(r.Schema), quoteIdent(r.Name), r.Type, r.Start, r.Increment, r.Min, r.Max, cycle)
}

// nextValueFor reads a default NEXT VALUE FOR [schema].[sequence] (as
// sys.default_constraints keeps it, in parentheses): the sequence's name,
// last part first.
func nextValueFor(def string) ([]string, bool) {
	toks, err := lexTSQL(stripParens(def))
	if err != nil || len(toks) < 4 || !toks[0].is("NEXT") || !toks[1].is("VALUE") || !toks[2].is("FOR") {
		return nil, false
	}
	var parts []string
	for i := 3; i < len(toks); i += 2 {
		if toks[i].kind != tokIdent || (i+1 < len(toks) && toks[i+1].text != ".") {
			return nil, false
		}
		parts = append([]string{toks[i].text}, parts...)
	}
	return parts, len(parts) <= 2
}

// sequenceDefaults gives a column whose default is NEXT VALUE FOR a
// sequence the run creates the default nextval of that sequence, under
// its target name; a default on any other sequence is dropped, warned.
func sequenceDefaults(rows *catalogRows, db *schema.Database) {
	created := map[schema.Name]bool{}
	for _, s := range db.Sequences {
		created[s.Name] = true
	}
	byID := map[int64]schema.Name{}
	for _, t := range rows.Tables {
		byID[t.ObjectID] = schema.Name{Schema: t.Schema, Name: t.Name}
	}
	for _, r := range rows.Columns {
		parts, ok := nextValueFor(r.DefaultDef)
		t := db.Table(byID[r.ObjectID])
		if !ok || t == nil || t.Column(r.Name) == nil {
			continue
		}
		// the catalog's sequence of that name (unqualified: only when one
		// schema has a sequence so named)
		var seq schema.Name
		matches := 0
		for _, s := range rows.Sequences {
			if strings.EqualFold(s.Name, parts[0]) && (len(parts) == 1 || strings.EqualFold(s.Schema, parts[1])) {
				seq, matches = schema.Name{Schema: s.Schema, Name: s.Name}, matches+1
			}
		}
		found := matches == 1
		target := schema.Name{Schema: db.Policy.Schema(seq.Schema), Name: db.Policy.Ident(seq.Name)}
		if !found || !created[target] {
			db.Warnings = append(db.Warnings, fmt.Sprintf("table %s column %q: default %s dropped: the run does not create that sequence", t.Source, r.Name, r.DefaultDef))
			continue
		}
		t.Column(r.Name).Default = "nextval(" + schema.QuoteLiteral(schema.QuoteName(target)) + "::regclass)"
	}
}
