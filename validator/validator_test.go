package validator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/target"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// wideRun is a finalized table of the widest kind PostgreSQL allows (1,600
// columns) in three chunks, with the chunk digests recorded as if the
// extractors had read what the target now holds.
type wideRun struct {
	v     *Validator
	pool  *pgxpool.Pool
	run   *target.Run
	table *schema.Table
}

func newWideRun(t *testing.T) *wideRun {
	t.Helper()
	ctx := context.Background()
	dbURL := testenv.Database(t, "validator")
	pool, err := pgutil.Pool(ctx, dbURL, "test", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := target.EnsureState(ctx, pool); err != nil {
		t.Fatal(err)
	}
	tbl := &schema.Table{Source: schema.Name{Schema: "public", Name: "wide"}, Target: schema.Name{Schema: "public", Name: "wide"},
		PrimaryKey: []string{"id"}, RangeSafe: true}
	defs := []string{"id integer PRIMARY KEY"}
	vals := []string{"g"}
	tbl.Columns = append(tbl.Columns, &schema.Column{Name: "id", TargetName: "id", Type: "integer"})
	for i := 1; i < 1600; i++ {
		name := fmt.Sprintf("c%d", i)
		typ, val := "smallint", fmt.Sprintf("(g * %d) %% 30000", i)
		switch i % 10 {
		case 0:
			typ, val = "text", fmt.Sprintf(`CASE WHEN g %% 3 = 0 THEN NULL ELSE E'\t' || g %% 100 END`)
		case 5:
			typ, val = "boolean", fmt.Sprintf("(g + %d) %% 2 = 0", i)
		}
		defs = append(defs, name+" "+typ)
		vals = append(vals, val)
		tbl.Columns = append(tbl.Columns, &schema.Column{Name: name, TargetName: name, Type: typ, Nullable: true})
	}
	testenv.Exec(t, dbURL,
		"CREATE TABLE wide ("+strings.Join(defs, ", ")+")",
		"INSERT INTO wide SELECT "+strings.Join(vals, ", ")+" FROM generate_series(0, 299) g")

	run := &target.Run{ID: uuid.NewString(), Status: target.RunLoading, SourceKind: "postgres", Source: "test",
		Config: map[string]any{"validation": []any{"count", "keys", "digest"}}, Model: &schema.Database{Tables: []*schema.Table{tbl}}}
	if err := target.CreateRun(ctx, pool, run); err != nil {
		t.Fatal(err)
	}
	if err := target.AddTable(ctx, pool, run.ID, target.TableState{Table: tbl.ID(), SourceName: "wide", Status: target.StatusFinalized}); err != nil {
		t.Fatal(err)
	}
	counted := int64(300)
	if err := target.SetSourceCount(ctx, pool, run.ID, tbl.ID(), &counted, target.CountSnapshot); err != nil {
		t.Fatal(err)
	}
	bounds := [][]string{nil, {"100"}, {"200"}, nil}
	var chunks []target.ChunkState
	for i := 0; i < 3; i++ {
		chunks = append(chunks, target.ChunkState{Table: tbl.ID(), Chunk: i, Attempt: 1, Range: proto.RangeKey, Lo: bounds[i], Hi: bounds[i+1]})
	}
	if err := target.AddChunks(ctx, pool, run.ID, chunks); err != nil {
		t.Fatal(err)
	}
	for _, ch := range chunks {
		where, args := target.KeyRange(tbl, ch, true)
		d, err := target.ReadDigest(ctx, pool, tbl.Target, tbl.Encoding, loadCols(tbl), where, args...)
		if err != nil {
			t.Fatal(err)
		}
		if d.Rows != 100 {
			t.Fatalf("chunk %d holds %d rows, want 100", ch.Chunk, d.Rows)
		}
		if err := target.MarkExtracted(ctx, pool, run.ID, tbl.ID(), ch.Chunk, 1, 1, d.Rows, 0, d.String(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return &wideRun{v: New(nil, pool, Config{}), pool: pool, run: run, table: tbl}
}

func (w *wideRun) judge(t *testing.T) (*proto.Verdict, map[string]target.VerdictRow) {
	t.Helper()
	ctx := context.Background()
	verdict, err := w.v.table(ctx, w.run, &proto.TableFinalized{V: proto.Version, Run: w.run.ID, Table: w.table.ID()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := target.Verdicts(ctx, w.pool, w.run.ID)
	if err != nil {
		t.Fatal(err)
	}
	byLevel := map[string]target.VerdictRow{}
	for _, r := range rows {
		byLevel[r.Level] = r
	}
	return verdict, byLevel
}

// A table of 1,600 columns validates at every level, and one value changed
// on the target fails the digest naming the chunk that holds it.
func TestWideTableDigestNamesTheChangedChunk(t *testing.T) {
	w := newWideRun(t)
	verdict, rows := w.judge(t)
	if !verdict.OK {
		t.Fatalf("untouched table failed: %s", verdict.Detail)
	}
	for _, level := range []string{"count", "keys", "digest"} {
		if r, ok := rows[level]; !ok || !r.OK {
			t.Errorf("level %s: %+v", level, r)
		}
	}

	testenv.Exec(t, w.pool.Config().ConnString(), `UPDATE wide SET c800 = c800 || 'x' WHERE id = 151`)
	verdict, rows = w.judge(t)
	if verdict.OK {
		t.Fatal("a changed value passed validation")
	}
	d := rows["digest"]
	if d.OK || !strings.Contains(d.Detail, "chunk 1 [(100), (200)): content differs") {
		t.Errorf("digest verdict does not name chunk 1: %+v", d)
	}
	if strings.Contains(d.Detail, "chunk 0") || strings.Contains(d.Detail, "chunk 2") {
		t.Errorf("digest verdict blames untouched chunks: %s", d.Detail)
	}
	if !rows["count"].OK || !rows["keys"].OK {
		t.Errorf("a changed value fails count or keys: %+v %+v", rows["count"], rows["keys"])
	}
}

// A check that errors for a reason no retry mends is a failed verdict of
// its level, saying why, in caravan.verdicts.
func TestCheckErrorIsAVerdict(t *testing.T) {
	w := newWideRun(t)
	testenv.Exec(t, w.pool.Config().ConnString(), `ALTER TABLE wide RENAME TO gone`)
	verdict, rows := w.judge(t)
	if verdict.OK {
		t.Fatal("a missing table passed validation")
	}
	for _, level := range []string{"count", "keys", "digest"} {
		r := rows[level]
		if r.OK || !strings.HasPrefix(r.Detail, "could not validate: ") || !strings.Contains(r.Detail, "wide") {
			t.Errorf("level %s: %+v", level, r)
		}
	}
}

// An event that cannot be judged at all (here: a run the target does not
// know) is given up at once with a verdict published and recorded, not
// retried in silence.
func TestUnjudgeableEventGivesUpAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbURL := testenv.Database(t, "validator")
	pool, err := pgutil.Pool(ctx, dbURL, "test", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := target.EnsureState(ctx, pool); err != nil {
		t.Fatal(err)
	}
	_, js := testenv.NATS(t)
	run := uuid.NewString()
	// The target holds the run, but its recorded plan cannot be read.
	if _, err := pool.Exec(ctx, `INSERT INTO caravan.runs (run_id, status, source_kind, source, model) VALUES ($1, 'loading', 'postgres', 'test', '[1]')`, run); err != nil {
		t.Fatal(err)
	}
	verdicts, err := js.CreateOrUpdateConsumer(ctx, proto.StreamEvents, jetstream.ConsumerConfig{
		FilterSubject: proto.EventSubject(run, proto.EventVerdict), AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if err := broker.Publish(ctx, js, proto.EventSubject(run, proto.EventTableFinalized), &proto.TableFinalized{V: proto.Version, Run: run, Table: "public.t"}, nil); err != nil {
		t.Fatal(err)
	}
	vctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = New(js, pool, Config{}).Run(vctx) }()
	defer func() { stop(); <-done }()

	msg, err := broker.FetchOne(ctx, verdicts, 20*time.Second)
	if err != nil {
		t.Fatalf("no verdict published: %v", err)
	}
	var v proto.Verdict
	if err := proto.Unmarshal(msg.Data(), &v); err != nil {
		t.Fatal(err)
	}
	if v.OK || v.Table != "public.t" || !strings.Contains(v.Detail, "could not validate: ") {
		t.Errorf("verdict %+v", v)
	}
	testenv.Eventually(t, 10*time.Second, "the event acknowledged after one delivery", func() bool {
		cons, err := js.Consumer(ctx, proto.StreamEvents, proto.ConsumerValidatorTables)
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.Delivered.Consumer == 1 && info.AckFloor.Consumer == 1
	})
	rows, err := target.Verdicts(ctx, pool, run)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].OK || rows[0].Level != "table" || !strings.Contains(rows[0].Detail, "could not validate: ") {
		t.Errorf("verdict rows %+v", rows)
	}
}

// A loaded table's content is judged before it is finalized (TableLoaded),
// its keys after (TableFinalized), and the verdict comes once both are in.
// A difference found before the table is finalized waits for its keys to
// name the chunk that differs.
func TestContentJudgedBeforeFinalize(t *testing.T) {
	w := newWideRun(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	setStatus := func(status string) {
		t.Helper()
		if err := target.SetTableStatus(ctx, w.pool, w.run.ID, w.table.ID(), status, ""); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(target.StatusLoaded)
	verdict, err := w.v.content(ctx, w.run, w.table.ID())
	if err != nil || verdict != nil {
		t.Fatalf("content of a table not yet finalized: verdict %+v, err %v; want none yet", verdict, err)
	}
	rows, err := target.Verdicts(ctx, w.pool, w.run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Level != "count" || !rows[0].OK || rows[1].Level != "digest" || !rows[1].OK {
		t.Fatalf("content verdict rows %+v, want count and digest, passed", rows)
	}
	setStatus(target.StatusFinalized)
	ev := &proto.TableFinalized{V: proto.Version, Run: w.run.ID, Table: w.table.ID(), Content: true}
	if verdict, err = w.v.rest(ctx, w.run, ev); err != nil || verdict == nil || !verdict.OK {
		t.Fatalf("finalized table: verdict %+v, err %v; want passed", verdict, err)
	}

	// A changed value, judged again while the table is not finalized.
	if err := target.DeleteVerdicts(ctx, w.pool, w.run.ID, w.table.ID()); err != nil {
		t.Fatal(err)
	}
	testenv.Exec(t, w.pool.Config().ConnString(), `UPDATE wide SET c800 = c800 || 'x' WHERE id = 151`)
	setStatus(target.StatusLoaded)
	type outcome struct {
		v   *proto.Verdict
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		v, err := w.v.content(ctx, w.run, w.table.ID())
		done <- outcome{v, err}
	}()
	setStatus(target.StatusFinalized)
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	if o.v != nil {
		t.Fatalf("verdict %+v published before the keys were judged", o.v)
	}
	if verdict, err = w.v.rest(ctx, w.run, ev); err != nil || verdict == nil || verdict.OK {
		t.Fatalf("changed table: verdict %+v, err %v; want failed", verdict, err)
	}
	if !strings.Contains(verdict.Detail, "chunk 1 [(100), (200)): content differs") || strings.Contains(verdict.Detail, "chunk 0") {
		t.Errorf("verdict does not name chunk 1 alone: %s", verdict.Detail)
	}

	// A table whose finalization failed is never indexed: the difference is
	// the table's, and the content side does not wait.
	if err := target.DeleteVerdicts(ctx, w.pool, w.run.ID, w.table.ID()); err != nil {
		t.Fatal(err)
	}
	setStatus(target.StatusFailed)
	if _, err := w.v.content(ctx, w.run, w.table.ID()); err != nil {
		t.Fatal(err)
	}
	rows, err = target.Verdicts(ctx, w.pool, w.run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Level != "digest" || rows[1].OK || !strings.Contains(rows[1].Detail, "table content differs") {
		t.Errorf("digest of a table never finalized: %+v", rows)
	}
}

func TestCoversKeySpace(t *testing.T) {
	ch := func(lo, hi []string) target.ChunkState { return target.ChunkState{Lo: lo, Hi: hi} }
	for _, c := range []struct {
		chunks []target.ChunkState
		want   bool
	}{
		{[]target.ChunkState{ch(nil, nil)}, true},
		{[]target.ChunkState{ch(nil, []string{"10"}), ch([]string{"10"}, nil)}, true},
		{[]target.ChunkState{ch(nil, []string{"10"}), ch([]string{"11"}, nil)}, false}, // a gap
		{[]target.ChunkState{ch([]string{"1"}, []string{"10"}), ch([]string{"10"}, nil)}, false},
		{[]target.ChunkState{ch(nil, []string{"10"}), ch([]string{"10"}, []string{"20"})}, false},
		{nil, false},
	} {
		if got := coversKeySpace(c.chunks); got != c.want {
			t.Errorf("coversKeySpace(%+v) = %v, want %v", c.chunks, got, c.want)
		}
	}
}

// split cuts consecutive chunks into runs as even in rows as they allow,
// every chunk in exactly one run, in order.
func TestSplit(t *testing.T) {
	chunks := func(rows ...int64) []target.ChunkState {
		out := make([]target.ChunkState, len(rows))
		for i, r := range rows {
			out[i] = target.ChunkState{Chunk: i, Rows: r}
		}
		return out
	}
	for _, c := range []struct {
		chunks []target.ChunkState
		n      int
		want   []int // chunks per run
	}{
		{chunks(10), 2, []int{1}},
		{chunks(10, 10), 2, []int{1, 1}},
		{chunks(10, 10, 10, 10, 10, 10, 10, 10), 2, []int{4, 4}},
		{chunks(100, 1, 1, 1), 2, []int{1, 3}},
		{chunks(1, 1, 1, 100), 2, []int{3, 1}},
		{chunks(0, 0, 0), 2, []int{2, 1}},
		{chunks(5, 5, 5), 1, []int{3}},
	} {
		got := split(c.chunks, c.n)
		var sizes []int
		next := 0
		for _, run := range got {
			sizes = append(sizes, len(run))
			for _, ch := range run {
				if ch.Chunk != next {
					t.Errorf("split(%v, %d): chunk %d out of order", c.chunks, c.n, ch.Chunk)
				}
				next++
			}
		}
		if fmt.Sprint(sizes) != fmt.Sprint(c.want) {
			t.Errorf("split(%v, %d) = runs of %v chunks, want %v", c.chunks, c.n, sizes, c.want)
		}
	}
}
