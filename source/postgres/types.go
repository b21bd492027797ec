package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/caravan-db/caravan/schema"
)

// userTypeRef names a user-defined type (enum, domain, composite, range
// or multirange outside pg_catalog), or returns nil for a built-in or base
// type, which is written as format_type prints it.
func userTypeRef(typtype, typSchema, typName string) *schema.Name {
	switch typtype {
	case "e", "d", "c", "r", "m":
		if typSchema == "pg_catalog" || typSchema == "information_schema" {
			return nil
		}
		return &schema.Name{Schema: typSchema, Name: typName}
	}
	return nil
}

type typeRow struct {
	OID     int64
	Schema  string
	Name    string
	Kind    string
	Comment string
	Deps    []int64 // the user types it is built from
}

var typeKinds = map[string]string{"e": schema.TypeEnum, "d": schema.TypeDomain, "c": schema.TypeComposite, "r": schema.TypeRange}

// discoverTypes reads the user-defined types of the run's schemas and those
// the tables use, with the types they are built from, and lists them
// dependencies first. Types an extension owns come with the extension.
func discoverTypes(ctx context.Context, q querier, used map[schema.Name]bool, db *schema.Database) error {
	rows, err := q.Query(ctx, `SELECT t.oid::bigint, n.nspname, t.typname, t.typtype::text, coalesce(obj_description(t.oid, 'pg_type'), ''),
			ARRAY(SELECT DISTINCT CASE WHEN rt.typcategory = 'A' AND rt.typelem <> 0 THEN rt.typelem ELSE rt.oid END::bigint
				FROM pg_depend d JOIN pg_type rt ON rt.oid = d.refobjid
				WHERE d.refclassid = 'pg_type'::regclass AND d.deptype = 'n'
				  AND ((d.classid = 'pg_type'::regclass AND d.objid = t.oid)
				    OR (t.typrelid <> 0 AND d.classid = 'pg_class'::regclass AND d.objid = t.typrelid)))
		FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		LEFT JOIN pg_class rc ON rc.oid = t.typrelid
		WHERE t.typtype IN ('e', 'd', 'c', 'r') AND (t.typtype <> 'c' OR rc.relkind = 'c')
		  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_type'::regclass AND e.objid = t.oid AND e.deptype = 'e')
		  AND `+schemaFilter+`
		ORDER BY n.nspname, t.typname`)
	if err != nil {
		return fmt.Errorf("list types: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[typeRow])
	if err != nil {
		return fmt.Errorf("list types: %w", err)
	}
	inRun := map[string]bool{}
	for _, s := range db.Schemas {
		inRun[s] = true
	}
	byOID := map[int64]typeRow{}
	for _, r := range found {
		byOID[r.OID] = r
	}
	placed := map[int64]bool{}
	var order []typeRow
	var place func(r typeRow)
	place = func(r typeRow) {
		if placed[r.OID] {
			return
		}
		placed[r.OID] = true
		for _, d := range r.Deps {
			if dep, ok := byOID[d]; ok {
				place(dep)
			}
		}
		order = append(order, r)
	}
	for _, r := range found {
		if inRun[r.Schema] || used[schema.Name{Schema: r.Schema, Name: r.Name}] {
			place(r)
		}
	}
	for _, r := range order {
		t := &schema.Type{Name: schema.Name{Schema: r.Schema, Name: r.Name}, Kind: typeKinds[r.Kind], Comment: r.Comment}
		if err := readType(ctx, q, uint32(r.OID), t); err != nil {
			return fmt.Errorf("read %s type %s: %w", t.Kind, t.Name, err)
		}
		db.Types = append(db.Types, t)
	}
	return nil
}

// typeRefSQL describes the type of oid $1 and typmod $2 as a column: its
// SQL text and, for a user type, what it refers to.
const typeRefSQL = `SELECT format_type(ty.oid, $2), bt.typtype::text, btn.nspname, bt.typname, ty.typcategory = 'A' AND ty.typelem <> 0
	FROM pg_type ty
	JOIN pg_type bt ON bt.oid = CASE WHEN ty.typcategory = 'A' AND ty.typelem <> 0 THEN ty.typelem ELSE ty.oid END
	JOIN pg_namespace btn ON btn.oid = bt.typnamespace
	WHERE ty.oid = $1`

func typeColumn(ctx context.Context, q querier, oid uint32, typmod int32) (*schema.Column, error) {
	var c schema.Column
	var typtype, typSchema, typName string
	var isArray bool
	if err := q.QueryRow(ctx, typeRefSQL, oid, typmod).Scan(&c.Type, &typtype, &typSchema, &typName, &isArray); err != nil {
		return nil, err
	}
	c.SourceType = c.Type
	if ref := userTypeRef(typtype, typSchema, typName); ref != nil {
		c.TypeRef = ref
		if isArray {
			c.ArrayDims = 1
		}
	}
	return &c, nil
}

func readType(ctx context.Context, q querier, oid uint32, t *schema.Type) error {
	switch t.Kind {
	case schema.TypeEnum:
		return q.QueryRow(ctx, `SELECT ARRAY(SELECT enumlabel::text FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder)`, oid).Scan(&t.Labels)
	case schema.TypeDomain:
		var base uint32
		var typmod int32
		var def, collation *string
		err := q.QueryRow(ctx, `SELECT t.typbasetype, t.typtypmod, t.typnotnull, t.typdefault,
				CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation THEN co.collname END,
				ARRAY(SELECT 'CONSTRAINT ' || quote_ident(con.conname) || ' ' || pg_get_constraintdef(con.oid, true)
				      FROM pg_constraint con WHERE con.contypid = t.oid AND con.contype = 'c' ORDER BY con.conname)
			FROM pg_type t JOIN pg_type bt ON bt.oid = t.typbasetype LEFT JOIN pg_collation co ON co.oid = t.typcollation
			WHERE t.oid = $1`, oid).Scan(&base, &typmod, &t.NotNull, &def, &collation, &t.Checks)
		if err != nil {
			return err
		}
		t.Default = deref(def)
		if t.Base, err = typeColumn(ctx, q, base, typmod); err != nil {
			return err
		}
		t.Base.Collation = deref(collation)
		return nil
	case schema.TypeComposite:
		rows, err := q.Query(ctx, `SELECT a.attname, a.atttypid, a.atttypmod,
				CASE WHEN a.attcollation <> 0 AND a.attcollation <> at.typcollation THEN co.collname END
			FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid JOIN pg_type at ON at.oid = a.atttypid
			LEFT JOIN pg_collation co ON co.oid = a.attcollation
			WHERE t.oid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, oid)
		if err != nil {
			return err
		}
		type attr struct {
			Name      string
			Type      uint32
			Typmod    int32
			Collation *string
		}
		attrs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[attr])
		if err != nil {
			return err
		}
		for _, a := range attrs {
			c, err := typeColumn(ctx, q, a.Type, a.Typmod)
			if err != nil {
				return err
			}
			c.Name, c.Collation = a.Name, deref(a.Collation)
			t.Attributes = append(t.Attributes, c)
		}
		return nil
	case schema.TypeRange:
		var sub uint32
		var opclass, collation, canonical, diff, multirange *string
		err := q.QueryRow(ctx, `SELECT r.rngsubtype,
				CASE WHEN NOT oc.opcdefault THEN quote_ident(ocn.nspname) || '.' || quote_ident(oc.opcname) END,
				CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN quote_ident(co.collname) END,
				CASE WHEN r.rngcanonical <> 0 THEN r.rngcanonical::regproc::text END,
				CASE WHEN r.rngsubdiff <> 0 THEN r.rngsubdiff::regproc::text END,
				mr.typname
			FROM pg_range r JOIN pg_type st ON st.oid = r.rngsubtype
			JOIN pg_opclass oc ON oc.oid = r.rngsubopc JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace
			LEFT JOIN pg_collation co ON co.oid = r.rngcollation
			-- multiranges came with PostgreSQL 14; read through jsonb, older sources have none
			LEFT JOIN pg_type mr ON mr.oid = (to_jsonb(r) ->> 'rngmultitypid')::oid
			WHERE r.rngtypid = $1`, oid).Scan(&sub, &opclass, &collation, &canonical, &diff, &multirange)
		if err != nil {
			return err
		}
		t.Multirange = deref(multirange)
		t.Opclass, t.Collation, t.Canonical, t.SubtypeDiff = deref(opclass), deref(collation), deref(canonical), deref(diff)
		t.Base, err = typeColumn(ctx, q, sub, -1)
		return err
	}
	return nil
}

// discoverExtensions lists the source's extensions (plpgsql is every
// database's own).
func discoverExtensions(ctx context.Context, q querier, db *schema.Database) error {
	rows, err := q.Query(ctx, `SELECT e.extname::text, n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
		WHERE e.extname <> 'plpgsql' ORDER BY e.extname`)
	if err != nil {
		return fmt.Errorf("list extensions: %w", err)
	}
	db.Extensions, err = pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[schema.Extension])
	if err != nil {
		return fmt.Errorf("list extensions: %w", err)
	}
	return nil
}

// discoverSchemas lists the run's schemas: every schema of the source, or,
// when only some tables are included, the schemas of those tables.
func discoverSchemas(ctx context.Context, q querier, filter schema.Filter, db *schema.Database) error {
	if len(filter.Include) > 0 {
		seen := map[string]bool{}
		for _, t := range db.Tables {
			if !seen[t.Source.Schema] {
				seen[t.Source.Schema] = true
				db.Schemas = append(db.Schemas, t.Source.Schema)
			}
		}
		return nil
	}
	rows, err := q.Query(ctx, `SELECT n.nspname::text FROM pg_namespace n WHERE `+schemaFilter+`
		AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_namespace'::regclass AND e.objid = n.oid AND e.deptype = 'e')
		ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("list schemas: %w", err)
	}
	db.Schemas, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list schemas: %w", err)
	}
	return nil
}
