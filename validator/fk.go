package validator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/target"
)

// foreignKeys counts, per foreign key, the child rows without a parent. A
// key PostgreSQL validated has none; one that failed to validate says here
// how many rows are at fault.
func (v *Validator) foreignKeys(ctx context.Context, run *target.Run, ev *proto.ForeignKeysCreated) (*proto.Verdict, error) {
	ctx, span := v.tracer.Start(ctx, "validate foreign keys", trace.WithSpanKind(trace.SpanKindInternal))
	defer span.End()
	verdict := &proto.Verdict{V: proto.Version, Run: run.ID, Table: "*", Level: "fk", OK: true}
	if !levels(run)["fk"] {
		return verdict, nil
	}
	var problems []string
	for _, t := range run.Model.Tables {
		if len(t.ForeignKeys) == 0 {
			continue
		}
		started := time.Now()
		var tableProblems []string
		var orphans int64
		for _, fk := range t.ForeignKeys {
			q, err := run.Model.FKOrphansSQL(t, fk)
			if err != nil {
				tableProblems = append(tableProblems, err.Error())
				continue
			}
			var n int64
			if err := v.pool.QueryRow(ctx, q).Scan(&n); err != nil {
				tableProblems = append(tableProblems, fmt.Sprintf("foreign key %s: %v", fk.Name, err))
				continue
			}
			orphans += n
			if n > 0 {
				tableProblems = append(tableProblems, fmt.Sprintf("foreign key %s: %d rows of %s reference no row of %s", fk.Name, n, t.Target, fk.RefTable))
			}
		}
		r := target.VerdictRow{Run: run.ID, Table: t.ID(), Level: "fk", OK: len(tableProblems) == 0, TargetRows: &orphans,
			Detail: strings.Join(tableProblems, "; "), Seconds: time.Since(started).Seconds()}
		if err := target.SaveVerdict(ctx, v.pool, r); err != nil {
			return nil, err
		}
		v.cfg.Metrics.Check(ctx, t.ID(), "fk", r.OK)
		status := "ok"
		if !r.OK {
			status = "failed"
			problems = append(problems, t.ID()+": "+r.Detail)
		}
		_ = target.Audit(ctx, v.pool, target.AuditEntry{Run: run.ID, Table: t.ID(), Operation: "validate_fk", Rows: &orphans, Status: status,
			Error: errorText(r), Started: started})
	}
	if ev.Error != "" {
		problems = append(problems, ev.Error)
	}
	verdict.OK = len(problems) == 0
	verdict.Detail = strings.Join(problems, "; ")
	return verdict, nil
}
