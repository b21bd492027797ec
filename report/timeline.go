package report

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ChunkTimes is one chunk's life in a run: queued from Published, read by
// an extractor from Read to Extracted, its batches committed from
// FirstCommit to LastCommit (times of the chunk's current attempt).
type ChunkTimes struct {
	Table       string
	Chunk       int
	Attempt     int
	Status      string
	Rows        int64
	Bytes       int64
	Error       string
	Published   *time.Time
	Read        *time.Time
	Extracted   *time.Time
	FirstCommit *time.Time
	LastCommit  *time.Time
	// Worker is the extractor process that read the chunk ("" from an
	// extractor too old to say). Lane is the row of the timeline the chunk
	// is drawn in: each worker has its own lanes, one per chunk it had in
	// flight at once (its concurrent reads, and the loads that follow).
	Worker string
	Lane   int
}

// Check is the validation of one table: its levels (count, keys, digest
// are judged together; fk, after every table is in, apart).
type Check struct {
	Table   string
	Levels  []string
	OK      bool
	Started time.Time
	Ended   time.Time
	Lane    int // one lane per table
}

// Timeline is everything the HTML report draws over time.
type Timeline struct {
	Chunks  []ChunkTimes
	Checks  []Check
	Rejects map[string]int // per table
	Lanes   int
	// Workers label the lanes: the first lane of each worker and its name.
	Workers []WorkerLanes
}

// WorkerLanes is one extractor's block of lanes in the timeline.
type WorkerLanes struct {
	Worker string
	First  int
	Lanes  int
}

// LoadTimeline reads a run's chunk and validation times from the target.
func LoadTimeline(ctx context.Context, pool *pgxpool.Pool, run string) (*Timeline, error) {
	rows, err := pool.Query(ctx, `SELECT c.table_id, c.chunk, c.attempt, c.status, coalesce(c.rows, 0), coalesce(c.bytes, 0), coalesce(c.error, ''),
			c.published_at, c.read_at, c.extracted_at, l.first_commit, coalesce(l.last_commit, c.loaded_at), coalesce(c.extractor, '')
		FROM caravan.chunks c
		LEFT JOIN (SELECT table_id, chunk, attempt, min(loaded_at) AS first_commit, max(loaded_at) AS last_commit
		           FROM caravan.ledger WHERE run_id = $1 GROUP BY table_id, chunk, attempt) l
		  ON l.table_id = c.table_id AND l.chunk = c.chunk AND l.attempt = c.attempt
		WHERE c.run_id = $1 ORDER BY c.table_id, c.chunk`, run)
	if err != nil {
		return nil, fmt.Errorf("timeline of run %s: %w", run, err)
	}
	chunks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChunkTimes, error) {
		var c ChunkTimes
		err := r.Scan(&c.Table, &c.Chunk, &c.Attempt, &c.Status, &c.Rows, &c.Bytes, &c.Error, &c.Published, &c.Read, &c.Extracted, &c.FirstCommit, &c.LastCommit, &c.Worker)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("timeline of run %s: %w", run, err)
	}
	tl := &Timeline{Chunks: chunks, Rejects: map[string]int{}}
	rows, err = pool.Query(ctx, `SELECT table_id, level, ok, checked_at - make_interval(secs => seconds), checked_at
		FROM caravan.verdicts WHERE run_id = $1 ORDER BY checked_at, table_id, level`, run)
	if err != nil {
		return nil, fmt.Errorf("validation times of run %s: %w", run, err)
	}
	levels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Check, error) {
		var c Check
		var level string
		err := r.Scan(&c.Table, &level, &c.OK, &c.Started, &c.Ended)
		c.Levels = []string{level}
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("validation times of run %s: %w", run, err)
	}
	tl.Checks = groupChecks(levels)
	rows, err = pool.Query(ctx, `SELECT table_id, count(*) FROM caravan.rejects WHERE run_id = $1 GROUP BY table_id`, run)
	if err != nil {
		return nil, fmt.Errorf("rejects of run %s: %w", run, err)
	}
	defer rows.Close()
	for rows.Next() {
		var table string
		var n int
		if err := rows.Scan(&table, &n); err != nil {
			return nil, fmt.Errorf("rejects of run %s: %w", run, err)
		}
		tl.Rejects[table] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rejects of run %s: %w", run, err)
	}
	tl.pack()
	return tl, nil
}

// span is the part of a chunk's life drawn as bars: from its read to its
// last commit (what is known of it).
func (c *ChunkTimes) span() (start, end time.Time, ok bool) {
	var ts []time.Time
	for _, t := range []*time.Time{c.Read, c.Extracted, c.FirstCommit, c.LastCommit} {
		if t != nil {
			ts = append(ts, *t)
		}
	}
	if len(ts) == 0 {
		return time.Time{}, time.Time{}, false
	}
	start, end = ts[0], ts[0]
	for _, t := range ts[1:] {
		if t.Before(start) {
			start = t
		}
		if t.After(end) {
			end = t
		}
	}
	return start, end, true
}

// pack gives each worker a block of lanes and each of its chunks the first
// lane of the block free at the chunk's start (interval partitioning: as
// many lanes as the worker ever had chunks in flight at once).
func (tl *Timeline) pack() {
	byWorker := map[string][]int{}
	for i := range tl.Chunks {
		if _, _, ok := tl.Chunks[i].span(); !ok {
			tl.Chunks[i].Lane = -1 // never read: nothing to draw
			continue
		}
		byWorker[tl.Chunks[i].Worker] = append(byWorker[tl.Chunks[i].Worker], i)
	}
	workers := make([]string, 0, len(byWorker))
	for w := range byWorker {
		workers = append(workers, w)
	}
	sort.Strings(workers)
	for _, w := range workers {
		order := byWorker[w]
		start := func(i int) time.Time { s, _, _ := tl.Chunks[i].span(); return s }
		sort.SliceStable(order, func(a, b int) bool { return start(order[a]).Before(start(order[b])) })
		var free []time.Time // when each lane's last chunk ends
		for _, i := range order {
			s, e, _ := tl.Chunks[i].span()
			lane := -1
			for l, until := range free {
				if !until.After(s) {
					lane = l
					break
				}
			}
			if lane < 0 {
				lane = len(free)
				free = append(free, time.Time{})
			}
			free[lane] = e
			tl.Chunks[i].Lane = tl.Lanes + lane
		}
		tl.Workers = append(tl.Workers, WorkerLanes{Worker: w, First: tl.Lanes, Lanes: len(free)})
		tl.Lanes += len(free)
	}
}

// groupChecks merges a table's levels judged together into one check, and
// gives each table its lane.
func groupChecks(levels []Check) []Check {
	var out []Check
	at := map[string]int{}
	lanes := map[string]int{}
	for _, c := range levels {
		key := c.Table
		if c.Levels[0] == "fk" {
			key += " fk"
		}
		if _, ok := lanes[c.Table]; !ok {
			lanes[c.Table] = len(lanes)
		}
		i, ok := at[key]
		if !ok {
			c.Lane = lanes[c.Table]
			at[key] = len(out)
			out = append(out, c)
			continue
		}
		g := &out[i]
		g.Levels = append(g.Levels, c.Levels...)
		g.OK = g.OK && c.OK
		if c.Started.Before(g.Started) {
			g.Started = c.Started
		}
		if c.Ended.After(g.Ended) {
			g.Ended = c.Ended
		}
	}
	return out
}

// CheckLanes is how many lanes the validation checks take.
func (tl *Timeline) CheckLanes() int {
	n := 0
	for _, c := range tl.Checks {
		n = max(n, c.Lane+1)
	}
	return n
}
