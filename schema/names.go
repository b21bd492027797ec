package schema

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// MaxIdentifierBytes is PostgreSQL's NAMEDATALEN-1: longer names are
// silently truncated by the server, so caravan truncates them itself and
// checks the result for collisions before creating anything.
const MaxIdentifierBytes = 63

// Case modes of a NamePolicy.
const (
	CasePreserve = "preserve"
	CaseLower    = "lower"
)

// NamePolicy turns source names into target names.
type NamePolicy struct {
	Case string // CasePreserve or CaseLower
	// SchemaMap maps source schema names to target schema names; a source
	// schema not in the map keeps its (case-mapped) name.
	SchemaMap map[string]string
}

// Ident maps one source identifier to its target form.
func (p NamePolicy) Ident(s string) string {
	if p.Case == CaseLower {
		s = strings.ToLower(s)
	}
	return truncateIdent(s)
}

// Schema maps a source schema name.
func (p NamePolicy) Schema(s string) string {
	if t, ok := p.SchemaMap[s]; ok {
		return t
	}
	return p.Ident(s)
}

func truncateIdent(s string) string {
	if len(s) <= MaxIdentifierBytes {
		return s
	}
	cut := MaxIdentifierBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Apply fills every target name of db (tables, columns, indexes, foreign
// keys' references) and returns an error listing every collision: two
// source names that map to one target name would otherwise fail half-way
// through a run, or worse, merge.
func (p NamePolicy) Apply(db *Database) error {
	var problems []string
	tables := map[string]Name{}
	bySource := map[Name]Name{}
	for _, t := range db.Tables {
		t.Target = Name{Schema: p.Schema(t.Source.Schema), Name: p.Ident(t.Source.Name)}
		key := t.Target.String()
		if prev, ok := tables[key]; ok {
			problems = append(problems, fmt.Sprintf("tables %s and %s both become %s", prev, t.Source, quoteName(t.Target)))
		}
		tables[key] = t.Source
		bySource[t.Source] = t.Target
		if len(t.Source.Name) > MaxIdentifierBytes && p.Ident(t.Source.Name) != t.Source.Name {
			db.Warnings = append(db.Warnings, fmt.Sprintf("table %s: name longer than %d bytes, truncated to %q", t.Source, MaxIdentifierBytes, t.Target.Name))
		}
		cols := map[string]string{}
		for _, c := range t.Columns {
			p.mapColumn(c)
			if prev, ok := cols[c.TargetName]; ok {
				problems = append(problems, fmt.Sprintf("table %s: columns %q and %q both become %q", t.Source, prev, c.Name, c.TargetName))
			}
			cols[c.TargetName] = c.Name
		}
	}
	for _, t := range db.Tables {
		kept := t.ForeignKeys[:0]
		for _, fk := range t.ForeignKeys {
			if _, ok := bySource[fk.RefTable]; !ok {
				db.Warnings = append(db.Warnings, fmt.Sprintf("table %s: foreign key %q skipped: it references %s, which is not part of this run", t.Source, fk.Name, fk.RefTable))
				continue
			}
			kept = append(kept, fk)
		}
		t.ForeignKeys = kept
	}
	for _, ty := range db.Types {
		ty.Name = Name{Schema: p.Schema(ty.Name.Schema), Name: p.Ident(ty.Name.Name)}
		if ty.Multirange != "" {
			ty.Multirange = p.Ident(ty.Multirange)
		}
		if ty.Base != nil {
			p.mapColumn(ty.Base)
		}
		for _, a := range ty.Attributes {
			p.mapColumn(a)
		}
	}
	for _, e := range db.Extensions {
		e.Schema = p.Schema(e.Schema)
	}
	for _, s := range db.Sequences {
		s.Name = Name{Schema: p.Schema(s.Name.Schema), Name: p.Ident(s.Name.Name)}
	}
	p.nameIndexes(db)
	db.Policy = p
	sort.Strings(problems)
	if len(problems) > 0 {
		return fmt.Errorf("name collisions on the target:\n  %s", strings.Join(problems, "\n  "))
	}
	if db.Translate != nil {
		db.Translate(db)
	}
	return nil
}

// mapColumn sets a column's (or a type reference's) target name, and its
// type's when it is a user type.
func (p NamePolicy) mapColumn(c *Column) {
	if c.TypeRef != nil {
		ref := Name{Schema: p.Schema(c.TypeRef.Schema), Name: p.Ident(c.TypeRef.Name)}
		c.Type = QuoteName(ref) + strings.Repeat("[]", c.ArrayDims)
	}
	c.TargetName = p.Ident(c.Name)
}

// nameIndexes gives every index-backed name (primary keys, unique
// constraints, indexes) a target name unique among the relations of its
// schema: PostgreSQL keeps tables, indexes and sequences in one namespace
// per schema, where SQL Server scopes index names to their table.
func (p NamePolicy) nameIndexes(db *Database) {
	taken := map[string]bool{}
	key := func(schemaName, name string) string { return schemaName + "\x00" + name }
	for _, t := range db.Tables {
		taken[key(t.Target.Schema, t.Target.Name)] = true
		for _, c := range t.Columns {
			if c.Sequence != "" {
				taken[key(t.Target.Schema, c.Sequence)] = true
			}
		}
	}
	claim := func(t *Table, source string) string {
		name := p.Ident(source)
		if !taken[key(t.Target.Schema, name)] {
			taken[key(t.Target.Schema, name)] = true
			return name
		}
		base := truncateIdent(t.Target.Name + "_" + name)
		candidate := base
		for i := 2; taken[key(t.Target.Schema, candidate)]; i++ {
			suffix := fmt.Sprintf("_%d", i)
			candidate = truncateIdent(base[:min(len(base), MaxIdentifierBytes-len(suffix))] + suffix)
		}
		taken[key(t.Target.Schema, candidate)] = true
		db.Warnings = append(db.Warnings, fmt.Sprintf("table %s: index %q renamed %q: its name is taken in schema %s", t.Source, source, candidate, t.Target.Schema))
		return candidate
	}
	for _, t := range db.Tables {
		if t.PrimaryKeyName != "" {
			t.PrimaryKeyTarget = claim(t, t.PrimaryKeyName)
		}
		for _, ix := range t.Uniques {
			ix.TargetName = claim(t, ix.Name)
		}
		for _, ix := range t.Indexes {
			ix.TargetName = claim(t, ix.Name)
		}
	}
}

// Quote quotes an identifier for PostgreSQL.
func Quote(s string) string { return pgx.Identifier{s}.Sanitize() }

// QuoteName quotes a qualified name.
func QuoteName(n Name) string { return pgx.Identifier{n.Schema, n.Name}.Sanitize() }

func quoteName(n Name) string { return QuoteName(n) }

func globMatch(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	if err != nil {
		return pattern == s
	}
	return ok
}
