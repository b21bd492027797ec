// Package broker connects caravan to NATS JetStream: an embedded server for
// single-machine runs, a client connection for distributed ones, and the
// streams and consumers of proto's contract.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/internal/every"
	"github.com/caravan-db/caravan/proto"
)

// Embedded is an in-process NATS server with JetStream.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server with JetStream storing under dir,
// listening on loopback only (a random port when port is 0, -1 for no
// listener at all beyond in-process use is not supported by nats.go, so a
// loopback port is used). The server's warnings and errors (storage
// trouble, limits) go to log, when not nil.
func StartEmbedded(dir string, port int, log *slog.Logger) (*Embedded, error) {
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "caravan-embedded",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	attach(srv, log, slog.LevelWarn, nil)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: not ready after 10s")
	}
	return &Embedded{srv: srv}, nil
}

// URL is the client URL of the embedded server.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Connect opens a client connection that talks to the server in memory,
// without a socket: every batch crosses the connection twice, and the
// syscalls of a loopback socket showed up in profiles.
func (e *Embedded) Connect(name string) (*nats.Conn, jetstream.JetStream, error) {
	return Connect(e.URL(), name, nats.InProcessServer(e.srv))
}

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// Connect opens a client connection that keeps reconnecting: a broker
// restart must pause a worker, not kill it.
func Connect(url, name string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
	}, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats %s: %w", redact(url), scrub(err, url))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// EventConsumer creates or opens a run's durable event consumer for a role.
func EventConsumer(ctx context.Context, js jetstream.JetStream, role, run string) (jetstream.Consumer, error) {
	name := proto.EventsConsumer(role, run)
	c, err := js.CreateOrUpdateConsumer(ctx, proto.StreamEvents, jetstream.ConsumerConfig{
		Durable:           name,
		FilterSubject:     proto.EventsFilter(run),
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           time.Minute,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", name, err)
	}
	return c, nil
}

// Publish encodes and publishes a message with the given headers.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, msg any, header nats.Header) error {
	m, err := NewMsg(subject, msg, header)
	if err != nil {
		return err
	}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}

// PublishAsync publishes a message without waiting for the broker's
// acknowledgement: for hints whose loss costs only time.
func PublishAsync(js jetstream.JetStream, subject string, msg any, header nats.Header) error {
	m, err := NewMsg(subject, msg, header)
	if err != nil {
		return err
	}
	if _, err := js.PublishMsgAsync(m); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}

// PublishPatiently publishes m, retrying with backoff while the broker
// refuses it (a full stream: backpressure; a restart: an outage), until it
// is accepted, ctx ends, or patience runs out (0: never). Nothing is
// dropped quietly: the caller gets the last error.
func PublishPatiently(ctx context.Context, js jetstream.JetStream, m *nats.Msg, patience time.Duration) error {
	var deadline time.Time
	if patience > 0 {
		deadline = time.Now().Add(patience)
	}
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		_, err := js.PublishMsg(ctx, m)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || (!deadline.IsZero() && time.Now().After(deadline)) {
			return fmt.Errorf("publish %s: %w", m.Subject, err)
		}
		Pause(ctx, wait)
	}
}

// NewMsg encodes msg into a NATS message for subject with header.
func NewMsg(subject string, msg any, header nats.Header) (*nats.Msg, error) {
	data, err := proto.Marshal(msg)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subject)
	m.Data = data
	for k, v := range header {
		m.Header[k] = v
	}
	return m, nil
}

// FetchOne waits up to wait for one message of a pull consumer. It returns
// (nil, nil) when none came, and returns at once when ctx ends, so a
// stopping worker does not sit out the wait. A message that arrives after
// that is simply redelivered once its ack wait passes.
func FetchOne(ctx context.Context, cons jetstream.Consumer, wait time.Duration) (jetstream.Msg, error) {
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(wait))
	if err != nil {
		return nil, err
	}
	select {
	case msg, ok := <-batch.Messages():
		if !ok {
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
				return nil, err
			}
			return nil, nil
		}
		return msg, nil
	case <-ctx.Done():
		return nil, nil
	}
}

// Backoff is the redelivery delay after the n-th failed delivery: quick
// at first, then every 15 s while an outage lasts.
func Backoff(delivered uint64) time.Duration {
	d := time.Duration(1<<min(delivered, 6)) * 250 * time.Millisecond
	return min(d, 15*time.Second)
}

// Serve runs n workers that each pull one message at a time from cons and
// pass it to handle, until ctx ends. Fetch failures (a broker restarting)
// are logged and retried after a pause; handle owns acknowledgement.
func Serve(ctx context.Context, cons jetstream.Consumer, n int, log *slog.Logger, handle func(context.Context, jetstream.Msg)) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				msg, err := FetchOne(ctx, cons, 2*time.Second)
				if err != nil {
					if ctx.Err() == nil {
						log.WarnContext(ctx, "fetch", "consumer", cons.CachedInfo().Name, "err", err)
						Pause(ctx, time.Second)
					}
					continue
				}
				if msg != nil {
					handle(ctx, msg)
				}
			}
		}()
	}
	wg.Wait()
}

// Heartbeat tells JetStream every interval that msg is still being worked
// on, so a long job keeps its message while a worker that died loses it
// after one ack wait. An interval <= 0 sends none. stop ends it.
func Heartbeat(ctx context.Context, msg jetstream.Msg, interval time.Duration) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	return every.Do(ctx, interval, false, func(context.Context) { _ = msg.InProgress() })
}

// Pause waits d or until ctx ends, whichever comes first.
func Pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// WorkerID names this process to the other roles: host and process id.
func WorkerID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// CannotServe says at WARN that this worker cannot serve a run and tells
// the run's coordinator, which names the worker while it waits. The caller
// hands the run's message back for the workers that can serve it.
func CannotServe(ctx context.Context, js jetstream.JetStream, n *proto.WorkerNotice, log *slog.Logger) {
	log.WarnContext(ctx, "cannot serve this run: leaving its messages to the workers that can", "run", n.Run, "role", n.Role, "problem", n.Problem)
	n.V = proto.Version
	if err := PublishAsync(js, proto.EventSubject(n.Run, proto.EventWorkerNotice), n, nil); err != nil {
		log.WarnContext(ctx, "tell the run's coordinator", "run", n.Run, "err", err)
	}
}

// PurgeRun removes what is left of a finished run on the broker: tasks and
// batches of superseded attempts, and its events, so no worker goes round
// them again (a validator whose target does not hold the run would offer
// its events back for ever). Best effort: what cannot be purged ages out.
func PurgeRun(ctx context.Context, js jetstream.JetStream, run string) error {
	var errs []error
	for stream, subject := range map[string]string{
		proto.StreamTasks:   proto.TasksSubject(run),
		proto.StreamBatches: proto.BatchesSubject(run),
		proto.StreamEvents:  proto.EventsFilter(run),
	} {
		s, err := js.Stream(ctx, stream)
		if err == nil {
			err = s.Purge(ctx, jetstream.WithPurgeSubject(subject))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("purge %s of run %s: %w", stream, run, err))
		}
	}
	return errors.Join(errs...)
}
