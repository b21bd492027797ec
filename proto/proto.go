// Package proto is caravan's wire contract: the subjects, stream and consumer
// names, message structs, their msgpack codec, header keys and the protocol
// version. Every role speaks only through these types, so proto imports
// nothing else of caravan's.
package proto

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// Version is the protocol version every message carries in `v`. A worker
// refuses a message of another version rather than guess at its meaning.
// Version 2: row digests are XXH3-64, not md5. Version 3: a ChunkTask and
// its RowBatches carry the chunk's row encoding, which may be binary COPY.
const Version = 3

// Stream names.
const (
	StreamTasks   = "CARAVAN_TASKS"
	StreamBatches = "CARAVAN_BATCHES"
	StreamEvents  = "CARAVAN_EVENTS"
	// StreamChecks carries the chunk checks of distributed verifications
	// (`caravan verify --nats-url`), taken by `caravan verifier` workers.
	StreamChecks = "CARAVAN_CHECKS"
	// BlobBucket is the JetStream Object Store bucket that carries single
	// rows too large for one message.
	BlobBucket = "CARAVAN_BLOBS"
)

// Durable consumer names. Tasks and batches are work queues shared by every
// run on the broker: the run id is part of each subject and message, so runs
// never mix. The coordinator's event consumer is per run (see EventsConsumer)
// because a coordinator only acts for its own run.
const (
	ConsumerExtractors = "extractors"
	ConsumerLoaders    = "loaders"
	// The validator's two consumers, one per kind of event it judges, serve
	// every run. One consumer per subject, not one over both: a consumer
	// with several filter subjects needs NATS 2.10, and one filtered on
	// every event would wade through each batch_loaded.
	ConsumerValidatorTables = "validator-tables"
	ConsumerValidatorFKs    = "validator-fks"
	// ConsumerValidatorLoaded takes table_loaded: a table's content is
	// judged while its keys are still being built.
	ConsumerValidatorLoaded = "validator-loaded"
	// ConsumerVerifiers is the work queue of every verification's checks.
	ConsumerVerifiers = "verifiers"
)

// Subject roots; per-run subjects are built by the functions below.
const (
	SubjectAllTasks   = "caravan.*.tasks"
	SubjectAllBatches = "caravan.*.batches"
	SubjectAllEvents  = "caravan.*.events.>"
	SubjectAllChecks  = "caravan.*.checks"
)

// Event kinds, the last token of an event subject.
const (
	EventChunkExtracted = "chunk_extracted"
	EventBatchLoaded    = "batch_loaded"
	EventBatchRejected  = "batch_rejected" // the dead-letter subject
	EventChunkFailed    = "chunk_failed"
	EventTableLoaded    = "table_loaded"
	EventTableFinalized = "table_finalized"
	EventForeignKeys    = "foreign_keys"
	EventVerdict        = "verdict"
	EventRunFinished    = "run_finished"
	EventWorkerNotice   = "worker_notice"
)

// Header keys.
const (
	HeaderMsgID = "Nats-Msg-Id" // JetStream de-duplication window
)

// Row encodings: how a chunk's rows travel, are loaded, read back and
// digested (see rowtext.go and rowbinary.go). The planner chooses one per
// table; a ChunkTask and its RowBatches carry it.
const (
	// EncodingCopyText: PostgreSQL COPY text lines, each value in
	// PostgreSQL's canonical text form. Every source can produce it.
	EncodingCopyText = "copy-text"
	// EncodingCopyBinary: PostgreSQL binary COPY tuples without the
	// stream's header and trailer (the loader adds them). Only for a
	// PostgreSQL source whose columns keep their built-in type.
	EncodingCopyBinary = "copy-binary"
)

// TasksSubject is where the coordinator publishes a run's ChunkTasks.
func TasksSubject(run string) string { return "caravan." + run + ".tasks" }

// BatchesSubject is where extractors publish a run's RowBatches.
func BatchesSubject(run string) string { return "caravan." + run + ".batches" }

// ChecksSubject is where a verification publishes its chunk checks.
func ChecksSubject(run string) string { return "caravan." + run + ".checks" }

// EventSubject is the subject of one kind of event of a run.
func EventSubject(run, kind string) string { return "caravan." + run + ".events." + kind }

// AllEventsOf matches one kind of event of every run.
func AllEventsOf(kind string) string { return "caravan.*.events." + kind }

// EventsFilter matches every event of a run.
func EventsFilter(run string) string { return "caravan." + run + ".events.>" }

// EventsConsumer names the durable consumer a role uses for a run's events
// (role is "coordinator" or "validator").
func EventsConsumer(role, run string) string { return role + "-" + run }

// SubjectRun returns the run id of a per-run subject ("" for another).
func SubjectRun(subject string) string {
	parts := strings.SplitN(subject, ".", 3)
	if len(parts) < 3 || parts[0] != "caravan" {
		return ""
	}
	return parts[1]
}

// EventKind returns the event kind of an event subject.
func EventKind(subject string) string {
	i := strings.LastIndexByte(subject, '.')
	return subject[i+1:]
}

// RangeKind says how a ChunkTask's bounds are read.
const (
	RangeKey      = "key"  // Lo/Hi are primary-key tuples
	RangePhysical = "phys" // Lo/Hi are physical locations (ctid block numbers, %%physloc%%)
	RangeAll      = "all"  // the whole table in one chunk
)

// TableRef names a table on one side.
type TableRef struct {
	Schema string `msgpack:"schema"`
	Name   string `msgpack:"name"`
}

func (r TableRef) String() string { return r.Schema + "." + r.Name }

// ChunkTask asks an extractor for one range of one table. Everything an
// extractor needs travels here, so extractors keep no schema of their own,
// and the batch limits travel too: seq k of a re-extracted chunk must hold
// the same rows whichever extractor reads it.
type ChunkTask struct {
	V          int      `msgpack:"v"`
	Run        string   `msgpack:"run"`
	Table      string   `msgpack:"table"` // the table's id: its qualified target name
	Chunk      int      `msgpack:"chunk"`
	Attempt    int      `msgpack:"attempt"`
	Source     TableRef `msgpack:"source"`
	Target     TableRef `msgpack:"target"`
	Cols       []string `msgpack:"cols"`  // source column names, in load order
	Types      []string `msgpack:"types"` // source type per column (for value conversion)
	TargetCols []string `msgpack:"tcols"` // target column names, same order
	// TargetTypes are the target PostgreSQL types, same order: a source
	// other than PostgreSQL prints each value in its target type's text, and
	// the coordinator's choice (overrides included) must be the one used.
	TargetTypes []string `msgpack:"ttypes"`
	Key         []string `msgpack:"key"`       // source key columns, in key order
	KeyTypes    []string `msgpack:"key_types"` // source types of the key columns, for casting bounds
	Range       string   `msgpack:"range"`     // RangeKey, RangePhysical or RangeAll
	// Lo and Hi bound the chunk as [Lo, Hi): a nil bound is open, a bound
	// holds one text value per key column (or one physical location).
	Lo         []string          `msgpack:"lo"`
	Hi         []string          `msgpack:"hi"`
	Snapshot   string            `msgpack:"snapshot"` // source snapshot id, "" when the source has none
	BatchBytes int               `msgpack:"batch_bytes"`
	BatchRows  int               `msgpack:"batch_rows"`
	Options    map[string]string `msgpack:"opts,omitempty"` // source-specific read options
	// Encoding is the row encoding the chunk is read, carried, loaded and
	// digested in; "" means EncodingCopyText.
	Encoding string `msgpack:"encoding,omitempty"`
}

// RowEncoding is the task's encoding, EncodingCopyText when unset.
func (t *ChunkTask) RowEncoding() string { return EncodingOrText(t.Encoding) }

// EncodingOrText returns enc, or EncodingCopyText for "" (a table recorded
// before encodings could differ).
func EncodingOrText(enc string) string {
	if enc == "" {
		return EncodingCopyText
	}
	return enc
}

// RowBatch carries rows of one chunk, in key order. Data holds Rows rows in
// Encoding (COPY text lines, or binary COPY tuples without header and
// trailer); a single row larger than a message travels in the Object Store
// and Blob names it instead.
type RowBatch struct {
	V        int      `msgpack:"v"`
	Run      string   `msgpack:"run"`
	Table    string   `msgpack:"table"`
	Chunk    int      `msgpack:"chunk"`
	Attempt  int      `msgpack:"attempt"`
	Seq      int      `msgpack:"seq"`
	Last     bool     `msgpack:"last"`
	Rows     int      `msgpack:"rows"`
	Encoding string   `msgpack:"encoding"`
	Target   TableRef `msgpack:"target"`
	Cols     []string `msgpack:"cols"` // target columns
	Key      []int    `msgpack:"key"`  // positions of the key columns in Cols, to name a rejected row
	Data     []byte   `msgpack:"data"`
	Blob     string   `msgpack:"blob,omitempty"`
	Digest   string   `msgpack:"digest"` // digest of this batch's rows
}

// ChunkExtracted says an extractor read a whole chunk attempt.
type ChunkExtracted struct {
	V       int    `msgpack:"v"`
	Run     string `msgpack:"run"`
	Table   string `msgpack:"table"`
	Chunk   int    `msgpack:"chunk"`
	Attempt int    `msgpack:"attempt"`
	Batches int    `msgpack:"batches"`
	Rows    int64  `msgpack:"rows"`
	Bytes   int64  `msgpack:"bytes"`
	Digest  string `msgpack:"digest"`
	// Parts split Digest by key value (see Parts); nil for a chunk without.
	Parts *Parts `msgpack:"parts,omitempty"`
	// Started is when the read began (Unix nanoseconds): a table's copy time
	// runs from its first read, not from when its chunks were queued.
	Started int64 `msgpack:"started"`
	// Finished is when the read ended and Worker the extractor process
	// (host:pid) that read it: the report's timeline draws each worker's
	// chunks. Both are empty from an extractor too old to say.
	Finished int64  `msgpack:"finished,omitempty"`
	Worker   string `msgpack:"worker,omitempty"`
}

// BatchLoaded says a loader committed one batch (or found it committed).
type BatchLoaded struct {
	V         int    `msgpack:"v"`
	Run       string `msgpack:"run"`
	Table     string `msgpack:"table"`
	Chunk     int    `msgpack:"chunk"`
	Attempt   int    `msgpack:"attempt"`
	Seq       int    `msgpack:"seq"`
	Rows      int    `msgpack:"rows"`
	Bytes     int    `msgpack:"bytes"`
	Duplicate bool   `msgpack:"dup"`
}

// BatchRejected is published on the dead-letter subject when PostgreSQL
// refuses a batch's data. The chunk, and so the table, fail.
type BatchRejected struct {
	V       int    `msgpack:"v"`
	Run     string `msgpack:"run"`
	Table   string `msgpack:"table"`
	Chunk   int    `msgpack:"chunk"`
	Attempt int    `msgpack:"attempt"`
	Seq     int    `msgpack:"seq"`
	Column  string `msgpack:"column"`
	Key     string `msgpack:"key"`
	Error   string `msgpack:"error"`
}

// ChunkFailed says a chunk could not be extracted, after every retry.
type ChunkFailed struct {
	V       int    `msgpack:"v"`
	Run     string `msgpack:"run"`
	Table   string `msgpack:"table"`
	Chunk   int    `msgpack:"chunk"`
	Attempt int    `msgpack:"attempt"`
	Error   string `msgpack:"error"`
}

// TableLoaded says every chunk of a table is loaded and the source's own
// count recorded: its content can be judged, before its keys and indexes
// exist (the coordinator builds them meanwhile).
type TableLoaded struct {
	V     int    `msgpack:"v"`
	Run   string `msgpack:"run"`
	Table string `msgpack:"table"`
}

// TableFinalized says a table's data, indexes, keys and sequences are in place.
type TableFinalized struct {
	V     int    `msgpack:"v"`
	Run   string `msgpack:"run"`
	Table string `msgpack:"table"`
	Error string `msgpack:"error,omitempty"`
	// Content: a TableLoaded was published for this load, and the content
	// levels (count, digest) are judged on it; this event adds the rest.
	Content bool `msgpack:"content,omitempty"`
}

// ForeignKeysCreated says every foreign key of the run was created.
type ForeignKeysCreated struct {
	V     int    `msgpack:"v"`
	Run   string `msgpack:"run"`
	Error string `msgpack:"error,omitempty"`
}

// Verdict is the validator's judgement of one table at one level.
type Verdict struct {
	V      int    `msgpack:"v"`
	Run    string `msgpack:"run"`
	Table  string `msgpack:"table"`
	Level  string `msgpack:"level"`
	OK     bool   `msgpack:"ok"`
	Detail string `msgpack:"detail"`
}

// RunFinished says the coordinator has nothing more to do for a run.
type RunFinished struct {
	V      int    `msgpack:"v"`
	Run    string `msgpack:"run"`
	Status string `msgpack:"status"`
}

// WorkerNotice tells a run's coordinator that a worker cannot serve the
// run (its target holds no such run: another database than the run's) and
// leaves the run's messages to the workers that can; the coordinator says
// so while it waits.
type WorkerNotice struct {
	V       int    `msgpack:"v"`
	Run     string `msgpack:"run"`
	Role    string `msgpack:"role"`
	Worker  string `msgpack:"worker"` // host and process id
	Problem string `msgpack:"problem"`
}

// Marshal encodes a message.
func Marshal(v any) ([]byte, error) { return msgpack.Marshal(v) }

// MarshalTo encodes a message into buf (appending), so a hot path can
// reuse one buffer instead of allocating a megabyte per batch.
func MarshalTo(buf *bytes.Buffer, v any) error { return msgpack.NewEncoder(buf).Encode(v) }

// Unmarshal decodes a message and refuses another protocol version.
func Unmarshal(data []byte, v any) error {
	if err := msgpack.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	if got := versionOf(v); got != Version {
		return fmt.Errorf("decode %T: protocol version %d, this build speaks %d", v, got, Version)
	}
	return nil
}

func versionOf(v any) int {
	switch m := v.(type) {
	case *ChunkTask:
		return m.V
	case *RowBatch:
		return m.V
	case *ChunkExtracted:
		return m.V
	case *BatchLoaded:
		return m.V
	case *BatchRejected:
		return m.V
	case *TableLoaded:
		return m.V
	case *TableFinalized:
		return m.V
	case *ChunkFailed:
		return m.V
	case *ForeignKeysCreated:
		return m.V
	case *Verdict:
		return m.V
	case *WorkerNotice:
		return m.V
	case *RunFinished:
		return m.V
	}
	return Version
}

// BatchMsgID is the JetStream de-duplication id of a batch: a re-extracted
// chunk republishing the same seq is dropped by the broker when it can be,
// and by the loader's ledger when it cannot.
func BatchMsgID(b *RowBatch) string {
	return fmt.Sprintf("%s.%s.%d.%d.%d", b.Run, b.Table, b.Chunk, b.Attempt, b.Seq)
}

// BlobName is the Object Store name of a batch's oversized row.
func BlobName(b *RowBatch) string { return BatchMsgID(b) }
