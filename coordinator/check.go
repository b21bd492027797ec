package coordinator

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
)

// unmatchedPatterns warns about each --include or --exclude pattern that
// selects no table: a typo there silently copies too little or too much.
// An include pattern is checked against the tables the filter kept; an
// exclude pattern against the tables it removed, which are discovered
// apart (only when there are exclude patterns).
func unmatchedPatterns(ctx context.Context, src source.Source, f schema.Filter, kept *schema.Database) ([]string, error) {
	var out []string
	for _, p := range f.Include {
		if !anyMatches(p, kept.Tables) {
			out = append(out, fmt.Sprintf("--include %q matches no source table that is copied", p))
		}
	}
	if len(f.Exclude) == 0 {
		return out, nil
	}
	dropped, err := src.Discover(ctx, schema.Filter{Include: f.Exclude})
	if err != nil {
		return nil, fmt.Errorf("check --exclude patterns: %w", err)
	}
	var candidates []*schema.Table
	for _, t := range dropped.Tables {
		if (schema.Filter{Include: f.Include}).Match(t.Source) {
			candidates = append(candidates, t)
		}
	}
	for _, p := range f.Exclude {
		if !anyMatches(p, candidates) {
			out = append(out, fmt.Sprintf("--exclude %q matches no source table that would be copied", p))
		}
	}
	return out, nil
}

func anyMatches(pattern string, tables []*schema.Table) bool {
	f := schema.Filter{Include: []string{pattern}}
	for _, t := range tables {
		if f.Match(t.Source) {
			return true
		}
	}
	return false
}

// CheckTarget says, without changing anything, what a run of the plan
// would meet in the target: tables that exist (and whether --mode refuses
// them), and column types the target lacks, naming the extension that
// brings the usual ones. `caravan plan --target-url` prints it.
func CheckTarget(ctx context.Context, pool *pgxpool.Pool, plan *Plan, mode string) ([]string, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("check target: %w", err)
	}
	defer tx.Rollback(ctx)
	var out []string
	for _, t := range plan.DB.Tables {
		exists, rows, err := lookupTable(ctx, tx, t.Target)
		if err != nil {
			return nil, err
		}
		name := schema.QuoteName(t.Target)
		switch {
		case !exists:
		case rows && mode == ModeCreate:
			out = append(out, fmt.Sprintf("table %s exists and holds rows: --mode create will refuse the run (--mode truncate empties it and keeps its DDL, --mode drop-recreate replaces it)", name))
		case mode == ModeTruncate:
			out = append(out, fmt.Sprintf("table %s exists: --mode truncate will empty it and load into it, keeping its own DDL", name))
		default:
			out = append(out, fmt.Sprintf("table %s exists: --mode %s will drop it and create it anew", name, mode))
		}
	}
	missing, err := missingTypes(ctx, tx, plan.DB)
	if err != nil {
		return nil, err
	}
	return append(out, missing...), nil
}

// missingTypes lists the column types the target does not know, leaving out
// the user-defined types the run creates itself.
func missingTypes(ctx context.Context, tx pgx.Tx, db *schema.Database) ([]string, error) {
	created := map[string]bool{}
	for _, typ := range db.Types {
		created[schema.QuoteName(typ.Name)] = true
	}
	users := map[string][]string{}
	for _, t := range db.Tables {
		for _, col := range t.Columns {
			if !created[strings.TrimSuffix(col.Type, "[]")] && !created[strings.TrimRight(col.Type, "[]")] {
				users[col.Type] = append(users[col.Type], t.Target.String()+"."+col.TargetName)
			}
		}
	}
	types := make([]string, 0, len(users))
	for typ := range users {
		types = append(types, typ)
	}
	sort.Strings(types)
	var out []string
	for _, typ := range types {
		var known bool
		// A savepoint: a type name PostgreSQL cannot even parse raises an
		// error, which must not end the checks of the others.
		sp, err := tx.Begin(ctx)
		if err != nil {
			return nil, fmt.Errorf("check type %s: %w", typ, err)
		}
		err = sp.QueryRow(ctx, `SELECT to_regtype($1) IS NOT NULL`, typ).Scan(&known)
		_ = sp.Rollback(ctx)
		if known {
			continue
		}
		msg := fmt.Sprintf("type %s does not exist on the target (used by %s)", typ, strings.Join(users[typ], ", "))
		if ext := extensionOf(typ); ext != "" {
			msg += fmt.Sprintf(": CREATE EXTENSION %s there first", ext)
		}
		out = append(out, msg)
	}
	return out, nil
}

var typeBase = regexp.MustCompile(`^(?:"?[a-z_]+"?\.)?"?([a-z0-9_]+)"?`)

// extensionOf names the extension that brings a type, for the usual ones.
func extensionOf(typ string) string {
	m := typeBase.FindStringSubmatch(strings.ToLower(typ))
	if m == nil {
		return ""
	}
	switch m[1] {
	case "geometry", "geography", "box2d", "box3d":
		return "postgis"
	case "citext", "hstore", "ltree", "cube":
		return m[1]
	case "isbn", "issn", "ean13":
		return "isn"
	case "vector", "halfvec", "sparsevec":
		return "vector"
	}
	return ""
}
