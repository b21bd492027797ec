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
