package verify

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
	"github.com/caravan-db/caravan/source/postgres"
	"github.com/caravan-db/caravan/target"
)

// TestWorkerRecordsEachCheckOnce: a verifier records a check's outcome
// once, however often the check is delivered, and a check whose outcome
// is already recorded is acknowledged without being run again.
func TestWorkerRecordsEachCheckOnce(t *testing.T) {
	ctx := context.Background()
	srcURL, dstURL := testenv.Database(t, "wsrc"), testenv.Database(t, "wdst")
	table := []string{
		`CREATE TABLE even (id integer PRIMARY KEY, v text, w integer)`,
		`INSERT INTO even SELECT 2 * g, 'v' || g, g FROM generate_series(1, 2000) g`,
	}
	testenv.Exec(t, srcURL, table...)
	testenv.Exec(t, dstURL, table...)
	testenv.Exec(t, dstURL, `UPDATE even SET w = -1 WHERE id IN (2002, 2020)`, `DELETE FROM even WHERE id = 3000`)
	src, err := postgres.Open(ctx, srcURL, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	pool, err := pgutil.Pool(ctx, dstURL, "test", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := target.EnsureState(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, checksDDL); err != nil {
		t.Fatal(err)
	}
	_, js := testenv.NATS(t)
	if err := broker.EnsureChecks(ctx, js, broker.StreamConfig{}, time.Minute, slog.Default()); err != nil {
		t.Fatal(err)
	}
	opts := coordinator.Options{RowsPerChunk: 1000, Filter: schema.Filter{Include: []string{"public.even"}}}
	opts.Defaults()
	plan, err := coordinator.MakePlan(ctx, src, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	tp := plan.Tables[0]
	run := uuid.NewString()
	task := func(i int) *CheckTask {
		return &CheckTask{Run: run, Table: tp.Table, Chunk: i, Chunks: []source.Chunk{tp.Chunks[i]}, SubRows: 100, MaxRowText: 200}
	}
	// Chunk 0's outcome is already there, from a verifier that died before
	// its ack: a marker no real check would write.
	if _, err := pool.Exec(ctx, `INSERT INTO caravan.checks (run_id, table_id, chunk, outcome, worker) VALUES ($1, $2, 0, '{"SourceRows": -7}', 'earlier')`,
		run, tp.Table.ID()); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	counted := &readCounter{Source: src, reads: map[int]int{}}
	go func() { done <- NewWorker(js, counted, pool, WorkerConfig{Concurrency: 2, MaxDeliver: 1}).Run(wctx) }()
	defer func() { stop(); <-done }()
	// A check that cannot be done (its table is not on the target) is
	// recorded with its error after MaxDeliver tries, which fails the
	// verification that collects it.
	gone := *tp.Table
	gone.Target.Name = "not_there"
	broken := task(1)
	broken.Table = &gone
	for _, ct := range []*CheckTask{task(0), task(1), task(1), broken} { // chunk 1 delivered twice
		data, err := json.Marshal(ct)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, proto.ChecksSubject(run), data); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.Consumer(ctx, proto.StreamChecks, proto.ConsumerVerifiers)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "every check acknowledged", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Consumer >= 4
	})

	var failed string
	if err := pool.QueryRow(ctx, `SELECT error FROM caravan.checks WHERE run_id = $1 AND table_id = $2`, run, gone.ID()).Scan(&failed); err != nil {
		t.Fatalf("the failed check's error: %v", err)
	}
	if !strings.Contains(failed, "not_there") {
		t.Errorf("recorded error %q does not name the table", failed)
	}
	stored := map[int]outcome{}
	rows, err := pool.Query(ctx, `SELECT chunk, outcome FROM caravan.checks WHERE run_id = $1 AND table_id = $2`, run, tp.Table.ID())
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var chunk int
		var raw []byte
		if err := rows.Scan(&chunk, &raw); err != nil {
			t.Fatal(err)
		}
		var out outcome
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		stored[chunk] = out
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(stored) != 2 || stored[0].SourceRows != -7 {
		t.Fatalf("recorded %+v; want chunk 0 untouched and chunk 1 once", stored)
	}
	if n := counted.of(0); n != 0 {
		t.Errorf("chunk 0, already recorded, was read %d times", n)
	}
	// The outcome is that of the in-process check of the same chunk.
	want, err := runCheck(ctx, src, pool, task(1), Config{})
	if err != nil {
		t.Fatal(err)
	}
	got := stored[1]
	got.Seconds, want.Seconds = 0, 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("verifier recorded %+v, the check finds %+v", got, want)
	}
	if !want.Differed || len(want.Diffs) == 0 {
		t.Errorf("chunk 1 differs on the target, the check says otherwise: %+v", want)
	}
}

// readCounter counts the source reads of each chunk.
type readCounter struct {
	*postgres.Source
	mu    sync.Mutex
	reads map[int]int
}

func (r *readCounter) Read(ctx context.Context, task *proto.ChunkTask, emit func([]byte) error) error {
	r.mu.Lock()
	r.reads[task.Chunk]++
	r.mu.Unlock()
	return r.Source.Read(ctx, task, emit)
}

func (r *readCounter) of(chunk int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads[chunk]
}
