package schema

import (
	"fmt"
	"strings"
)

// Type kinds.
const (
	TypeEnum      = "enum"
	TypeDomain    = "domain"
	TypeComposite = "composite"
	TypeRange     = "range"
)

// Type is a user-defined type to create on the target before the tables.
// Database.Types lists them dependencies first. References to other user
// types (a domain's base type, a composite's attribute types, a range's
// subtype) are Columns with TypeRef, mapped by NamePolicy.Apply like a
// table's columns.
type Type struct {
	Name    Name // source name until NamePolicy.Apply, then the target name
	Kind    string
	Comment string
	// Labels are an enum's labels, in order.
	Labels []string
	// Base is a domain's base type or a range's subtype.
	Base *Column
	// Domain: NOT NULL, default expression and CHECK constraints
	// ("CONSTRAINT name CHECK (...)").
	NotNull bool
	Default string
	Checks  []string
	// Attributes are a composite type's attributes (Name, Type, Collation).
	Attributes []*Column
	// Range options, "" for the default: subtype operator class and
	// collation (quoted), canonical and subtype difference functions
	// (qualified), and the multirange type's name (in the range's schema).
	Opclass     string
	Collation   string
	Canonical   string
	SubtypeDiff string
	Multirange  string
}

// Extension is an extension the source has installed (types, operators
// and functions the schema may need, e.g. citext, btree_gist).
type Extension struct {
	Name   string
	Schema string // source schema until NamePolicy.Apply, then the target's
}

// CreateType creates a user-defined type.
func CreateType(t *Type) string {
	name := QuoteName(t.Name)
	switch t.Kind {
	case TypeEnum:
		labels := make([]string, len(t.Labels))
		for i, l := range t.Labels {
			labels[i] = QuoteLiteral(l)
		}
		return fmt.Sprintf("CREATE TYPE %s AS ENUM (%s)", name, strings.Join(labels, ", "))
	case TypeDomain:
		var b strings.Builder
		fmt.Fprintf(&b, "CREATE DOMAIN %s AS %s", name, t.Base.Type)
		if t.Base.Collation != "" {
			b.WriteString(" COLLATE " + Quote(t.Base.Collation))
		}
		if t.Default != "" {
			b.WriteString(" DEFAULT " + t.Default)
		}
		if t.NotNull {
			b.WriteString(" NOT NULL")
		}
		for _, c := range t.Checks {
			b.WriteString(" " + c)
		}
		return b.String()
	case TypeComposite:
		attrs := make([]string, len(t.Attributes))
		for i, a := range t.Attributes {
			attrs[i] = Quote(a.TargetName) + " " + a.Type
			if a.Collation != "" {
				attrs[i] += " COLLATE " + Quote(a.Collation)
			}
		}
		return fmt.Sprintf("CREATE TYPE %s AS (%s)", name, strings.Join(attrs, ", "))
	case TypeRange:
		opts := []string{"SUBTYPE = " + t.Base.Type}
		for _, o := range []struct{ key, val string }{
			{"SUBTYPE_OPCLASS", t.Opclass}, {"COLLATION", t.Collation}, {"CANONICAL", t.Canonical},
			{"SUBTYPE_DIFF", t.SubtypeDiff},
		} {
			if o.val != "" {
				opts = append(opts, o.key+" = "+o.val)
			}
		}
		if t.Multirange != "" {
			opts = append(opts, "MULTIRANGE_TYPE_NAME = "+QuoteName(Name{Schema: t.Name.Schema, Name: t.Multirange}))
		}
		return fmt.Sprintf("CREATE TYPE %s AS RANGE (%s)", name, strings.Join(opts, ", "))
	}
	return ""
}

// CommentOnType sets a type's comment ("" when it has none).
func CommentOnType(t *Type) string {
	if t.Comment == "" {
		return ""
	}
	kind := "TYPE"
	if t.Kind == TypeDomain {
		kind = "DOMAIN"
	}
	return fmt.Sprintf("COMMENT ON %s %s IS %s", kind, QuoteName(t.Name), QuoteLiteral(t.Comment))
}

// TargetSchemas lists the target schemas the run's objects live in, each
// once, in a stable order.
func (db *Database) TargetSchemas() []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, s := range db.Schemas {
		add(db.Policy.Schema(s))
	}
	for _, e := range db.Extensions {
		add(e.Schema)
	}
	for _, t := range db.Types {
		add(t.Name.Schema)
	}
	for _, t := range db.Tables {
		add(t.Target.Schema)
	}
	return out
}

// CreateExtension creates an extension if the target lacks it; CASCADE
// brings the extensions it requires.
func CreateExtension(e *Extension) string {
	return fmt.Sprintf("CREATE EXTENSION IF NOT EXISTS %s WITH SCHEMA %s CASCADE", Quote(e.Name), Quote(e.Schema))
}

// Sequence is a sequence that is not an identity column's: a serial's
// (owned by its column) or a standalone one.
type Sequence struct {
	Name                              Name // source name until NamePolicy.Apply, then the target name
	Type                              string
	Start, Increment, Min, Max, Cache int64
	Cycle                             bool
	// Last is a standalone sequence's last value when it has been used:
	// the target's continues from it. An owned sequence is restarted past
	// its column's loaded values instead (SequenceResets).
	Last *int64
	// OwnedBy is the source table and column that own the sequence.
	OwnedBy       *Name
	OwnedByColumn string
}

// CreateSequence creates a sequence if missing, with the source's options,
// and gives a standalone one the source's value.
func CreateSequence(s *Sequence) []string {
	cycle := "NO CYCLE"
	if s.Cycle {
		cycle = "CYCLE"
	}
	out := []string{fmt.Sprintf("CREATE SEQUENCE IF NOT EXISTS %s AS %s INCREMENT BY %d MINVALUE %d MAXVALUE %d START WITH %d CACHE %d %s",
		QuoteName(s.Name), s.Type, s.Increment, s.Min, s.Max, s.Start, s.Cache, cycle)}
	if s.Last != nil && s.OwnedBy == nil {
		out = append(out, fmt.Sprintf("SELECT setval(%s, %d, true)", QuoteLiteral(QuoteName(s.Name)), *s.Last))
	}
	return out
}

// SequenceOwners ties sequences to the columns that own them, once the
// tables exist (a sequence whose table is not in the run stays unowned).
func (db *Database) SequenceOwners() []string {
	var out []string
	for _, s := range db.Sequences {
		if s.OwnedBy == nil {
			continue
		}
		if t := db.Table(*s.OwnedBy); t != nil {
			out = append(out, fmt.Sprintf("ALTER SEQUENCE %s OWNED BY %s.%s", QuoteName(s.Name), QuoteName(t.Target), Quote(t.TargetColumn(s.OwnedByColumn))))
		}
	}
	return out
}

// Object is an object caravan recreates from its source definition once
// every table is loaded: functions, views, triggers, policies, comments.
// Its SQL names source objects, so it is only migrated when the name
// policy keeps every name (NamesKept); otherwise it is listed Unmigrated.
type Object struct {
	Kind string // "function", "view", "materialized view", "trigger", "policy", ...
	Name string // qualified source name, as plan and report show it
	SQL  []string
	// Mapped says the SQL already uses target names (built from the model).
	Mapped bool
	// Roles are the roles it names (a policy's): the target must have them.
	Roles []string
	// Needs names the objects of the same list it uses (created before
	// it): when one of them is not created, neither is this one.
	Needs []string `json:",omitempty"`
}

// RowSecuritySQL switches row-level security on where the source has it,
// once the rows are in.
func (db *Database) RowSecuritySQL() []string {
	var out []string
	for _, t := range db.Tables {
		if t.RowSecurity {
			out = append(out, "ALTER TABLE "+QuoteName(t.Target)+" ENABLE ROW LEVEL SECURITY")
		}
		if t.ForceRowSecurity {
			out = append(out, "ALTER TABLE "+QuoteName(t.Target)+" FORCE ROW LEVEL SECURITY")
		}
	}
	return out
}

// Unmigrated is an object caravan does not migrate, and why.
type Unmigrated struct {
	Kind   string
	Name   string
	Reason string
	// Definition is the source's text of the object ("" when the source
	// has none to give), for the person who rewrites it (--objects-dir).
	Definition string `json:"-"`
}

// Key is what --accept-unmigrated globs match: "kind:name".
func (u *Unmigrated) Key() string { return u.Kind + ":" + u.Name }

// NamesKept says whether every name of the run is the same on the target,
// so SQL text taken from the source (a view's query, a function's body)
// means the same there.
func (db *Database) NamesKept() bool {
	for _, s := range db.Schemas {
		if db.Policy.Schema(s) != s {
			return false
		}
	}
	for _, t := range db.Tables {
		if t.Target != t.Source {
			return false
		}
		for _, c := range t.Columns {
			if c.TargetName != c.Name {
				return false
			}
		}
	}
	for _, s := range db.Sequences {
		if db.Policy.Ident(s.Name.Name) != s.Name.Name {
			return false
		}
	}
	return true
}

// KeepVerbatimObjects moves objects whose SQL names source objects to
// Unmigrated when the name policy changed names: their text would name
// objects the target does not have.
func (db *Database) KeepVerbatimObjects() {
	if db.NamesKept() {
		return
	}
	kept := db.Objects[:0]
	for _, o := range db.Objects {
		if o.Mapped {
			kept = append(kept, o)
			continue
		}
		db.Unmigrated = append(db.Unmigrated, &Unmigrated{Kind: o.Kind, Name: o.Name,
			Reason: "its SQL text names source objects, and the name policy (--name-case, --schema-map) renames them on the target"})
	}
	db.Objects = kept
	// Owners and grants name source objects too; they are only migrated
	// on request, and then were not asked in vain without a word.
	seen := map[string]bool{}
	for _, p := range db.Privileges {
		if !seen[p.Kind+p.Name] {
			seen[p.Kind+p.Name] = true
			db.Warnings = append(db.Warnings, fmt.Sprintf("%s %s: owner and grants are not migrated (--owners-and-grants): the name policy renames objects", p.Kind, p.Name))
		}
	}
	db.Privileges = nil
}

// Privilege is one statement that gives an object its source owner or
// grants (migrated only when the run asks for owners and grants). Role is
// the role it needs on the target, "" for PUBLIC.
type Privilege struct {
	Kind string // of the object: "table", "function", ...
	Name string
	Role string
	SQL  string
}
