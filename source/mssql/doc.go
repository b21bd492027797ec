// Package mssql is caravan's Microsoft SQL Server source, built on
// github.com/microsoft/go-mssqldb.
//
// Discovery reads the sys.* catalog views (catalog.go) into row structs
// that model.go turns into the schema model; types.go maps every SQL Server
// type to PostgreSQL (docs/TYPES.md explains each choice); values.go and
// pgtext.go turn the Go values go-mssqldb returns into the exact text
// PostgreSQL prints for the target column; plan.go splits tables using
// SQL Server's own statistics or a sample of the key; read.go pages through
// a chunk with keyset predicates that SQL Server evaluates (tsql.go writes
// them); errors.go tells outages from errors no retry mends.
//
// The engine may also be Babelfish for PostgreSQL, recognised at Open:
// dialect.go holds every way it differs (text, keyless tables, statistics,
// datetime, catalog quirks), and docs/TYPES.md lists them.
//
// Key order is SQL Server's: collations (case- and accent-insensitive,
// trailing spaces ignored) and uniqueidentifier's byte order make
// PostgreSQL order the same keys differently, so only SQL Server decides
// which rows a range holds when reading, and a table is marked RangeSafe
// (its ranges re-selected on the target) only when every key column is an
// integer on both sides (model.go, rangeSafe).
package mssql
