package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/proto"
)

// MinServerVersion is the oldest NATS server caravan runs on: 2.9 brought
// the consumer-create API with the filter subject in the request subject
// (which nats.go's CreateOrUpdateConsumer uses) and inactivity thresholds
// on durable consumers. Nothing newer is needed: Debian 12's 2.9.10 works.
const MinServerVersion = "2.9.0"

// say is how often a wait that has not ended says so again.
const say = 10 * time.Second

// askTimeout bounds one request of a wait or retry loop: a cluster without
// a leader yet may not answer at all, and the loop must get to ask again
// (and say it waits) rather than sit on one request for the caller's whole
// deadline.
const askTimeout = 5 * time.Second

// ask runs one request with askTimeout.
func ask[T any](ctx context.Context, req func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	return req(ctx)
}

// Ready waits until the connection reaches a NATS server with JetStream,
// saying every so often what it waits for, and refuses a server too old for
// caravan, naming the version needed, before anything else can fail on it
// in a less telling way.
func Ready(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, log *slog.Logger) error {
	started, said := time.Now(), time.Now()
	for {
		_, err := ask(ctx, func(ctx context.Context) (*jetstream.AccountInfo, error) { return js.AccountInfo(ctx) })
		if err == nil {
			break
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("nats server %s: JetStream is not enabled for this account", nc.ConnectedUrlRedacted())
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for NATS JetStream: %w", ctx.Err())
		}
		if time.Since(said) >= say {
			log.WarnContext(ctx, "waiting for NATS JetStream (is the server up, with -js?)", "servers", redactAll(nc.Servers()),
				"connected", nc.IsConnected(), "waited", time.Since(started).Round(time.Second).String(), "err", err)
			said = time.Now()
		}
		Pause(ctx, 250*time.Millisecond)
	}
	return CheckVersion(nc.ConnectedServerVersion())
}

// CheckVersion refuses a server version older than MinServerVersion.
func CheckVersion(version string) error {
	if !atLeast(version, MinServerVersion) {
		return fmt.Errorf("nats server version %q is too old: caravan needs nats-server %s or later", version, MinServerVersion)
	}
	return nil
}

// atLeast compares dotted versions ("2.9.10", "2.10.0-beta.1") numerically.
func atLeast(version, min string) bool {
	have, want := versionParts(version), versionParts(min)
	for i := range want {
		if have[i] != want[i] {
			return have[i] > want[i]
		}
	}
	return true
}

func versionParts(v string) [3]int {
	var out [3]int
	v, _, _ = strings.Cut(strings.TrimPrefix(v, "v"), "-")
	for i, p := range strings.SplitN(v, ".", 3) {
		out[i], _ = strconv.Atoi(p)
	}
	return out
}

func redactAll(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = redact(u)
	}
	return out
}

// StreamConfig sizes the streams.
type StreamConfig struct {
	// BatchesMaxBytes bounds the batches in flight. A full stream refuses new
	// batches (DiscardNew) and extractors wait: backpressure, never loss.
	BatchesMaxBytes int64
	// Replicas is how many servers of a NATS cluster keep each stream, the
	// blob bucket and every consumer (consumers inherit it): 3 on a
	// three-node cluster survives the loss of any one node; 1 on a single
	// server. 0 keeps what each stream has (1 for a new one), so a
	// coordinator started without --replicas never quietly drops copies
	// another one asked for.
	Replicas int
	// Memory keeps streams in memory instead of files: for an embedded broker
	// that lives and dies with its one process, where files buy no
	// durability (the target's ledger is what a resume reads) and cost a
	// second write of every batch.
	Memory bool
}

// setupPatience bounds how long stream and consumer setup waits for a
// cluster that is still electing its leaders or gathering its peers.
const setupPatience = 2 * time.Minute

// EnsureStreams creates or updates the streams and the blob bucket. Only
// the side that starts runs calls it (migrate, resume, the coordinator).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamConfig, log *slog.Logger) error {
	if cfg.BatchesMaxBytes <= 0 {
		cfg.BatchesMaxBytes = 1 << 30
	}
	// A single server refuses a new replicated stream but quietly accepts
	// an existing one's update to more replicas it cannot keep: refuse
	// before promising copies that are not there.
	if nc := js.Conn(); cfg.Replicas > 1 && nc.ConnectedClusterName() == "" {
		return fmt.Errorf("%d replicas need a NATS cluster of as many nodes; the server at %s is not in a cluster", cfg.Replicas, nc.ConnectedUrlRedacted())
	}
	storage := jetstream.FileStorage
	if cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	streams := []jetstream.StreamConfig{
		{Name: proto.StreamTasks, Subjects: []string{proto.SubjectAllTasks}, Retention: jetstream.WorkQueuePolicy,
			Storage: storage, Replicas: cfg.Replicas},
		{Name: proto.StreamBatches, Subjects: []string{proto.SubjectAllBatches}, Retention: jetstream.WorkQueuePolicy,
			Storage: storage, Replicas: cfg.Replicas, MaxBytes: cfg.BatchesMaxBytes, Discard: jetstream.DiscardNew,
			Duplicates: 2 * time.Minute},
		{Name: proto.StreamEvents, Subjects: []string{proto.SubjectAllEvents}, Retention: jetstream.LimitsPolicy,
			Storage: storage, Replicas: cfg.Replicas, MaxAge: 7 * 24 * time.Hour},
	}
	for _, sc := range streams {
		sc.Replicas = replicas(ctx, js, sc.Name, cfg.Replicas)
		err := patiently(ctx, log, "stream "+sc.Name, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateStream(ctx, sc)
			return err
		})
		if err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	err := patiently(ctx, log, "object store "+proto.BlobBucket, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: proto.BlobBucket,
			Storage: jetstream.StorageType(storage), Replicas: replicas(ctx, js, "OBJ_"+proto.BlobBucket, cfg.Replicas)})
		return err
	})
	if err != nil {
		return fmt.Errorf("object store %s: %w", proto.BlobBucket, err)
	}
	return nil
}

// replicas is the replica count a stream is to have: the one asked for,
// else the one it has, else 1.
func replicas(ctx context.Context, js jetstream.JetStream, stream string, asked int) int {
	if asked > 0 {
		return asked
	}
	if s, err := js.Stream(ctx, stream); err == nil {
		return max(s.CachedInfo().Config.Replicas, 1)
	}
	return 1
}

// ConsumerConfig is what the shared consumers are configured with. One
// place owns it, the side that creates the streams (migrate, resume, the
// coordinator), from its flags; workers bind to the consumers as they are
// (Bind) and read their ack wait from them, so no worker's settings
// silently override another's.
type ConsumerConfig struct {
	// TaskAckWait is how long a chunk task may go without a heartbeat
	// before another extractor gets it.
	TaskAckWait time.Duration
	// BatchAckWait is how long a batch may stay unacknowledged before
	// another loader gets it.
	BatchAckWait time.Duration
}

// Default ack waits.
const (
	DefaultTaskAckWait  = time.Minute
	DefaultBatchAckWait = 2 * time.Minute
	// validatorAckWait bounds how soon the event of a validator that died
	// goes to another; the validator extends an event while it checks, so
	// it need not outlast the validation of a large table.
	validatorAckWait = 30 * time.Second
)

// EnsureConsumers creates or updates the shared consumers of every run:
// extractors, loaders and the validator's two. Deliveries are unlimited: a
// message JetStream stopped delivering would leave its run waiting
// forever, so the workers decide themselves when to give up on one (and
// say so), and retry for as long as a database is merely away.
func EnsureConsumers(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig, log *slog.Logger) error {
	if cfg.TaskAckWait <= 0 {
		cfg.TaskAckWait = DefaultTaskAckWait
	}
	if cfg.BatchAckWait <= 0 {
		cfg.BatchAckWait = DefaultBatchAckWait
	}
	work := func(filter string, ackWait time.Duration) jetstream.ConsumerConfig {
		return jetstream.ConsumerConfig{FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait,
			MaxDeliver: -1, MaxAckPending: 1000}
	}
	events := func(kind string) jetstream.ConsumerConfig {
		return jetstream.ConsumerConfig{FilterSubject: proto.AllEventsOf(kind), AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: validatorAckWait, MaxDeliver: -1, DeliverPolicy: jetstream.DeliverAllPolicy}
	}
	consumers := []struct {
		stream, name string
		cfg          jetstream.ConsumerConfig
	}{
		{proto.StreamTasks, proto.ConsumerExtractors, work(proto.SubjectAllTasks, cfg.TaskAckWait)},
		{proto.StreamBatches, proto.ConsumerLoaders, work(proto.SubjectAllBatches, cfg.BatchAckWait)},
		{proto.StreamEvents, proto.ConsumerValidatorLoaded, events(proto.EventTableLoaded)},
		{proto.StreamEvents, proto.ConsumerValidatorTables, events(proto.EventTableFinalized)},
		{proto.StreamEvents, proto.ConsumerValidatorFKs, events(proto.EventForeignKeys)},
	}
	for _, c := range consumers {
		c.cfg.Durable = c.name
		if old, err := js.Consumer(ctx, c.stream, c.name); err == nil && old.CachedInfo().Config.AckWait != c.cfg.AckWait {
			log.WarnContext(ctx, "changing a shared consumer's ack wait, for every run on the broker", "consumer", c.name,
				"from", old.CachedInfo().Config.AckWait.String(), "to", c.cfg.AckWait.String())
		}
		err := patiently(ctx, log, "consumer "+c.name, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, c.stream, c.cfg)
			return err
		})
		if err != nil {
			return fmt.Errorf("consumer %s on %s: %w", c.name, c.stream, err)
		}
	}
	return dropRetired(ctx, js, log)
}

// retiredConsumers were shared consumers of earlier versions. Left on an
// upgraded broker they would keep a position nobody reads and show in
// every listing of the broker's consumers, so the owner removes them.
var retiredConsumers = []struct{ stream, name string }{
	{proto.StreamEvents, "validator"}, // split into validator-tables and validator-fks for nats-server 2.9
}

func dropRetired(ctx context.Context, js jetstream.JetStream, log *slog.Logger) error {
	for _, c := range retiredConsumers {
		err := js.DeleteConsumer(ctx, c.stream, c.name)
		switch {
		case err == nil:
			log.InfoContext(ctx, "removed a consumer of an earlier caravan version", "stream", c.stream, "consumer", c.name)
		case errors.Is(err, jetstream.ErrConsumerNotFound):
		default:
			return fmt.Errorf("remove retired consumer %s on %s: %w", c.name, c.stream, err)
		}
	}
	return nil
}

// EnsureChecks creates or updates the stream and the shared consumer of
// verification checks. The verify command owns them, as the coordinator
// owns the migrate streams: `caravan verifier` workers only bind. A check
// is extended while it runs, so ackWait only bounds how soon the check of
// a verifier that died goes to another.
func EnsureChecks(ctx context.Context, js jetstream.JetStream, cfg StreamConfig, ackWait time.Duration, log *slog.Logger) error {
	storage := jetstream.FileStorage
	if cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	sc := jetstream.StreamConfig{Name: proto.StreamChecks, Subjects: []string{proto.SubjectAllChecks}, Retention: jetstream.WorkQueuePolicy,
		Storage: storage, Replicas: replicas(ctx, js, proto.StreamChecks, cfg.Replicas), Duplicates: 2 * time.Minute}
	err := patiently(ctx, log, "stream "+sc.Name, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, sc)
		return err
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", sc.Name, err)
	}
	cc := jetstream.ConsumerConfig{Durable: proto.ConsumerVerifiers, FilterSubject: proto.SubjectAllChecks,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: -1, MaxAckPending: 1000}
	err = patiently(ctx, log, "consumer "+cc.Durable, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateConsumer(ctx, proto.StreamChecks, cc)
		return err
	})
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", cc.Durable, proto.StreamChecks, err)
	}
	return nil
}

// Bind opens an existing shared consumer, waiting for it, and saying so
// every so often, until the side that owns the consumers has created it:
// a worker may well start before the first coordinator.
func Bind(ctx context.Context, js jetstream.JetStream, stream, name string, log *slog.Logger) (jetstream.Consumer, error) {
	started, said := time.Now(), time.Now()
	for {
		c, err := ask(ctx, func(ctx context.Context) (jetstream.Consumer, error) { return js.Consumer(ctx, stream, name) })
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for consumer %s on %s: %w", name, stream, ctx.Err())
		}
		if time.Since(said) >= say {
			log.InfoContext(ctx, "waiting for a coordinator (or migrate, resume; verify --nats-url for the verifiers) to create the consumer", "stream", stream,
				"consumer", name, "waited", time.Since(started).Round(time.Second).String(), "err", err)
			said = time.Now()
		}
		Pause(ctx, time.Second)
	}
}

// patiently runs a setup step until it succeeds, retrying for a while on
// errors a cluster gives while it elects leaders or gathers peers, and
// saying so. Any other error is returned at once.
func patiently(ctx context.Context, log *slog.Logger, what string, step func(context.Context) error) error {
	started, said := time.Now(), time.Now()
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		_, err := ask(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, step(ctx) })
		if err == nil || !settling(err) || ctx.Err() != nil || time.Since(started) > setupPatience {
			return err
		}
		if time.Since(said) >= say {
			log.WarnContext(ctx, "NATS is not ready yet, trying again", "for", what, "waited", time.Since(started).Round(time.Second).String(), "err", err)
			said = time.Now()
		}
		Pause(ctx, wait)
	}
}

// settling says whether err is one a NATS cluster returns while it is
// still forming or failing over, rather than a refusal.
func settling(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeJetStreamNotEnabled, 10008 /* JetStream temporarily unavailable */, 10023 /* insufficient resources */ :
			return true
		}
		return apiErr.Code == 503
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}
