// Package schema is caravan's neutral model of a database (tables, columns,
// types, keys, indexes, foreign keys), the policy that turns source names
// into PostgreSQL names, and the DDL that creates the model in PostgreSQL.
// Sources fill the model with target types already chosen (each source knows
// its own types best); everything after discovery works on the model alone.
package schema

import (
	"fmt"
	"strings"
)

// Name is a qualified name.
type Name struct {
	Schema string
	Name   string
}

func (n Name) String() string { return n.Schema + "." + n.Name }

// Database is everything discovered in a source.
type Database struct {
	Tables []*Table
	// Types are the user-defined types, dependencies first.
	Types      []*Type
	Extensions []*Extension
	// Sequences are created before the tables (column defaults use them).
	Sequences []*Sequence
	// Objects are created after every table is loaded, in order.
	Objects []*Object
	// Views are created with the tables, in order, before any row is
	// copied: a source's views translated to target names (SQL Server's).
	// One the target refuses is moved to Unmigrated before the run starts.
	Views []*Object
	// Privileges give the run's objects their source owners and grants,
	// after the objects, when the run asks for them.
	Privileges []*Privilege
	// Unmigrated lists what caravan does not migrate: plan and the report
	// show it, and a run refuses to start until the user accepts each.
	Unmigrated []*Unmigrated
	// Schemas are the source schemas of the run (created on the target even
	// when they hold no table).
	Schemas []string
	// Warnings are things the user should know before running: dropped
	// defaults, lossy types, names that had to change.
	Warnings []string
	// Policy is the name policy Apply used; DDL maps names through it.
	Policy NamePolicy
	// Translate, when the source sets it, is the source's work that needs
	// the target names: it turns SQL text it kept (SQL Server views) into
	// target SQL. Apply calls it once every name is mapped.
	Translate func(db *Database) `json:"-"`
}

// ParentsFirst orders the tables so that every table comes after the
// tables it inherits from or is a partition of (they must exist when it is
// created), keeping the order otherwise.
func (db *Database) ParentsFirst() {
	bySource := map[Name]*Table{}
	for _, t := range db.Tables {
		bySource[t.Source] = t
	}
	placed := map[*Table]bool{}
	out := make([]*Table, 0, len(db.Tables))
	var place func(t *Table)
	place = func(t *Table) {
		if placed[t] {
			return
		}
		placed[t] = true
		for _, p := range t.parents() {
			if pt := bySource[p]; pt != nil {
				place(pt)
			}
		}
		out = append(out, t)
	}
	for _, t := range db.Tables {
		place(t)
	}
	db.Tables = out
}

func (t *Table) parents() []Name {
	if t.PartitionOf != nil {
		return []Name{*t.PartitionOf}
	}
	return t.Inherits
}

// Children returns a table's partitions and inheritance children.
func (db *Database) Children(t *Table) []*Table {
	var out []*Table
	for _, c := range db.Tables {
		for _, p := range c.parents() {
			if p == t.Source {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// Table returns the table of a source name, or nil.
func (db *Database) Table(source Name) *Table {
	for _, t := range db.Tables {
		if t.Source == source {
			return t
		}
	}
	return nil
}

// Table is one source table and the target table it becomes.
type Table struct {
	Source  Name
	Target  Name
	Columns []*Column
	// PrimaryKey holds source column names in key order; empty for a keyless
	// table.
	PrimaryKey     []string
	PrimaryKeyName string
	// PrimaryKeyTarget is the target constraint (and index) name, set by
	// NamePolicy.Apply; "" lets PostgreSQL choose.
	PrimaryKeyTarget string
	Uniques          []*Index // unique constraints (not plain unique indexes)
	Indexes          []*Index
	// Checks are check and exclusion constraints (PostgreSQL-valid checks
	// only; others are warned about).
	Checks      []*Check
	ForeignKeys []*ForeignKey
	Comment     string
	// RowEstimate is the catalog's row estimate, for planning and progress.
	RowEstimate int64
	// SizeBytes is the source's estimate of the table's size (0: unknown):
	// a run reads the largest tables first, so the longest one does not
	// start last and hold up the end of the run.
	SizeBytes int64
	// RangeSafe says PostgreSQL puts exactly the rows of a source key range
	// into the same range on the target (same ordering rules), so the
	// validator may re-select a chunk on the target. False when the source
	// orders keys differently (SQL Server collations, uniqueidentifier).
	RangeSafe bool
	// Inherits names the parents (source names, in order) of a table that
	// inherits (INHERITS); only the columns it declares itself are created
	// with it, the others come from its parents.
	Inherits []Name
	// PartitionOf names the partitioned table (source name) this one is a
	// partition of, and PartitionBound its "FOR VALUES ..." (or "DEFAULT").
	PartitionOf    *Name
	PartitionBound string
	// PartitionKey is a partitioned table's partition key ("RANGE (at)"):
	// such a table holds no rows of its own, its partitions do.
	PartitionKey string
	// RowSecurity and ForceRowSecurity are ALTER TABLE ... ENABLE / FORCE
	// ROW LEVEL SECURITY, switched on after the load.
	RowSecurity      bool
	ForceRowSecurity bool
	// KeyInherited says the primary key is the partitioned parent's: it
	// orders and chunks the partition's rows, but the parent creates it.
	KeyInherited bool
	// Encoding is the row encoding the run moves, loads and digests the
	// table's rows in (proto.EncodingCopyText or EncodingCopyBinary; ""
	// is text), chosen at planning (coordinator.ChooseEncodings) and read
	// back from the recorded model by the validator, resume and sync, so a
	// digest is always compared with one of the same encoding.
	Encoding string
}

// Partitioned says the table is partitioned: its rows live in its
// partitions, each a table of its own.
func (t *Table) Partitioned() bool { return t.PartitionKey != "" }

// Column is one column.
type Column struct {
	Name       string // source name
	TargetName string
	SourceType string // as the source spells it, e.g. "numeric(10,2)", "datetime2(7)"
	Type       string // target PostgreSQL type, SQL text, e.g. "numeric(10,2)", "integer[]"
	// TypeRef names a user type (enum or domain) by its SOURCE name; Apply
	// then sets Type to its quoted target name plus ArrayDims "[]".
	TypeRef   *Name
	ArrayDims int
	Nullable  bool
	// Default is a PostgreSQL expression, already translated; "" for none.
	Default   string
	Identity  *Identity
	Sequence  string // a serial's sequence, target-qualified; its nextval is the default
	Collation string // target collation name, "" for the database default
	Generated string // PostgreSQL expression of a STORED generated column
	Comment   string
	// Inherited says the column comes from a parent table (INHERITS) and is
	// not declared by the table itself.
	Inherited bool
	// BinaryCopy says the source can send the column in PostgreSQL's binary
	// COPY format and a target column of SourceType accepts it as is: a
	// built-in type (or an array of one) whose send format embeds nothing
	// database-specific, from a source whose text needs no policy. Set by
	// the PostgreSQL source only.
	BinaryCopy bool
}

// Identity describes an identity column.
type Identity struct {
	Always    bool
	Start     int64
	Increment int64
}

// Index is an index or a unique constraint.
type Index struct {
	Name string // source name
	// TargetName is set by NamePolicy.Apply: Ident(Name), or a longer name
	// when that one is taken, since PostgreSQL index names are unique per
	// schema and SQL Server's only per table.
	TargetName string
	Unique     bool
	Method     string // btree, gin, ...; "" for btree
	Columns    []IndexColumn
	Include    []string // source column names
	// Where is a partial index's predicate as PostgreSQL SQL text, "" for none.
	Where string
}

// IndexColumn is one key of an index: a column or an expression.
type IndexColumn struct {
	Column string // source column name; "" when Expr is set
	Expr   string // PostgreSQL expression (PostgreSQL sources only)
	// Opclass is a non-default operator class, quoted and qualified.
	Opclass string
	Desc    bool
	// NullsFirst is set when the order differs from PostgreSQL's default
	// (NULLS LAST ascending, NULLS FIRST descending).
	NullsOrder string // "", "NULLS FIRST" or "NULLS LAST"
}

// Check is a check constraint.
type Check struct {
	Name string
	Expr string // PostgreSQL: "CHECK (...)", "EXCLUDE USING gist (...)"
}

// ForeignKey is a foreign key from Table to RefTable.
type ForeignKey struct {
	Name       string   // source name
	Columns    []string // source column names
	RefTable   Name     // source name of the referenced table
	RefColumns []string // source column names of the referenced table
	OnDelete   string   // "NO ACTION", "CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT"
	OnUpdate   string
}

// ID is the stable id of a table in caravan's state and messages: its
// qualified target name.
func (t *Table) ID() string { return t.Target.String() }

// Column returns the column of the given source name.
func (t *Table) Column(name string) *Column {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// KeyColumns returns the primary-key columns, in key order.
func (t *Table) KeyColumns() ([]*Column, error) {
	out := make([]*Column, 0, len(t.PrimaryKey))
	for _, k := range t.PrimaryKey {
		c := t.Column(k)
		if c == nil {
			return nil, fmt.Errorf("table %s: primary key column %q not found", t.Source, k)
		}
		out = append(out, c)
	}
	return out, nil
}

// LoadColumns returns the columns that receive data: every column but
// generated ones, which PostgreSQL computes itself.
func (t *Table) LoadColumns() []*Column {
	out := make([]*Column, 0, len(t.Columns))
	for _, c := range t.Columns {
		if c.Generated == "" {
			out = append(out, c)
		}
	}
	return out
}

// TargetColumn maps a source column name to its target name.
func (t *Table) TargetColumn(source string) string {
	if c := t.Column(source); c != nil {
		return c.TargetName
	}
	return source
}

// Filter selects tables by glob patterns over "schema.table" (or "table",
// matched against the name alone).
type Filter struct {
	Include []string
	Exclude []string
}

// Match says whether a source table passes the filter.
func (f Filter) Match(n Name) bool {
	if len(f.Include) > 0 && !matchAny(f.Include, n) {
		return false
	}
	return !matchAny(f.Exclude, n)
}

func matchAny(patterns []string, n Name) bool {
	for _, p := range patterns {
		subject := n.Name
		if strings.Contains(p, ".") {
			subject = n.String()
		}
		if globMatch(p, subject) {
			return true
		}
	}
	return false
}
