package main

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/pprof"

	"github.com/urfave/cli/v2"
)

// Memory is bounded by settings, not by the size of the data: batches are
// at most --batch-bytes, each worker holds a few of them, and the broker
// holds at most --broker-batches-mib of them (in this process's memory when
// migrate embeds it without --data-dir). The Go heap is held near that by a
// soft memory limit, so the garbage collector does not let the heap grow to
// twice what is live (GOGC's default) while the stream is full.
const (
	// embeddedBatchesMiB is the in-memory embedded broker's default bound on
	// batches in flight: 16 batches of the default size, enough to keep
	// every loader busy while the extractors wait.
	embeddedBatchesMiB = 32
	// serverBatchesMiB is the default bound on a real broker, on disk.
	serverBatchesMiB = 1024
	// heapBaseMiB is what a process needs besides the embedded stream: the
	// workers' batch buffers, connection pools, NATS client buffers (about
	// 45 MiB live in a migrate), and room for the garbage they make. Every
	// batch is copied four or five times on its way through the broker, a
	// large allocation each time: with little room between what is live
	// and the limit, the runtime hands freed memory back to the OS at once
	// and faults it in again for the next batch. With 64 MiB of batches
	// and 128 here (live about 108 of a 192 MiB limit) that cost a tenth
	// of the process's CPU (page faults, madvise); 32 and 160 keep the
	// same limit and peak RSS and halve the faults (issue 9's data set:
	// 280-320k minor faults a run against 125-170k, 1.9 s less CPU).
	heapBaseMiB = 160
)

// embeddedInMemory says whether the command keeps the broker's streams in
// this process's memory: migrate or resume without --nats-url and
// --data-dir.
func embeddedInMemory(c *cli.Context) bool {
	return hasFlag(c, "data-dir") && c.String("nats-url") == "" && c.String("data-dir") == ""
}

func hasFlag(c *cli.Context, name string) bool {
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// batchesMiB is the bound on batches the broker holds.
func batchesMiB(c *cli.Context) int {
	if n := c.Int("broker-batches-mib"); n > 0 {
		return n
	}
	if embeddedInMemory(c) {
		return embeddedBatchesMiB
	}
	return serverBatchesMiB
}

// tuneRuntime applies --memory-limit-mib and starts --cpu-profile; the
// returned stop ends the profile.
func tuneRuntime(c *cli.Context, log *slog.Logger) (stop func(), err error) {
	limit := c.Int("memory-limit-mib")
	switch {
	case limit < 0:
		debug.SetMemoryLimit(math.MaxInt64) // none, whatever GOMEMLIMIT says
	case limit == 0 && os.Getenv("GOMEMLIMIT") != "":
		// The runtime already applied the environment's limit.
	default:
		if limit == 0 {
			limit = heapBaseMiB
			if embeddedInMemory(c) {
				limit += batchesMiB(c)
			}
		}
		debug.SetMemoryLimit(int64(limit) << 20)
	}
	path := c.String("cpu-profile")
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Warn("write CPU profile", "file", path, "err", err)
		}
	}, nil
}
