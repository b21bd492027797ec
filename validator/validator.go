// Package validator is the validator role: when a table is loaded it
// proves the table's content against what the extractors read (row counts,
// the digest of every row), once it is finalized its primary keys, and,
// once foreign keys exist, counts orphans per foreign key. Verdicts go to caravan.verdicts and the events
// stream, where the coordinator waits for them.
package validator

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/target"
	"github.com/caravan-db/caravan/telemetry"
)

// Config configures a validator.
type Config struct {
	Concurrency int
	Tracer      trace.TracerProvider
	Log         *slog.Logger
	Metrics     *telemetry.Metrics // nil records nothing
}

// Validator judges tables.
type Validator struct {
	cfg    Config
	js     jetstream.JetStream
	pool   *pgxpool.Pool
	tracer trace.Tracer

	mu   sync.Mutex
	runs map[string]*target.Run

	known  *target.KnownRuns
	worker string
}

// New returns a validator reading the target through pool.
func New(js jetstream.JetStream, pool *pgxpool.Pool, cfg Config) *Validator {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Metrics = cfg.Metrics.Role("validator")
	return &Validator{cfg: cfg, js: js, pool: pool, tracer: telemetry.Tracer(cfg.Tracer), runs: map[string]*target.Run{},
		known: target.NewKnownRuns(pool), worker: broker.WorkerID()}
}

// Run works until ctx ends. The validator binds to three consumers created
// by the side that owns the consumers: loaded tables (their content) and
// finalized tables (the rest), each served at the configured concurrency,
// and created foreign keys (one per run), served one at a time.
func (v *Validator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, c := range []struct {
		name        string
		concurrency int
	}{{proto.ConsumerValidatorTables, v.cfg.Concurrency}, {proto.ConsumerValidatorFKs, 1}, {proto.ConsumerValidatorLoaded, v.cfg.Concurrency}} {
		// validator-loaded last: a coordinator older than table_loaded
		// never creates it, and its runs are judged on table_finalized.
		cons, err := broker.Bind(ctx, v.js, proto.StreamEvents, c.name, v.cfg.Log)
		if err != nil {
			return fmt.Errorf("validator: %w", err)
		}
		stopLag, err := v.cfg.Metrics.ObserveLag(c.name, broker.LagFunc(cons))
		if err != nil {
			return fmt.Errorf("validator: %w", err)
		}
		defer stopLag()
		// An event being judged is extended, however long its checks take;
		// one of a validator that died goes to another after one ack wait.
		every := max(cons.CachedInfo().Config.AckWait/3, time.Millisecond)
		wg.Add(1)
		go func() {
			defer wg.Done()
			broker.Serve(ctx, cons, c.concurrency, v.cfg.Log, func(ctx context.Context, msg jetstream.Msg) {
				stop := broker.Heartbeat(ctx, msg, every)
				defer stop()
				v.serve(ctx, msg)
			})
		}()
	}
	<-ctx.Done()
	return nil
}

// serve handles one event: acked when judged, tried again later when the
// target could not be read (an outage is waited out). Any other error ends
// the event at once as a failed verdict saying why, recorded in
// caravan.verdicts like any other, so the run is never left waiting and
// the reason is in the report, not only in this worker's log.
func (v *Validator) serve(ctx context.Context, msg jetstream.Msg) {
	if !v.serves(ctx, msg) {
		return
	}
	err := v.handle(ctx, msg)
	if err == nil {
		_ = msg.Ack()
		return
	}
	if ctx.Err() != nil {
		return
	}
	v.cfg.Log.ErrorContext(ctx, "validation", "subject", msg.Subject(), "err", err)
	v.cfg.Metrics.Error(ctx, "")
	delivered := uint64(1)
	if md, mdErr := msg.Metadata(); mdErr == nil {
		delivered = md.NumDelivered
	}
	if pgutil.IsTransient(err) {
		_ = msg.NakWithDelay(broker.Backoff(delivered))
		return
	}
	if perr := v.giveUp(ctx, msg, err); perr != nil {
		v.cfg.Log.ErrorContext(ctx, "validation: report failure", "subject", msg.Subject(), "err", perr)
		_ = msg.NakWithDelay(broker.Backoff(delivered))
		return
	}
	_ = msg.Ack()
}

// giveUp records and publishes a failed verdict for an event that could
// not be judged. The verdict row is best effort (the error may be the
// target refusing it); the published verdict is what the run waits for.
func (v *Validator) giveUp(ctx context.Context, msg jetstream.Msg, cause error) error {
	verdict := &proto.Verdict{V: proto.Version, OK: false, Detail: "could not validate: " + cause.Error()}
	switch proto.EventKind(msg.Subject()) {
	case proto.EventTableLoaded:
		var ev proto.TableLoaded
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			return nil
		}
		verdict.Run, verdict.Table, verdict.Level = ev.Run, ev.Table, "table"
	case proto.EventTableFinalized:
		var ev proto.TableFinalized
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			return nil
		}
		verdict.Run, verdict.Table, verdict.Level = ev.Run, ev.Table, "table"
	case proto.EventForeignKeys:
		var ev proto.ForeignKeysCreated
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			return nil
		}
		verdict.Run, verdict.Table, verdict.Level = ev.Run, "*", "fk"
	default:
		return nil
	}
	row := target.VerdictRow{Run: verdict.Run, Table: verdict.Table, Level: verdict.Level, OK: false, Detail: verdict.Detail}
	if err := target.SaveVerdict(ctx, v.pool, row); err != nil {
		v.cfg.Log.ErrorContext(ctx, "validation: record failed verdict", "run", verdict.Run, "table", verdict.Table, "err", err)
	}
	return broker.Publish(ctx, v.js, proto.EventSubject(verdict.Run, proto.EventVerdict), verdict, telemetry.Header(ctx))
}

func (v *Validator) handle(ctx context.Context, msg jetstream.Msg) error {
	ctx = telemetry.Extract(ctx, msg.Headers())
	switch proto.EventKind(msg.Subject()) {
	case proto.EventTableLoaded:
		var ev proto.TableLoaded
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			return nil
		}
		run, err := v.run(ctx, ev.Run)
		if err != nil || run == nil {
			return err
		}
		verdict, err := v.content(ctx, run, ev.Table)
		if err != nil || verdict == nil {
			return err
		}
		return broker.Publish(ctx, v.js, proto.EventSubject(ev.Run, proto.EventVerdict), verdict, telemetry.Header(ctx))
	case proto.EventTableFinalized:
		var ev proto.TableFinalized
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			return nil
		}
		run, err := v.run(ctx, ev.Run)
		if err != nil || run == nil {
			return err
		}
		var verdict *proto.Verdict
		if ev.Content {
			verdict, err = v.rest(ctx, run, &ev)
		} else {
			// A table is judged once: an event delivered again (a resumed
			// coordinator asks anew) gets the verdict already recorded.
			verdict, err = v.judged(ctx, run, ev.Table)
			if err == nil && verdict == nil {
				verdict, err = v.table(ctx, run, &ev, nil)
			}
		}
		if err != nil || verdict == nil {
			return err
		}
		return broker.Publish(ctx, v.js, proto.EventSubject(ev.Run, proto.EventVerdict), verdict, telemetry.Header(ctx))
	case proto.EventForeignKeys:
		var ev proto.ForeignKeysCreated
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			return nil
		}
		run, err := v.run(ctx, ev.Run)
		if err != nil || run == nil {
			return err
		}
		verdict, err := v.foreignKeys(ctx, run, &ev)
		if err != nil {
			return err
		}
		return broker.Publish(ctx, v.js, proto.EventSubject(ev.Run, proto.EventVerdict), verdict, telemetry.Header(ctx))
	}
	return nil
}

// run loads a run's model once; it returns nil for a run that is over
// (events of old runs replay when the durable consumer is first made).
func (v *Validator) run(ctx context.Context, id string) (*target.Run, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r, ok := v.runs[id]; ok {
		return r, nil
	}
	r, err := target.LoadRun(ctx, v.pool, id)
	if err != nil {
		return nil, err
	}
	if r.Status == target.RunSucceeded || r.Status == target.RunFailed || r.Model == nil {
		return nil, nil
	}
	v.runs[id] = r
	return r, nil
}

func levels(run *target.Run) map[string]bool {
	out := map[string]bool{}
	if ls, ok := run.Config["validation"].([]any); ok {
		for _, l := range ls {
			if s, ok := l.(string); ok {
				out[s] = true
			}
		}
	}
	return out
}

// table judges one finalized table at every level the run asked for.
func (v *Validator) table(ctx context.Context, run *target.Run, ev *proto.TableFinalized, known []proto.Digest) (*proto.Verdict, error) {
	results, err := v.check(ctx, run, ev.Table, ev.Error, levels(run), nil, known)
	if err != nil {
		return nil, err
	}
	verdict := &proto.Verdict{V: proto.Version, Run: run.ID, Table: ev.Table, Level: "table", OK: true}
	var failed []string
	for _, r := range results {
		if !r.OK {
			verdict.OK = false
			failed = append(failed, r.Level+": "+r.Detail)
		}
	}
	verdict.Detail = strings.Join(failed, "; ")
	return verdict, nil
}

// contentLevels are judged as soon as a table is loaded (TableLoaded):
// they read the table whole, which needs no index, so they run while the
// coordinator builds the keys. keys waits for TableFinalized.
var contentLevels = []string{"count", "digest"}

// content judges a loaded table's content levels not yet recorded, and
// returns the table's verdict when that completes it: every level the run
// asks for recorded and the table finalized (or failed) by the
// coordinator. Otherwise the TableFinalized side publishes it.
func (v *Validator) content(ctx context.Context, run *target.Run, table string) (*proto.Verdict, error) {
	want, err := v.missing(ctx, run, table, contentLevels...)
	if err != nil {
		return nil, err
	}
	if len(want) > 0 {
		if _, err := v.check(ctx, run, table, "", want, v.finalizedLater(run.ID, table), nil); err != nil {
			return nil, err
		}
	}
	st, err := target.TableOf(ctx, v.pool, run.ID, table)
	if err != nil {
		return nil, err
	}
	if st == nil || (st.Status != target.StatusFinalized && st.Status != target.StatusFailed) {
		return nil, nil
	}
	return v.complete(ctx, run, table)
}

// rest judges what a finalized table's content left: the keys, and the
// load when it failed. It returns the table's verdict when that completes
// it; else the content side publishes it when it is done.
func (v *Validator) rest(ctx context.Context, run *target.Run, ev *proto.TableFinalized) (*proto.Verdict, error) {
	want, err := v.missing(ctx, run, ev.Table, "keys")
	if err != nil {
		return nil, err
	}
	if len(want) > 0 || ev.Error != "" {
		if _, err := v.check(ctx, run, ev.Table, ev.Error, want, nil, nil); err != nil {
			return nil, err
		}
	}
	return v.complete(ctx, run, ev.Table)
}

// missing lists which of levels the run asks for and has no verdict row for
// the table yet: a level is judged once, whichever event comes again.
func (v *Validator) missing(ctx context.Context, run *target.Run, table string, of ...string) (map[string]bool, error) {
	rows, err := target.Verdicts(ctx, v.pool, run.ID)
	if err != nil {
		return nil, err
	}
	want := levels(run)
	out := map[string]bool{}
	for _, l := range of {
		if want[l] {
			out[l] = true
		}
	}
	for _, r := range rows {
		if r.Table == table {
			delete(out, r.Level)
		}
	}
	return out, nil
}

// complete is the table's verdict once every level the run asks for is
// recorded (nil before). Both sides of a table may find it complete and
// publish it; the coordinator takes the same verdict twice.
func (v *Validator) complete(ctx context.Context, run *target.Run, table string) (*proto.Verdict, error) {
	verdict, err := v.judged(ctx, run, table)
	if verdict != nil || err != nil {
		return verdict, err
	}
	for l := range levels(run) {
		if l != "fk" && l != "none" {
			return nil, nil
		}
	}
	// No table level asked for: nothing to wait for.
	return &proto.Verdict{V: proto.Version, Run: run.ID, Table: table, Level: "table", OK: true}, nil
}

// finalizedLater waits until the coordinator is done with the table and
// says whether it is finalized (its keys built, so chunk ranges can be
// read apart) or failed (never indexed).
func (v *Validator) finalizedLater(run, table string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		for {
			st, err := target.TableOf(ctx, v.pool, run, table)
			if err != nil {
				return false, err
			}
			if st == nil || st.Status == target.StatusFailed {
				return false, nil
			}
			if st.Status == target.StatusFinalized {
				return true, nil
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(finalizedPoll):
			}
		}
	}
}

// finalizedPoll is how often a content check that must name the chunks
// that differ looks whether their table is finalized.
const finalizedPoll = 250 * time.Millisecond

// check judges a table at the levels in want (and records a failed load
// level when loadErr says the load failed), and records a verdict row per
// level. indexed, when not nil, waits until the table's chunk ranges can
// be read apart (its keys built) and says whether they ever will. known,
// when not nil, is each chunk's target digest, established by the caller.
func (v *Validator) check(ctx context.Context, run *target.Run, table, loadErr string, want map[string]bool,
	indexed func(context.Context) (bool, error), known []proto.Digest) ([]target.VerdictRow, error) {
	// A table is judged in parts (content when loaded, keys when
	// finalized): the levels say which part a span is.
	var judging []string
	for l := range want {
		judging = append(judging, l)
	}
	sort.Strings(judging)
	ctx, span := v.tracer.Start(ctx, "validate table", trace.WithAttributes(attribute.String("caravan.table", table),
		attribute.String("caravan.levels", strings.Join(judging, ","))))
	defer span.End()
	started := time.Now()
	t := findTable(run.Model, table)
	if t == nil {
		return nil, fmt.Errorf("table %s not in the run's model", table)
	}
	chunks, err := target.Chunks(ctx, v.pool, run.ID, table)
	if err != nil {
		return nil, err
	}
	var sourceRows int64
	for _, ch := range chunks {
		sourceRows += ch.Rows
	}
	var results []target.VerdictRow
	if loadErr != "" {
		results = append(results, target.VerdictRow{Level: "load", OK: false, SourceRows: &sourceRows, Detail: loadErr})
	}
	all := levels(run)
	tc := &tableCheck{v: v, t: t, chunks: chunks, sourceRows: sourceRows, readsTable: all["digest"], indexed: indexed}
	if known != nil && len(known) == len(chunks) && tc.rangeSafe() {
		tc.perChunk = known
	}
	if st, err := target.TableOf(ctx, v.pool, run.ID, table); err != nil {
		return nil, err
	} else if st != nil {
		tc.counted, tc.how = st.SourceRows, st.SourceCount
	}
	checks := []struct {
		level string
		fn    func(context.Context) (target.VerdictRow, error)
	}{{"count", tc.count}, {"keys", tc.keys}, {"digest", tc.digest}}
	for _, c := range checks {
		if !want[c.level] {
			continue
		}
		cctx, cspan := v.tracer.Start(ctx, "check "+c.level)
		r, err := c.fn(cctx)
		cspan.End()
		if err != nil {
			if pgutil.IsTransient(err) || ctx.Err() != nil {
				return nil, fmt.Errorf("validate %s %s: %w", table, c.level, err) // tried again once the target is back
			}
			// No retry mends it: the level fails saying why, and the
			// other levels still say what they can.
			v.cfg.Log.ErrorContext(ctx, "validation check", "table", table, "level", c.level, "err", err)
			r = target.VerdictRow{OK: false, SourceRows: &sourceRows, Detail: "could not validate: " + err.Error()}
		}
		r.Level = c.level
		results = append(results, r)
	}
	ok := true
	for i := range results {
		r := &results[i]
		r.Run, r.Table = run.ID, table
		r.Seconds = time.Since(started).Seconds()
		if err := target.SaveVerdict(ctx, v.pool, *r); err != nil {
			return nil, err
		}
		v.cfg.Metrics.Check(ctx, table, r.Level, r.OK)
		status := "ok"
		if !r.OK {
			status, ok = "failed", false
		}
		_ = target.Audit(ctx, v.pool, target.AuditEntry{Run: run.ID, Table: table, Operation: "validate_" + r.Level, Rows: r.TargetRows,
			Status: status, Error: errorText(*r), Started: started, Metadata: map[string]any{"detail": r.Detail, "source_rows": r.SourceRows}})
	}
	span.SetAttributes(attribute.Bool("caravan.ok", ok))
	return results, nil
}

// Judge judges one table of a run at every level the run asks for, in
// this process, and records the verdicts as the validator serving events
// does: caravan sync re-judges the tables it re-copied with it.
func (v *Validator) Judge(ctx context.Context, run *target.Run, table string) (*proto.Verdict, error) {
	return v.table(ctx, run, &proto.TableFinalized{V: proto.Version, Run: run.ID, Table: table}, nil)
}

// JudgeKnown is Judge with the target's digest of each chunk's key range
// (in the order of target.Chunks) already established by the caller, who
// answers for them: caravan sync proves the chunks it changed as it writes
// them and knows the others unchanged since their last verdict, so the
// table is judged at every level without being read again.
func (v *Validator) JudgeKnown(ctx context.Context, run *target.Run, table string, perChunk []proto.Digest) (*proto.Verdict, error) {
	return v.table(ctx, run, &proto.TableFinalized{V: proto.Version, Run: run.ID, Table: table}, perChunk)
}

// judged returns the verdict already recorded for a table when every level
// the run asks for is there (a table loaded again has its verdicts
// dropped first), and nil when it must be judged.
func (v *Validator) judged(ctx context.Context, run *target.Run, table string) (*proto.Verdict, error) {
	rows, err := target.Verdicts(ctx, v.pool, run.ID)
	if err != nil {
		return nil, err
	}
	verdict := &proto.Verdict{V: proto.Version, Run: run.ID, Table: table, Level: "table", OK: true}
	have := map[string]bool{}
	var failed []string
	for _, r := range rows {
		if r.Table != table {
			continue
		}
		have[r.Level] = true
		if !r.OK {
			verdict.OK = false
			failed = append(failed, r.Level+": "+r.Detail)
		}
	}
	for level := range levels(run) {
		if level != "fk" && level != "none" && !have[level] {
			return nil, nil
		}
	}
	if len(have) == 0 {
		return nil, nil
	}
	verdict.Detail = strings.Join(failed, "; ")
	return verdict, nil
}

// Passed says whether verdicts (a run's, as target.Verdicts reads them)
// hold a passing verdict for the table at every level the run asks for:
// what it proved of the table's chunks still stands while they are not
// written again.
func Passed(run *target.Run, verdicts []target.VerdictRow, table string) bool {
	have := map[string]bool{}
	for _, r := range verdicts {
		if r.Table != table {
			continue
		}
		if !r.OK {
			return false
		}
		have[r.Level] = true
	}
	for level := range levels(run) {
		if level != "fk" && level != "none" && !have[level] {
			return false
		}
	}
	return len(have) > 0
}

func errorText(r target.VerdictRow) string {
	if r.OK {
		return ""
	}
	return r.Detail
}

func findTable(db *schema.Database, id string) *schema.Table {
	for _, t := range db.Tables {
		if t.ID() == id {
			return t
		}
	}
	return nil
}
