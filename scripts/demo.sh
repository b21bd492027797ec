#!/usr/bin/env bash
# make demo: a sample "shop" database copied into PostgreSQL by caravan,
# through an embedded NATS JetStream, ending with the validation report.
# CARAVAN_TEST_PG_URL names the server (make demo starts a throwaway one).
set -euo pipefail
cd "$(dirname "$0")/.."

admin="${CARAVAN_TEST_PG_URL:?run through make demo, or set CARAVAN_TEST_PG_URL}"
base="${admin%%\?*}"; base="${base%/*}"
query=""; [[ "$admin" == *\?* ]] && query="?${admin#*\?}"
src="$base/caravan_demo_source$query"
dst="$base/caravan_demo_target$query"

psql -q -v ON_ERROR_STOP=1 "$admin" <<'SQL'
DROP DATABASE IF EXISTS caravan_demo_source WITH (FORCE);
DROP DATABASE IF EXISTS caravan_demo_target WITH (FORCE);
CREATE DATABASE caravan_demo_source;
CREATE DATABASE caravan_demo_target;
SQL

echo "== building the sample source database"
psql -q -v ON_ERROR_STOP=1 "$src" -f scripts/demo-source.sql

echo "== caravan plan (what will happen; touches nothing): first lines of demo-plan.sql"
bin/caravan plan --source-url "$src" > demo-plan.sql
head -40 demo-plan.sql
echo "   ..."

echo "== caravan migrate"
bin/caravan migrate --source-url "$src" --target-url "$dst" --chunk-rows 20000 --report-json demo-report.json

echo "== the same answers, as SQL in the target"
psql -q "$dst" -c "SELECT table_id, level, ok, source_rows, target_rows FROM caravan.verdicts ORDER BY table_id, level"
echo "report written to demo-report.json"
