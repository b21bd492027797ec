package main

import "github.com/urfave/cli/v2"

// examples are shown at the end of each command's --help.
var examples = map[string]string{
	"migrate": `Examples:
  caravan migrate --source-url postgres://app@old-db/shop --target-url postgres://app@new-db/shop
  caravan migrate --source-url 'sqlserver://sa@mssql:1433?database=Shop' --target-url postgres://app@new-db/shop \
      --include 'dbo.*' --schema-map dbo=public --mode truncate --report-json report.json

Exit codes: 0 succeeded, 1 error, 2 failed, 3 refused at setup, 4 interrupted (README, "Exit codes").`,
	"plan": `Examples:
  caravan plan --source-url postgres://app@old-db/shop
  caravan plan --source-url postgres://app@old-db/shop --target-url postgres://app@new-db/shop --include 'public.order*'`,
	"coordinator": `Examples:
  caravan coordinator --source-url "$SRC" --target-url "$DST" --nats-url nats://broker:4222
  caravan coordinator --source-url "$SRC" --target-url "$DST" --nats-url nats://broker:4222 --resume RUN

Exit codes: as migrate's.`,
	"extractor": `Example:
  caravan extractor --source-url "$SRC" --nats-url nats://broker:4222 --extractors 4`,
	"loader": `Example:
  caravan loader --target-url "$DST" --nats-url nats://broker:4222 --loaders 4`,
	"validator": `Example:
  caravan validator --target-url "$DST" --nats-url nats://broker:4222`,
	"status": `Examples:
  caravan status --target-url "$DST"                  # the newest run
  caravan status --target-url "$DST" --watch RUN      # follow it until it ends
  caravan status --target-url "$DST" --json RUN       # the JSON report (schema_version 1)

Exits with the run's outcome: 0 succeeded, 2 failed, 3 refused, 4 interrupted or abandoned, 5 still running.`,
	"report": `Examples:
  caravan report --target-url "$DST" RUN
  caravan report --target-url "$DST" --html run.html RUN    # one page, no network needed to view it`,
	"resume": `Example:
  caravan resume --source-url "$SRC" --target-url "$DST" RUN

Exit codes: as migrate's.`,
	"verify": `Examples:
  caravan verify --source-url postgres://app@old-db/shop --target-url postgres://app@new-db/shop
  caravan verify --source-url "$SRC" --target-url "$DST" --include 'public.order*' --sample 0.01 --workers 4
  caravan verify --source-url "$SRC" --target-url "$DST" --nats-url nats://broker:4222   # checks by caravan verifier workers

Exit codes: 0 identical, 1 error, 2 the target differs (every missing, extra or changed key is printed), 4 interrupted.`,
	"verifier": `Example (one or more, beside caravan verify --nats-url):
  caravan verifier --source-url "$SRC" --target-url "$DST" --nats-url nats://broker:4222 --verifiers 4`,
	"sync": `Examples:
  caravan sync --source-url postgres://app@old-db/shop --target-url postgres://app@new-db/shop 6f1c...
  caravan sync --source-url "$SRC" --target-url "$DST" --workers 4 "$RUN"

Exit codes: 0 synced and every re-judged table passed, 1 error (schema drift included: nothing is copied), 2 a table failed validation, 4 interrupted (run it again).`,
	"broker": `Example:
  caravan broker --data-dir /var/lib/caravan-nats --listen 0.0.0.0:4222`,
	"healthcheck": `Example:
  caravan healthcheck --url http://127.0.0.1:9464/healthz`,
}

// withExample puts a command's examples in its --help.
func withExample(cmd *cli.Command) *cli.Command {
	cmd.Description = examples[cmd.Name]
	return cmd
}
