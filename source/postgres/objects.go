package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/caravan-db/caravan/schema"
)

// notExtensionMember keeps out the objects an extension owns: they come
// with CREATE EXTENSION. catalog is the object's catalog, oid its column.
func notExtensionMember(catalog, oid string) string {
	return fmt.Sprintf(`NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = '%s'::regclass AND ext.objid = %s AND ext.deptype = 'e')`, catalog, oid)
}

// runSchemas is a set of the run's source schemas.
func runSchemas(db *schema.Database) map[string]bool {
	in := map[string]bool{}
	for _, s := range db.Schemas {
		in[s] = true
	}
	return in
}

type sequenceRow struct {
	Schema      string
	Name        string
	Type        string
	Start       int64
	Increment   int64
	Min         int64
	Max         int64
	Cache       int64
	Cycle       bool
	Last        *int64
	OwnerSchema *string
	OwnerTable  *string
	OwnerColumn *string
}

// discoverSequences reads the sequences of the run's schemas that are not
// identity columns' (those come with their column). A standalone
// sequence's value is read as it is now: sequences stand outside
// snapshots.
func discoverSequences(ctx context.Context, q querier, db *schema.Database) error {
	rows, err := q.Query(ctx, `SELECT n.nspname::text, c.relname::text, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
			s.seqmin, s.seqmax, s.seqcache, s.seqcycle, pg_sequence_last_value(c.oid),
			own.nspname::text, own.relname::text, own.attname::text
		FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN LATERAL (SELECT tn.nspname, t.relname, a.attname FROM pg_depend d
			JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
			JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
			WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a' LIMIT 1) own ON true
		WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i')
		  AND `+notExtensionMember("pg_class", "c.oid")+` AND `+schemaFilter+`
		ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("list sequences: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[sequenceRow])
	if err != nil {
		return fmt.Errorf("list sequences: %w", err)
	}
	in := runSchemas(db)
	for _, r := range found {
		if !in[r.Schema] {
			continue
		}
		s := &schema.Sequence{Name: schema.Name{Schema: r.Schema, Name: r.Name}, Type: r.Type, Start: r.Start, Increment: r.Increment,
			Min: r.Min, Max: r.Max, Cache: r.Cache, Cycle: r.Cycle, Last: r.Last}
		if r.OwnerTable != nil {
			s.OwnedBy, s.OwnedByColumn = &schema.Name{Schema: *r.OwnerSchema, Name: *r.OwnerTable}, *r.OwnerColumn
		}
		db.Sequences = append(db.Sequences, s)
	}
	return nil
}

// definedObject is a function, procedure, view or materialized view: the
// objects whose definitions refer to each other, created in dependency
// order.
type definedObject struct {
	Key     string // "p<oid>" (pg_proc) or "c<oid>" (pg_class)
	Kind    string
	Schema  string
	Name    string
	SQL     []string
	Deps    []string // keys of what it refers to
	Missing string   // a table it needs that is not in the run
}

// discoverObjects reads what is created after the load, in order:
// functions, procedures, views and materialized views (dependencies
// first), then triggers, rules, row-level security and its policies, then
// comments. Tables outside the run take their triggers, rules and
// policies with them; a view that needs one is listed as not migrated.
func discoverObjects(ctx context.Context, q querier, db *schema.Database, inRun map[uint32]*schema.Table, tables map[uint32]schema.Name) error {
	defined, err := discoverDefined(ctx, q, db, inRun, tables)
	if err != nil {
		return err
	}
	left := map[uint32]bool{} // views left behind take their triggers, rules and comments along
	for _, o := range defined {
		if o.Missing != "" {
			db.Unmigrated = append(db.Unmigrated, &schema.Unmigrated{Kind: o.Kind, Name: o.Name,
				Reason: "it needs table " + o.Missing + ", which is not part of this run"})
			var oid uint32
			if _, err := fmt.Sscanf(o.Key, "c%d", &oid); err == nil {
				left[oid] = true
			}
			continue
		}
		db.Objects = append(db.Objects, &schema.Object{Kind: o.Kind, Name: o.Name, SQL: o.SQL})
	}
	for _, step := range []func(context.Context, querier, *schema.Database, map[uint32]*schema.Table, map[uint32]bool) error{
		discoverStatistics, discoverTriggers, discoverRules, discoverPolicies, discoverComments,
	} {
		if err := step(ctx, q, db, inRun, left); err != nil {
			return err
		}
	}
	if err := discoverPrivileges(ctx, q, db, inRun); err != nil {
		return err
	}
	return discoverUnsupported(ctx, q, db)
}

const depsSQL = `ARRAY(SELECT DISTINCT CASE WHEN d.refclassid = 'pg_proc'::regclass THEN 'p' ELSE 'c' END || d.refobjid::bigint
	FROM pg_depend d WHERE %s AND d.deptype = 'n' AND d.refclassid IN ('pg_proc'::regclass, 'pg_class'::regclass))`

func discoverDefined(ctx context.Context, q querier, db *schema.Database, inRun map[uint32]*schema.Table, tables map[uint32]schema.Name) ([]*definedObject, error) {
	rows, err := q.Query(ctx, `SELECT 'p' || p.oid::bigint, CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END, n.nspname::text,
			format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
			ARRAY[pg_get_functiondef(p.oid)],
			`+fmt.Sprintf(depsSQL, `d.classid = 'pg_proc'::regclass AND d.objid = p.oid`)+`
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE p.prokind IN ('f', 'p') AND `+notExtensionMember("pg_proc", "p.oid")+` AND `+schemaFilter+`
		  -- a range type's constructors come with the type
		  AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_proc'::regclass AND i.objid = p.oid AND i.deptype = 'i')
		UNION ALL
		SELECT 'c' || c.oid::bigint, CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, n.nspname::text,
			format('%I.%I', n.nspname, c.relname),
			CASE c.relkind WHEN 'v' THEN ARRAY[format('CREATE VIEW %I.%I%s AS %s', n.nspname, c.relname,
					CASE WHEN c.reloptions IS NOT NULL THEN ' WITH (' || array_to_string(c.reloptions, ', ') || ')' ELSE '' END, rtrim(pg_get_viewdef(c.oid), ';'))]
			ELSE ARRAY[format('CREATE MATERIALIZED VIEW %I.%I%s AS %s WITH NO DATA', n.nspname, c.relname,
					CASE WHEN c.reloptions IS NOT NULL THEN ' WITH (' || array_to_string(c.reloptions, ', ') || ')' ELSE '' END,
					rtrim(pg_get_viewdef(c.oid), ';'))]
				|| CASE WHEN c.relispopulated THEN ARRAY[format('REFRESH MATERIALIZED VIEW %I.%I', n.nspname, c.relname)] ELSE '{}' END
				|| ARRAY(SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = c.oid ORDER BY i.indexrelid)
			END,
			ARRAY(SELECT DISTINCT CASE WHEN d.refclassid = 'pg_proc'::regclass THEN 'p' ELSE 'c' END || d.refobjid::bigint
				FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
				WHERE r.ev_class = c.oid AND d.refobjid <> c.oid AND d.deptype = 'n' AND d.refclassid IN ('pg_proc'::regclass, 'pg_class'::regclass))
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('v', 'm') AND `+notExtensionMember("pg_class", "c.oid")+` AND `+schemaFilter+`
		ORDER BY 2, 4`)
	if err != nil {
		return nil, fmt.Errorf("list functions and views: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*definedObject, error) {
		var o definedObject
		return &o, r.Scan(&o.Key, &o.Kind, &o.Schema, &o.Name, &o.SQL, &o.Deps)
	})
	if err != nil {
		return nil, fmt.Errorf("list functions and views: %w", err)
	}
	in := runSchemas(db)
	byKey := map[string]*definedObject{}
	for _, o := range found {
		byKey[o.Key] = o
	}
	placed := map[string]bool{}
	var order []*definedObject
	var place func(o *definedObject)
	place = func(o *definedObject) {
		if placed[o.Key] {
			return
		}
		placed[o.Key] = true
		for _, d := range o.Deps {
			if dep := byKey[d]; dep != nil {
				place(dep)
				if dep.Missing != "" && o.Missing == "" {
					o.Missing = dep.Missing
				}
				continue
			}
			var oid uint32
			if _, err := fmt.Sscanf(d, "c%d", &oid); err == nil {
				if name, ok := tables[oid]; ok && inRun[oid] == nil && o.Missing == "" {
					o.Missing = schema.QuoteName(name)
				}
			}
		}
		order = append(order, o)
	}
	for _, o := range found {
		if in[o.Schema] {
			place(o)
		}
	}
	return order, nil
}

type relObjectRow struct {
	Rel    uint32
	Kind   string
	Schema string
	Table  string
	Name   string
	SQL    []string
	Roles  []string
}

// relObjects reads objects that belong to a relation and keeps those of
// the run's tables, views and materialized views.
func relObjects(ctx context.Context, q querier, db *schema.Database, inRun map[uint32]*schema.Table, left map[uint32]bool, kind, sql string) error {
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("list %ss: %w", kind, err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[relObjectRow])
	if err != nil {
		return fmt.Errorf("list %ss: %w", kind, err)
	}
	in := runSchemas(db)
	for _, r := range found {
		if r.Kind == "r" || r.Kind == "p" {
			if inRun[r.Rel] == nil {
				continue // the table is not in the run
			}
		} else if !in[r.Schema] || left[r.Rel] {
			continue
		}
		db.Objects = append(db.Objects, &schema.Object{Kind: kind,
			Name: schema.Quote(r.Name) + " on " + schema.QuoteName(schema.Name{Schema: r.Schema, Name: r.Table}), SQL: r.SQL, Roles: r.Roles})
	}
	return nil
}

// discoverTriggers reads the user's triggers (not those of constraints,
// nor the clones partitions get from their parent's). They are created
// after the load, so they never fire on copied rows.
func discoverTriggers(ctx context.Context, q querier, db *schema.Database, inRun map[uint32]*schema.Table, left map[uint32]bool) error {
	return relObjects(ctx, q, db, inRun, left, "trigger", `SELECT c.oid, c.relkind::text, n.nspname::text, c.relname::text, t.tgname::text,
			ARRAY[pg_get_triggerdef(t.oid)] || CASE t.tgenabled
				WHEN 'D' THEN ARRAY[format('ALTER TABLE %I.%I DISABLE TRIGGER %I', n.nspname, c.relname, t.tgname)]
				WHEN 'R' THEN ARRAY[format('ALTER TABLE %I.%I ENABLE REPLICA TRIGGER %I', n.nspname, c.relname, t.tgname)]
				WHEN 'A' THEN ARRAY[format('ALTER TABLE %I.%I ENABLE ALWAYS TRIGGER %I', n.nspname, c.relname, t.tgname)]
				ELSE '{}' END, '{}'::text[]
		FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE NOT t.tgisinternal AND coalesce((to_jsonb(t) ->> 'tgparentid')::oid, 0) = 0 AND `+schemaFilter+`
		ORDER BY 3, 4, 5`)
}

// discoverStatistics reads extended statistics objects (CREATE STATISTICS).
func discoverStatistics(ctx context.Context, q querier, db *schema.Database, inRun map[uint32]*schema.Table, left map[uint32]bool) error {
	return relObjects(ctx, q, db, inRun, left, "statistics", `SELECT c.oid, c.relkind::text, n.nspname::text, c.relname::text, s.stxname::text,
			ARRAY[pg_get_statisticsobjdef(s.oid)], '{}'::text[]
		FROM pg_statistic_ext s JOIN pg_class c ON c.oid = s.stxrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE `+schemaFilter+`
		ORDER BY 3, 4, 5`)
}

// discoverRules reads rewrite rules other than views' own.
func discoverRules(ctx context.Context, q querier, db *schema.Database, inRun map[uint32]*schema.Table, left map[uint32]bool) error {
	return relObjects(ctx, q, db, inRun, left, "rule", `SELECT c.oid, c.relkind::text, n.nspname::text, c.relname::text, r.rulename::text, ARRAY[pg_get_ruledef(r.oid)], '{}'::text[]
		FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE r.rulename <> '_RETURN' AND `+schemaFilter+`
		ORDER BY 3, 4, 5`)
}

// discoverPolicies reads row-level security policies (whether a table
// enforces them is the table's RowSecurity).
func discoverPolicies(ctx context.Context, q querier, db *schema.Database, inRun map[uint32]*schema.Table, left map[uint32]bool) error {
	return relObjects(ctx, q, db, inRun, left, "policy", `SELECT c.oid, c.relkind::text, n.nspname::text, c.relname::text, p.polname::text,
			ARRAY[format('CREATE POLICY %I ON %I.%I AS %s FOR %s TO %s%s%s', p.polname, n.nspname, c.relname,
				CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
				CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
				(SELECT string_agg(CASE WHEN r.oid = 0 THEN 'PUBLIC' ELSE quote_ident(a.rolname) END, ', ' ORDER BY a.rolname NULLS FIRST)
				 FROM unnest(p.polroles) r(oid) LEFT JOIN pg_roles a ON a.oid = r.oid),
				' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')',
				' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')')],
			ARRAY(SELECT a.rolname::text FROM unnest(p.polroles) r(oid) JOIN pg_roles a ON a.oid = r.oid ORDER BY 1)
		FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE `+schemaFilter+`
		ORDER BY 3, 4, 5`)
}

// discoverComments reads the comments on the objects caravan creates from
// their definitions (and their constraints, indexes, triggers, rules,
// policies, schemas and composite types' columns). Tables' and types'
// own comments come with them.
func discoverComments(ctx context.Context, q querier, db *schema.Database, inRun map[uint32]*schema.Table, left map[uint32]bool) error {
	rows, err := q.Query(ctx, `SELECT coalesce(rel.oid, 0), coalesce(rel.relkind::text, ''), coalesce(reln.nspname, o.schema, o.identity), o.type, o.identity,
			CASE
				WHEN o.type LIKE '% column' THEN 'COLUMN ' || o.identity
				WHEN o.type = 'table constraint' THEN 'CONSTRAINT ' || o.identity
				WHEN o.type = 'domain constraint' THEN format('CONSTRAINT %I ON DOMAIN %s', con.conname, con.contypid::regtype)
				ELSE upper(o.type) || ' ' || o.identity
			END, d.description
		FROM pg_description d
		CROSS JOIN LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) o
		LEFT JOIN pg_constraint con ON d.classoid = 'pg_constraint'::regclass AND con.oid = d.objoid
		LEFT JOIN pg_trigger tg ON d.classoid = 'pg_trigger'::regclass AND tg.oid = d.objoid
		LEFT JOIN pg_policy pol ON d.classoid = 'pg_policy'::regclass AND pol.oid = d.objoid
		LEFT JOIN pg_rewrite rw ON d.classoid = 'pg_rewrite'::regclass AND rw.oid = d.objoid
		LEFT JOIN pg_index ix ON d.classoid = 'pg_class'::regclass AND ix.indexrelid = d.objoid
		LEFT JOIN pg_class rel ON rel.oid = CASE d.classoid
			WHEN 'pg_constraint'::regclass THEN nullif(con.conrelid, 0)
			WHEN 'pg_trigger'::regclass THEN tg.tgrelid
			WHEN 'pg_policy'::regclass THEN pol.polrelid
			WHEN 'pg_rewrite'::regclass THEN rw.ev_class
			WHEN 'pg_class'::regclass THEN coalesce(ix.indrelid, d.objoid) END
		LEFT JOIN pg_namespace reln ON reln.oid = rel.relnamespace
		WHERE d.classoid IN ('pg_class'::regclass, 'pg_proc'::regclass, 'pg_constraint'::regclass, 'pg_trigger'::regclass,
				'pg_policy'::regclass, 'pg_rewrite'::regclass, 'pg_namespace'::regclass)
		  AND NOT (d.classoid = 'pg_class'::regclass AND d.objoid = rel.oid AND rel.relkind IN ('r', 'p'))
		  AND NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = d.classoid AND ext.objid = d.objoid AND ext.deptype = 'e')
		  AND NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = rel.oid AND ext.deptype = 'e')
		ORDER BY 3, 4, 5`)
	if err != nil {
		return fmt.Errorf("list comments: %w", err)
	}
	type commentRow struct {
		Rel      uint32
		RelKind  string
		Schema   string
		Type     string
		Identity string
		Target   string
		Text     string
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[commentRow])
	if err != nil {
		return fmt.Errorf("list comments: %w", err)
	}
	in := runSchemas(db)
	for _, r := range found {
		if !in[r.Schema] || left[r.Rel] || ((r.RelKind == "r" || r.RelKind == "p") && inRun[r.Rel] == nil) {
			continue
		}
		db.Objects = append(db.Objects, &schema.Object{Kind: "comment", Name: "on " + r.Type + " " + r.Identity,
			SQL: []string{"COMMENT ON " + r.Target + " IS " + schema.QuoteLiteral(r.Text)}})
	}
	return nil
}

// unsupportedSQL lists, per kind, the objects caravan does not migrate:
// kind, schema ("" for objects of the whole database) and qualified name.
// Extension members come with their extension and are left out.
var unsupportedSQL = []string{
	`SELECT CASE p.prokind WHEN 'a' THEN 'aggregate' ELSE 'window function' END, n.nspname::text,
		format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
	FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE p.prokind IN ('a', 'w') AND ` + notExtensionMember("pg_proc", "p.oid") + ` AND ` + schemaFilter,
	`SELECT 'foreign table', n.nspname::text, format('%I.%I', n.nspname, c.relname)
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'f' AND ` + notExtensionMember("pg_class", "c.oid") + ` AND ` + schemaFilter,
	`SELECT 'base type', n.nspname::text, format('%I.%I', n.nspname, t.typname)
	FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
	WHERE t.typtype IN ('b', 'p') AND t.typcategory <> 'A' AND ` + notExtensionMember("pg_type", "t.oid") + ` AND ` + schemaFilter,
	`SELECT 'collation', n.nspname::text, format('%I.%I', n.nspname, c.collname)
	FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
	WHERE ` + notExtensionMember("pg_collation", "c.oid") + ` AND ` + schemaFilter,
	`SELECT 'operator', n.nspname::text, format('%I.%s(%s, %s)', n.nspname, o.oprname, o.oprleft::regtype, o.oprright::regtype)
	FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
	WHERE ` + notExtensionMember("pg_operator", "o.oid") + ` AND ` + schemaFilter,
	`SELECT 'operator class', n.nspname::text, format('%I.%I', n.nspname, c.opcname)
	FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace
	WHERE ` + notExtensionMember("pg_opclass", "c.oid") + ` AND ` + schemaFilter,
	`SELECT 'operator family', n.nspname::text, format('%I.%I', n.nspname, f.opfname)
	FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace
	WHERE ` + notExtensionMember("pg_opfamily", "f.oid") + ` AND ` + schemaFilter,
	`SELECT 'text search configuration', n.nspname::text, format('%I.%I', n.nspname, c.cfgname)
	FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
	WHERE ` + notExtensionMember("pg_ts_config", "c.oid") + ` AND ` + schemaFilter,
	`SELECT 'text search dictionary', n.nspname::text, format('%I.%I', n.nspname, d.dictname)
	FROM pg_ts_dict d JOIN pg_namespace n ON n.oid = d.dictnamespace
	WHERE ` + notExtensionMember("pg_ts_dict", "d.oid") + ` AND ` + schemaFilter,
	`SELECT 'conversion', n.nspname::text, format('%I.%I', n.nspname, c.conname)
	FROM pg_conversion c JOIN pg_namespace n ON n.oid = c.connamespace
	WHERE ` + notExtensionMember("pg_conversion", "c.oid") + ` AND ` + schemaFilter,
	`SELECT 'cast', '', format('(%s AS %s)', c.castsource::regtype, c.casttarget::regtype)
	FROM pg_cast c WHERE c.oid >= 16384 AND ` + notExtensionMember("pg_cast", "c.oid") + `
		AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_cast'::regclass AND i.objid = c.oid AND i.deptype = 'i')`,
	`SELECT 'event trigger', '', quote_ident(e.evtname) FROM pg_event_trigger e WHERE ` + notExtensionMember("pg_event_trigger", "e.oid"),
	`SELECT 'publication', '', quote_ident(p.pubname) FROM pg_publication p`,
	`SELECT 'foreign data wrapper', '', quote_ident(w.fdwname) FROM pg_foreign_data_wrapper w WHERE ` + notExtensionMember("pg_foreign_data_wrapper", "w.oid"),
	`SELECT 'foreign server', '', quote_ident(s.srvname) FROM pg_foreign_server s WHERE ` + notExtensionMember("pg_foreign_server", "s.oid"),
	`SELECT 'large objects', '', count(*)::text || ' large objects' FROM pg_largeobject_metadata HAVING count(*) > 0`,
}

// discoverUnsupported lists what caravan does not migrate, so nothing is
// lost by surprise: plan and the report show it, and a run refuses to start
// until the user accepts it.
func discoverUnsupported(ctx context.Context, q querier, db *schema.Database) error {
	in := runSchemas(db)
	for _, sql := range unsupportedSQL {
		rows, err := q.Query(ctx, sql)
		if err != nil {
			return fmt.Errorf("list objects caravan does not migrate: %w", err)
		}
		type row struct{ Kind, Schema, Name string }
		found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		if err != nil {
			return fmt.Errorf("list objects caravan does not migrate: %w", err)
		}
		for _, r := range found {
			if r.Schema != "" && !in[r.Schema] {
				continue
			}
			db.Unmigrated = append(db.Unmigrated, &schema.Unmigrated{Kind: r.Kind, Name: r.Name,
				Reason: "caravan does not migrate " + r.Kind + "s: create it on the target yourself"})
		}
	}
	return nil
}

// privilegeSQL lists the run's objects with their owner and ACL: the kind
// word ALTER ... OWNER takes, the one GRANT takes, the qualified name, the
// schema (to keep the run's), the table oid (to keep the run's tables), the
// owner and the ACL exploded (grantee "" for PUBLIC).
const privilegeSQL = `WITH obj AS (
	SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS alter_kind,
		CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS grant_kind,
		format('%I.%I', n.nspname, c.relname) AS name, n.nspname AS nsp, CASE WHEN c.relkind IN ('r', 'p') THEN c.oid ELSE 0 END AS tbl,
		c.relowner AS owner, c.relacl AS acl,
		EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a'
			AND d.refclassid = 'pg_class'::regclass) AS linked
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND ` + schemaFilter + ` AND ` + `NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid AND ext.deptype IN ('e', 'i'))
	UNION ALL
	SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
		format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), n.nspname, 0, p.proowner, p.proacl, false
	FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE p.prokind IN ('f', 'p') AND ` + schemaFilter + ` AND NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = 'pg_proc'::regclass AND ext.objid = p.oid AND ext.deptype IN ('e', 'i'))
	UNION ALL
	SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
		format('%I.%I', n.nspname, t.typname), n.nspname, 0, t.typowner, t.typacl, false
	FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_class rc ON rc.oid = t.typrelid
	WHERE t.typtype IN ('e', 'd', 'c', 'r') AND (t.typtype <> 'c' OR rc.relkind = 'c') AND ` + schemaFilter + `
	  AND NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = 'pg_type'::regclass AND ext.objid = t.oid AND ext.deptype = 'e')
	UNION ALL
	SELECT 'SCHEMA', 'SCHEMA', quote_ident(n.nspname), n.nspname, 0, n.nspowner, n.nspacl, false FROM pg_namespace n WHERE ` + schemaFilter + `
)
SELECT alter_kind, grant_kind, name, nsp::text, tbl, pg_get_userbyid(owner)::text, linked,
	acl IS NOT NULL,
	coalesce((SELECT array_agg(coalesce(r.rolname::text, '') ORDER BY x.ord) FROM unnest(acl) WITH ORDINALITY x(item, ord)
		CROSS JOIN LATERAL aclexplode(ARRAY[x.item]) e LEFT JOIN pg_roles r ON r.oid = e.grantee), '{}'),
	coalesce((SELECT array_agg(e.privilege_type ORDER BY x.ord) FROM unnest(acl) WITH ORDINALITY x(item, ord)
		CROSS JOIN LATERAL aclexplode(ARRAY[x.item]) e), '{}'),
	coalesce((SELECT array_agg(e.is_grantable ORDER BY x.ord) FROM unnest(acl) WITH ORDINALITY x(item, ord)
		CROSS JOIN LATERAL aclexplode(ARRAY[x.item]) e), '{}')
FROM obj ORDER BY 4, 1, 3`

type privilegeRow struct {
	AlterKind string
	GrantKind string
	Name      string
	Schema    string
	Table     uint32
	Owner     string
	Linked    bool // a sequence owned by a column: it follows its table's owner
	HasACL    bool
	Grantees  []string
	Privs     []string
	Grantable []bool
}

// discoverPrivileges reads the owners and grants of the run's objects: an
// ALTER ... OWNER TO per object, and, where the source has its own ACL,
// REVOKE ALL from PUBLIC and the owner then each grant, so the target's
// ACL is the source's.
func discoverPrivileges(ctx context.Context, q querier, db *schema.Database, inRun map[uint32]*schema.Table) error {
	rows, err := q.Query(ctx, privilegeSQL)
	if err != nil {
		return fmt.Errorf("list owners and grants: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[privilegeRow])
	if err != nil {
		return fmt.Errorf("list owners and grants: %w", err)
	}
	in := runSchemas(db)
	for _, r := range found {
		if !in[r.Schema] || (r.Table != 0 && inRun[r.Table] == nil) {
			continue
		}
		kind := strings.ToLower(r.AlterKind)
		add := func(role, sql string) {
			db.Privileges = append(db.Privileges, &schema.Privilege{Kind: kind, Name: r.Name, Role: role, SQL: sql})
		}
		if !r.Linked {
			add(r.Owner, fmt.Sprintf("ALTER %s %s OWNER TO %s", r.AlterKind, r.Name, schema.Quote(r.Owner)))
		}
		if !r.HasACL {
			continue
		}
		on := r.GrantKind + " " + r.Name
		add("", "REVOKE ALL ON "+on+" FROM PUBLIC")
		add(r.Owner, "REVOKE ALL ON "+on+" FROM "+schema.Quote(r.Owner))
		for i, grantee := range r.Grantees {
			to := "PUBLIC"
			if grantee != "" {
				to = schema.Quote(grantee)
			}
			stmt := fmt.Sprintf("GRANT %s ON %s TO %s", r.Privs[i], on, to)
			if r.Grantable[i] {
				stmt += " WITH GRANT OPTION"
			}
			add(grantee, stmt)
		}
	}
	return nil
}
