package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
	"github.com/caravan-db/caravan/target"
	"github.com/caravan-db/caravan/telemetry"
)

// Config wires a coordinator.
type Config struct {
	Run       string // run id (a UUID)
	SourceURL string // only its redacted form is ever stored
	Options   Options
	// PollEvery is how often progress is re-read from the ledger when no
	// event arrives: the safety net for reports lost with a dead worker.
	PollEvery time.Duration
	// QuietAfter is how long nothing may move before the coordinator says
	// what it waits for (and how often it says it again).
	QuietAfter time.Duration
	// FinalizeParallel is how many tables build their keys and indexes at
	// once, each apart from the loop that tracks the run.
	FinalizeParallel int
	Tracer           trace.TracerProvider
	Log              *slog.Logger
	Metrics          *telemetry.Metrics // nil records nothing
}

// Coordinator runs one run.
type Coordinator struct {
	cfg    Config
	src    source.Source
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	tracer trace.Tracer
	log    *slog.Logger

	db       *schema.Database
	snapshot *source.Snapshot
	snapID   string
	tables   map[string]*tableState
	fksDone  bool
	// objectsDone: the objects created after the load were tried;
	// objectProblems are those that failed (they fail the run).
	objectsDone    bool
	objectProblems []string
	// validatingSaid: the run's status says validating.
	validatingSaid bool
	fkVerdict      *proto.Verdict
	wait           waiting
	// finalizing holds the tables being finalized (or closed as failed)
	// apart from the loop, building those still building indexes; each
	// reports to built, then to closed.
	finalizing map[string]bool
	building   map[string]bool
	built      chan string
	closed     chan closeResult
	closers    sync.WaitGroup
	// counts are the chunk counts advance last read, at countedAt;
	// recount says they may have changed since (see advance).
	counts    []target.ChunkCount
	countedAt time.Time
	recount   bool
}

type tableState struct {
	t         *schema.Table
	created   bool // caravan created it (so caravan finalizes its DDL)
	finalized bool
	failed    bool
	verdict   *proto.Verdict
	// unsettledSince is when the table, its chunks all in but some failed,
	// was first seen with batches of those chunks still in flight.
	unsettledSince time.Time
}

// New returns a coordinator.
func New(src source.Source, pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) *Coordinator {
	cfg.Options.Defaults()
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = 2 * time.Second
	}
	if cfg.QuietAfter <= 0 {
		cfg.QuietAfter = defaultQuietAfter
	}
	if cfg.FinalizeParallel <= 0 {
		cfg.FinalizeParallel = DefaultFinalizeParallel
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Metrics = cfg.Metrics.Role("coordinator")
	return &Coordinator{cfg: cfg, src: src, pool: pool, js: js, tracer: telemetry.Tracer(cfg.Tracer),
		log: cfg.Log.With("run", cfg.Run), tables: map[string]*tableState{},
		finalizing: map[string]bool{}, building: map[string]bool{}, built: make(chan string), closed: make(chan closeResult)}
}

// DefaultFinalizeParallel is how many tables build their keys and indexes
// at once unless configured: one key build beside another, on a target that is also
// loading and validating.
const DefaultFinalizeParallel = 2

// Run plans, starts and tracks a new run until every table is judged.
func (c *Coordinator) Run(ctx context.Context) (err error) {
	if err := c.cfg.Options.Validate(); err != nil {
		return err
	}
	ctx, span := c.tracer.Start(ctx, "run", trace.WithAttributes(attribute.String("caravan.run", c.cfg.Run)))
	defer span.End()
	defer c.releaseSnapshot(ctx)

	if err := target.EnsureState(ctx, c.pool); err != nil {
		return err
	}
	switch _, err := target.LoadRun(ctx, c.pool, c.cfg.Run); {
	case err == nil:
		return fmt.Errorf("run %s %w: finish it with caravan resume %[1]s, or start a new run without --run-id", c.cfg.Run, ErrRunExists)
	case !errors.Is(err, target.ErrNoRun):
		return err
	}
	defer c.keepAlive(ctx)()
	if err := c.start(ctx); err != nil {
		return err
	}
	return c.track(ctx)
}

// start plans the run, records it, creates the target tables and
// publishes every chunk.
func (c *Coordinator) start(ctx context.Context) error {
	ctx, span := c.tracer.Start(ctx, "plan")
	defer span.End()
	started := time.Now()

	snap, err := c.src.Snapshot(ctx)
	if err != nil {
		return err
	}
	c.snapshot, c.snapID = snap, snap.ID
	c.log.InfoContext(ctx, "consistency", "view", snap.Note)

	plan, err := MakePlan(ctx, c.src, snap.ID, c.cfg.Options)
	if err != nil {
		return err
	}
	c.db = plan.DB
	for _, w := range plan.DB.Warnings {
		c.log.WarnContext(ctx, "plan", "warning", w)
	}
	if err := c.reportMissingRoles(ctx, plan.DB); err != nil {
		return err
	}
	if err := c.cfg.Options.CheckUnmigrated(plan.DB); err != nil {
		return err
	}
	if err := c.keepTextForExisting(ctx, plan.DB); err != nil {
		return err
	}
	err = target.CreateRun(ctx, c.pool, &target.Run{ID: c.cfg.Run, Status: target.RunPlanning, SourceKind: c.src.Kind(),
		Source: pgutil.Redact(c.cfg.SourceURL), Snapshot: snap.ID, Consistency: snap.Note, Config: c.configRecord(), Model: plan.DB})
	if err != nil {
		return err
	}
	var chunks int
	for _, tp := range plan.Tables {
		chunks += len(tp.Chunks)
	}
	c.audit(ctx, target.AuditEntry{Operation: "plan", Status: "ok", Started: started,
		Metadata: map[string]any{"tables": len(plan.Tables), "chunks": chunks, "consistency": snap.Note, "warnings": plan.DB.Warnings}})
	for _, u := range plan.DB.Unmigrated {
		c.audit(ctx, target.AuditEntry{Operation: "not_migrated", Status: "accepted", Started: started,
			Metadata: map[string]any{"kind": u.Kind, "name": u.Name, "reason": u.Reason, "accepted_by": c.cfg.Options.AcceptedBy(u)}})
	}

	if err := c.createTables(ctx, plan); err != nil {
		_ = target.SetRunStatus(ctx, c.pool, c.cfg.Run, target.RunFailed, err.Error())
		return refused{err}
	}
	for _, tp := range plan.Tables {
		if err := c.recordChunks(ctx, tp); err != nil {
			return err
		}
	}
	if err := target.SetRunStatus(ctx, c.pool, c.cfg.Run, target.RunLoading, ""); err != nil {
		return err
	}
	for _, tp := range plan.LargestFirst() {
		if err := c.publishChunks(ctx, tp.Table, nil); err != nil {
			return err
		}
	}
	return nil
}

// configRecord is what caravan.runs.config keeps: the options, never a
// credential.
func (c *Coordinator) configRecord() map[string]any {
	o := c.cfg.Options
	return map[string]any{"include": o.Filter.Include, "exclude": o.Filter.Exclude, "name_case": o.NameCase,
		"schema_map": o.SchemaMap, "mode": o.Mode, "rows_per_chunk": o.RowsPerChunk, "batch_bytes": o.BatchBytes,
		"batch_rows": o.BatchRows, "unlogged": o.Unlogged, "validation": o.Validation, "source_options": o.SourceOptions,
		"accept_unmigrated": o.AcceptUnmigrated, "owners_and_grants": o.OwnersAndGrants, "copy_format": o.CopyFormat}
}

func (c *Coordinator) recordChunks(ctx context.Context, tp *TablePlan) error {
	t := tp.Table
	var est int64
	rows := make([]target.ChunkState, len(tp.Chunks))
	for i, ch := range tp.Chunks {
		rows[i] = target.ChunkState{Table: t.ID(), Chunk: i, Attempt: 1, Range: ch.Range, Lo: ch.Lo, Hi: ch.Hi, EstRows: ch.EstRows}
		est += ch.EstRows
	}
	err := target.AddTable(ctx, c.pool, c.cfg.Run, target.TableState{Table: t.ID(), SourceName: t.Source.String(),
		Status: target.StatusPending, Chunks: len(tp.Chunks), EstRows: est, Created: c.tables[t.ID()].created})
	if err != nil {
		return err
	}
	return target.AddChunks(ctx, c.pool, c.cfg.Run, rows)
}

// publishChunks publishes a table's pending chunks (only those in only when
// it is not nil).
func (c *Coordinator) publishChunks(ctx context.Context, t *schema.Table, only map[int]bool) error {
	chunks, err := target.Chunks(ctx, c.pool, c.cfg.Run, t.ID())
	if err != nil {
		return err
	}
	for _, ch := range chunks {
		if ch.Status != target.StatusPending || (only != nil && !only[ch.Chunk]) {
			continue
		}
		if err := c.publishChunk(ctx, t, ch); err != nil {
			return err
		}
	}
	return nil
}

func (c *Coordinator) publishChunk(ctx context.Context, t *schema.Table, ch target.ChunkState) error {
	task := c.task(t, ch)
	ctx, span := c.tracer.Start(ctx, "chunk", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.String("caravan.table", task.Table), attribute.Int("caravan.chunk", task.Chunk), attribute.Int("caravan.attempt", task.Attempt),
		attribute.StringSlice("caravan.range.lo", task.Lo), attribute.StringSlice("caravan.range.hi", task.Hi)))
	defer span.End()
	data, err := proto.Marshal(task)
	if err != nil {
		return fmt.Errorf("encode task %s chunk %d: %w", task.Table, task.Chunk, err)
	}
	msg := nats.NewMsg(proto.TasksSubject(c.cfg.Run))
	msg.Data = data
	telemetry.Inject(ctx, msg.Header)
	msg.Header.Set(proto.HeaderMsgID, fmt.Sprintf("%s.%s.%d.%d", task.Run, task.Table, task.Chunk, task.Attempt))
	if _, err := c.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish %s chunk %d: %w", task.Table, task.Chunk, err)
	}
	c.cfg.Metrics.Chunks(ctx, task.Table, telemetry.ChunkPublished, 1)
	return target.MarkPublished(ctx, c.pool, c.cfg.Run, task.Table, task.Chunk)
}

func (c *Coordinator) task(t *schema.Table, ch target.ChunkState) *proto.ChunkTask {
	task := ChunkTask(t, ch.Chunk, ch.Attempt, source.Chunk{Range: ch.Range, Lo: ch.Lo, Hi: ch.Hi}, c.snapID, c.cfg.Options.SourceOptions)
	task.Run, task.BatchBytes, task.BatchRows = c.cfg.Run, c.batchBytes(), c.cfg.Options.BatchRows
	return task
}

// ChunkTask is the task that reads one chunk of t in snapshot: everything
// a reader needs (names, columns, types, key, bounds, source options). A
// migrate run adds its run id and batch limits; verify and sync read the
// same chunks with it, so all three read a range the same way.
func ChunkTask(t *schema.Table, chunk, attempt int, ch source.Chunk, snapshot string, opts map[string]string) *proto.ChunkTask {
	task := &proto.ChunkTask{V: proto.Version, Table: t.ID(), Chunk: chunk, Attempt: attempt,
		Source: proto.TableRef{Schema: t.Source.Schema, Name: t.Source.Name}, Target: proto.TableRef{Schema: t.Target.Schema, Name: t.Target.Name},
		Range: ch.Range, Lo: ch.Lo, Hi: ch.Hi, Snapshot: snapshot, Options: opts, Encoding: proto.EncodingOrText(t.Encoding)}
	for _, col := range t.LoadColumns() {
		task.Cols = append(task.Cols, col.Name)
		task.Types = append(task.Types, col.SourceType)
		task.TargetCols = append(task.TargetCols, col.TargetName)
		task.TargetTypes = append(task.TargetTypes, col.Type)
	}
	for _, k := range t.PrimaryKey {
		task.Key = append(task.Key, k)
		if col := t.Column(k); col != nil {
			task.KeyTypes = append(task.KeyTypes, col.SourceType)
		}
	}
	return task
}

// batchBytes keeps batches under the broker's max_payload whatever the user
// asked for.
func (c *Coordinator) batchBytes() int {
	limit := int(c.js.Conn().MaxPayload()) - 64<<10
	return max(min(c.cfg.Options.BatchBytes, limit), 4<<10)
}

func (c *Coordinator) releaseSnapshot(ctx context.Context) {
	if c.snapshot != nil && c.snapshot.Release != nil {
		if err := c.snapshot.Release(context.WithoutCancel(ctx)); err != nil {
			c.log.WarnContext(ctx, "release snapshot", "err", err)
		}
		c.snapshot = nil
	}
}

func (c *Coordinator) audit(ctx context.Context, e target.AuditEntry) {
	e.Run = c.cfg.Run
	if err := target.Audit(context.WithoutCancel(ctx), c.pool, e); err != nil {
		c.log.WarnContext(ctx, "audit", "err", err)
	}
}

var errRunFailed = errors.New("run failed")

// ErrRunExists refuses a new run under the id of one already recorded: its
// outcome is not this process's to report.
var ErrRunExists = errors.New("already exists")

// refused is a run turned down at setup (a table in the way under --mode
// create, DDL the target rejects): nothing was loaded, and the user has
// something to change before resuming.
type refused struct{ err error }

func (r refused) Error() string { return r.err.Error() }
func (r refused) Unwrap() error { return r.err }

// IsRefused says whether a run's error is a refusal at setup.
func IsRefused(err error) bool {
	var r refused
	return errors.As(err, &r)
}

// broadcast publishes a run event, retrying while the broker is away
// (restarting, failing over): a lost TableFinalized would leave its table
// unjudged. It gives up after two minutes.
func broadcast(ctx context.Context, js jetstream.JetStream, run, kind string, msg any) error {
	m, err := broker.NewMsg(proto.EventSubject(run, kind), msg, telemetry.Header(ctx))
	if err != nil {
		return err
	}
	return broker.PublishPatiently(ctx, js, m, 2*time.Minute)
}
