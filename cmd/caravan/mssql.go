package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/caravan-db/caravan/source/mssql"
)

// SQL Server source options. Extractors and the coordinator must be given
// the same ones: they decide the target type, and so the text, of values.
var mssqlFlags = []cli.Flag{
	str("mssql-nul", "NUL characters in SQL Server strings: fail (naming table, column and key) or strip (with a warning)", "fail"),
	str("mssql-surrogates", "unpaired UTF-16 surrogates: fail or replace (with U+FFFD and a warning)", "fail"),
	strs("type-override", "schema.table.column=postgres_type (repeatable; SQL Server source names)"),
	str("computed", "SQL Server computed columns: copy (their values, into plain columns) or generated (simple expressions become GENERATED ALWAYS AS ... STORED, the others are copied and reported)", "copy"),
	boolean("postgis", "map geography/geometry to PostGIS geometry (the target must have postgis)"),
	boolean("mssql-database-snapshot", "read from a database snapshot (CREATE DATABASE ... AS SNAPSHOT OF): one point in time for the whole run"),
}

func openMSSQL(ctx context.Context, c *cli.Context, raw string, readers int, log *slog.Logger) (*mssql.Source, error) {
	opts := mssql.Options{
		NUL:              mssql.Policy(c.String("mssql-nul")),
		Surrogates:       mssql.Policy(c.String("mssql-surrogates")),
		PostGIS:          c.Bool("postgis"),
		Computed:         c.String("computed"),
		DatabaseSnapshot: c.Bool("mssql-database-snapshot"),
		MaxConns:         readers + 2,
		Readers:          readers,
		TypeOverrides:    map[string]string{},
		Logger:           log,
	}
	for _, o := range c.StringSlice("type-override") {
		col, typ, ok := strings.Cut(o, "=")
		if !ok || col == "" || typ == "" {
			return nil, fmt.Errorf("--type-override %q: want schema.table.column=type", o)
		}
		opts.TypeOverrides[col] = typ
	}
	return mssql.Open(ctx, raw, opts)
}
