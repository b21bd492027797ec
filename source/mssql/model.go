package mssql

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/caravan-db/caravan/schema"
)

// buildModel turns catalog rows into the schema model: target types
// chosen, defaults and checks translated (or dropped with a warning), and
// nothing mapped to target names yet except inside translated expressions,
// which use names (the policy caravan's coordinator is given by default).
func buildModel(rows *catalogRows, filter schema.Filter, opts Options, names schema.NamePolicy) (*schema.Database, error) {
	db := &schema.Database{}
	byID := map[int64]*schema.Table{}
	idOf := map[*schema.Table]int64{}
	types := map[int64]map[string]*columnInfo{}
	warn := func(format string, args ...any) { db.Warnings = append(db.Warnings, fmt.Sprintf(format, args...)) }

	for _, r := range rows.Tables {
		n := schema.Name{Schema: r.Schema, Name: r.Name}
		if !filter.Match(n) {
			continue
		}
		t := &schema.Table{Source: n, RowEstimate: r.Rows, Comment: r.Comment}
		db.Tables = append(db.Tables, t)
		byID[r.ObjectID] = t
		idOf[t] = r.ObjectID
		types[r.ObjectID] = map[string]*columnInfo{}
	}

	for _, r := range rows.Columns {
		t := byID[r.ObjectID]
		if t == nil {
			continue
		}
		if r.ColumnSet {
			warn("table %s: column set %q skipped: its sparse columns are migrated one by one", t.Source, r.Name)
			continue
		}
		c, err := buildColumn(t, r, opts, warn)
		if err != nil {
			return nil, err
		}
		st, _ := parseSQLType(c.SourceType)
		types[r.ObjectID][r.Name] = &columnInfo{Name: r.Name, Type: st}
		t.Columns = append(t.Columns, c)
	}
	// a second pass: defaults need nothing else, but checks and filters
	// need every column's type
	for _, r := range rows.Columns {
		t := byID[r.ObjectID]
		if t == nil || r.ColumnSet || r.DefaultDef == "" {
			continue
		}
		if _, ok := nextValueFor(r.DefaultDef); ok {
			continue // sequenceDefaults, once the sequences' target names are known
		}
		c := t.Column(r.Name)
		k, _ := parsePGType(c.Type)
		pg, note, ok := translateDefault(r.DefaultDef, types[r.ObjectID][r.Name].Type, k)
		if !ok || note != "" {
			warn("table %s column %q: %s", t.Source, r.Name, note)
		}
		if c.Identity == nil {
			c.Default = pg
		}
	}

	for _, r := range rows.Columns {
		if t := byID[r.ObjectID]; t != nil && r.Computed && !r.ColumnSet {
			buildComputed(t, r, types[r.ObjectID], opts, names, warn)
		}
	}

	buildIndexes(rows.Indexes, byID, types, names, warn)
	buildForeignKeys(rows.FKs, byID, warn)
	buildChecks(rows.Checks, byID, types, names, warn)

	for _, t := range db.Tables {
		if len(t.PrimaryKey) == 0 {
			warn("table %s has no primary key: read in one chunk (the plan says in which order), and the validator cannot check keys", t.Source)
			continue
		}
		t.RangeSafe = rangeSafe(t, types[idOf[t]])
		for _, k := range t.PrimaryKey {
			if st := types[idOf[t]][k]; st != nil && !st.Type.keyable() {
				warn("table %s: key column %q of type %s cannot bound a range: the table is read in one chunk", t.Source, k, st.Type)
			}
		}
	}
	return db, nil
}

// buildComputed makes a computed column GENERATED when the user asked
// for it and its expression translates; otherwise its values are copied.
func buildComputed(t *schema.Table, r columnRow, cols map[string]*columnInfo, opts Options, names schema.NamePolicy, warn func(string, ...any)) {
	const copied = "loaded as a plain column holding SQL Server's computed values"
	if opts.Computed != ComputedGenerated {
		warn("table %s column %q: computed column (%s) %s (--computed generated translates the simple ones)", t.Source, r.Name, r.ComputedDef, copied)
		return
	}
	if _, overridden := opts.TypeOverrides[t.Source.Schema+"."+t.Source.Name+"."+r.Name]; overridden {
		warn("table %s column %q: computed column (%s) with a type override %s", t.Source, r.Name, r.ComputedDef, copied)
		return
	}
	pg, err := translateComputed(r.ComputedDef, cols, names)
	if err != nil {
		warn("table %s column %q: computed column (%s) not translated (%v): %s", t.Source, r.Name, r.ComputedDef, err, copied)
		return
	}
	t.Column(r.Name).Generated = pg
}

// buildColumn maps one column and its type.
func buildColumn(t *schema.Table, r columnRow, opts Options, warn func(string, ...any)) (*schema.Column, error) {
	st, err := typeFromCatalog(r.BaseType, r.MaxLength, r.Precision, r.Scale, r.Collation)
	if err != nil {
		return nil, fmt.Errorf("table %s column %q: %w (exclude the table, or override the column's type)", t.Source, r.Name, err)
	}
	c := &schema.Column{
		Name:       r.Name,
		SourceType: st.String(),
		Nullable:   r.Nullable,
		Comment:    r.Comment,
	}
	pg := defaultPGType(st, opts.PostGIS)
	key := t.Source.Schema + "." + t.Source.Name + "." + r.Name
	override, overridden := opts.TypeOverrides[key]
	if overridden {
		pg = override
	}
	if r.Identity {
		id, newType, note := identityOf(st, r.Seed, r.Increment, overridden)
		if note != "" {
			warn("table %s column %q: %s", t.Source, r.Name, note)
		}
		c.Identity = id
		if newType != "" {
			pg = newType
		}
	}
	k, err := parsePGType(pg)
	if err != nil {
		return nil, fmt.Errorf("table %s column %q: %w", t.Source, r.Name, err)
	}
	if !compatible(st, k) {
		return nil, fmt.Errorf("table %s column %q: caravan cannot convert %s values to %s (see docs/TYPES.md for the overrides it supports)", t.Source, r.Name, st, pg)
	}
	c.Type = pg
	if r.Alias != "" {
		warn("table %s column %q: alias type %s resolved to its base type %s", t.Source, r.Name, r.Alias, st)
	}
	if overridden {
		return c, nil
	}
	switch st.Name {
	case "datetimeoffset":
		warn("table %s column %q: datetimeoffset becomes timestamptz: the instant is kept, the original offset is not", t.Source, r.Name)
	case "sql_variant":
		warn("table %s column %q: sql_variant becomes text: values keep their text, not their base types", t.Source, r.Name)
	case "hierarchyid":
		warn("table %s column %q: hierarchyid becomes its ToString() path as text: text order is not hierarchy order", t.Source, r.Name)
	case "geography", "geometry":
		if !opts.PostGIS {
			warn("table %s column %q: %s becomes WKT text (enable PostGIS on the target for geometry)", t.Source, r.Name, st.Name)
		}
	case "rowversion":
		warn("table %s column %q: rowversion becomes bytea holding the source values; PostgreSQL does not maintain it", t.Source, r.Name)
	case "time", "datetime2":
		if st.Scale == 7 {
			warn("table %s column %q: %s has 100 ns precision; PostgreSQL keeps microseconds (rounded half to even)", t.Source, r.Name, st)
		}
	}
	return c, nil
}

// identityOf reads identity seed and increment. PostgreSQL identity needs
// an integer type: a decimal(p,0) identity becomes bigint when it fits.
func identityOf(st sqlType, seed, inc string, overridden bool) (*schema.Identity, string, string) {
	start, err1 := strconv.ParseInt(strings.TrimSuffix(seed, ".0"), 10, 64)
	step, err2 := strconv.ParseInt(strings.TrimSuffix(inc, ".0"), 10, 64)
	if err1 != nil || err2 != nil {
		return nil, "", fmt.Sprintf("identity (%s, %s) does not fit bigint: loaded as a plain column", seed, inc)
	}
	id := &schema.Identity{Start: start, Increment: step}
	switch st.Name {
	case "tinyint", "smallint", "int", "bigint":
		return id, "", ""
	case "decimal", "numeric":
		if overridden {
			return id, "", ""
		}
		if st.Scale == 0 && st.Precision <= 18 {
			return id, "bigint", fmt.Sprintf("%s identity becomes bigint identity: PostgreSQL identities are integers", st)
		}
	}
	return nil, "", fmt.Sprintf("%s identity cannot be a PostgreSQL identity: loaded as a plain column", st)
}

type indexKey struct {
	object int64
	index  int
}

func buildIndexes(rows []indexRow, byID map[int64]*schema.Table, types map[int64]map[string]*columnInfo, names schema.NamePolicy, warn func(string, ...any)) {
	groups := map[indexKey][]indexRow{}
	var order []indexKey
	for _, r := range rows {
		if byID[r.ObjectID] == nil {
			continue
		}
		k := indexKey{r.ObjectID, r.IndexID}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	for _, k := range order {
		g := groups[k]
		t := byID[k.object]
		h := g[0]
		switch {
		case h.Disabled:
			warn("table %s: index %q is disabled in SQL Server and is not created", t.Source, h.Name)
			continue
		case h.Type == 3 || h.Type == 4 || h.Type == 5 || h.Type == 6:
			kind := map[int]string{3: "XML", 4: "spatial", 5: "clustered columnstore", 6: "columnstore"}[h.Type]
			warn("table %s: %s index %q has no PostgreSQL equivalent and is not created", t.Source, kind, h.Name)
			continue
		}
		if h.PrimaryKey {
			t.PrimaryKeyName = h.Name
			for _, r := range g {
				if !r.Included {
					t.PrimaryKey = append(t.PrimaryKey, r.Column)
				}
			}
			continue
		}
		ix := &schema.Index{Name: h.Name, Unique: h.Unique}
		for _, r := range g {
			if r.Included {
				ix.Include = append(ix.Include, r.Column)
				continue
			}
			ix.Columns = append(ix.Columns, schema.IndexColumn{Column: r.Column, Desc: r.Desc})
		}
		if h.UniqueConstraint {
			t.Uniques = append(t.Uniques, ix)
			continue
		}
		if h.Filter != "" {
			tr := &exprTranslator{cols: types[k.object], policy: names}
			where, err := tr.translate(stripParens(h.Filter))
			switch {
			case err == nil:
				ix.Where = where
			case ix.Unique:
				warn("table %s: unique filtered index %q not created: its filter %s is not translatable (%v)", t.Source, h.Name, h.Filter, err)
				continue
			default:
				warn("table %s: filtered index %q created without its filter %s (%v)", t.Source, h.Name, h.Filter, err)
			}
		}
		t.Indexes = append(t.Indexes, ix)
	}
}

var fkActions = map[int]string{0: "NO ACTION", 1: "CASCADE", 2: "SET NULL", 3: "SET DEFAULT"}

func buildForeignKeys(rows []fkRow, byID map[int64]*schema.Table, warn func(string, ...any)) {
	byFK := map[int64]*schema.ForeignKey{}
	for _, r := range rows {
		t := byID[r.ParentID]
		if t == nil {
			continue
		}
		fk := byFK[r.ObjectID]
		if fk == nil {
			if r.Disabled {
				warn("table %s: foreign key %q is disabled in SQL Server and is not created", t.Source, r.Name)
				byFK[r.ObjectID] = &schema.ForeignKey{} // remember, skip its other rows
				continue
			}
			fk = &schema.ForeignKey{
				Name:     r.Name,
				RefTable: schema.Name{Schema: r.RefSchema, Name: r.RefTable},
				OnDelete: fkActions[r.OnDelete],
				OnUpdate: fkActions[r.OnUpdate],
			}
			if r.NotTrusted {
				warn("table %s: foreign key %q is not trusted in SQL Server: existing rows may violate it, and validating it on PostgreSQL may fail", t.Source, r.Name)
			}
			byFK[r.ObjectID] = fk
			t.ForeignKeys = append(t.ForeignKeys, fk)
		}
		if fk.Name == "" {
			continue
		}
		fk.Columns = append(fk.Columns, r.Column)
		fk.RefColumns = append(fk.RefColumns, r.RefColumn)
	}
}

func buildChecks(rows []checkRow, byID map[int64]*schema.Table, types map[int64]map[string]*columnInfo, names schema.NamePolicy, warn func(string, ...any)) {
	for _, r := range rows {
		t := byID[r.ParentID]
		if t == nil {
			continue
		}
		if r.Disabled || r.NotTrusted {
			warn("table %s: check %q is disabled or not trusted in SQL Server (rows may violate it) and is not created", t.Source, r.Name)
			continue
		}
		tr := &exprTranslator{cols: types[r.ParentID], policy: names}
		e, err := tr.translate(stripParens(r.Definition))
		if err != nil {
			warn("table %s: check %q %s not created: %v", t.Source, r.Name, r.Definition, err)
			continue
		}
		t.Checks = append(t.Checks, &schema.Check{Name: r.Name, Expr: "CHECK (" + e + ")"})
	}
	for _, t := range byID {
		// catalog order is by name already; sorting keeps plans stable
		// whatever order the rows came in
		sort.SliceStable(t.Checks, func(i, j int) bool { return t.Checks[i].Name < t.Checks[j].Name })
	}
}

// rangeSafe says whether PostgreSQL puts a table's rows in the same key
// ranges as SQL Server does: when every key column is an integer on both
// sides, whose order no collation or byte order changes. Then the
// validator, verify and sync re-select a chunk's range on the target, and
// sync compares a changed chunk part by part (proto.Parts). Any other key
// (text in a collation, uniqueidentifier, a key column of another type
// or overridden to one, a computed key generated on the target) keeps its
// table compared whole.
func rangeSafe(t *schema.Table, types map[string]*columnInfo) bool {
	for _, k := range t.PrimaryKey {
		st, c := types[k], t.Column(k)
		if st == nil || c == nil || !st.Type.isInteger() || c.Generated != "" {
			return false // a generated key is not loaded: sync could not diff by it
		}
		switch c.Type {
		case "smallint", "integer", "bigint":
		default:
			return false
		}
	}
	return len(t.PrimaryKey) > 0
}
