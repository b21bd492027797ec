package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/report"
	"github.com/caravan-db/caravan/target"
	"github.com/caravan-db/caravan/telemetry"
)

// liveView sets up how a run that this process drives is shown: on a
// terminal, progress bars with the log lines kept above them; otherwise
// the log alone (JSON unless --log-format says text), progress included.
func liveView(c *cli.Context) (*report.Console, *slog.Logger, error) {
	var console *report.Console
	logOut, format := io.Writer(os.Stderr), c.String("log-format")
	if telemetry.IsTerminal(os.Stderr) && format != telemetry.LogJSON {
		console = report.NewConsole(os.Stderr)
		logOut, format = console, telemetry.LogText
	}
	log, err := telemetry.NewLogger(logOut, format, c.String("log-level"))
	return console, log, err
}

// finish prints the report and turns the run's outcome into the process's
// exit code (report.Exit*). A run this process was told to stop (Ctrl-C,
// SIGTERM) is marked interrupted; a run left unfinished, for whatever
// reason, comes with the command that goes on with it.
func finish(c *cli.Context, pool *pgxpool.Pool, run string, runErr error) error {
	if errors.Is(runErr, coordinator.ErrRunExists) {
		return &exitError{code: report.ExitError, err: runErr}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), 15*time.Second)
	defer cancel()
	interrupted := c.Context.Err() != nil
	if interrupted {
		if _, err := target.InterruptRun(ctx, pool, run); err != nil {
			fmt.Fprintln(os.Stderr, "caravan:", err)
		}
	}
	rep, err := report.Build(ctx, pool, run)
	if err != nil {
		switch {
		case interrupted:
			return &exitError{code: report.ExitInterrupted, err: errors.New("interrupted before the run was recorded")}
		case runErr != nil:
			return &exitError{code: exitCodeOf(runErr), err: runErr}
		}
		return err
	}
	if len(rep.Tables) > 0 || !rep.Over() {
		if err := rep.WriteText(os.Stdout); err != nil {
			return err
		}
	}
	if path := c.String("report-json"); path != "" {
		if err := writeReportJSON(rep, path); err != nil {
			return err
		}
	}
	code := rep.ExitCode
	if code == report.ExitRunning || (code == report.ExitOK && runErr != nil) {
		code = report.ExitError // this process stopped on an error; nobody drives the run now
	}
	if code == report.ExitInterrupted || code == report.ExitError {
		fmt.Fprintf(os.Stderr, "run %s did not finish; go on with:\n  %s\n", run, resumeHint(c, run))
	}
	switch {
	case code == report.ExitOK:
		return nil
	case interrupted:
		return &exitError{code: code, err: fmt.Errorf("run %s interrupted", run)}
	case runErr != nil:
		return &exitError{code: code, err: runErr}
	}
	return &exitError{code: code, err: errors.New("run " + rep.Status)}
}

// exitCodeOf is the exit code of a run that ended before its report could
// be read.
func exitCodeOf(err error) int {
	if coordinator.IsRefused(err) {
		return report.ExitRefused
	}
	return report.ExitError
}

func writeReportJSON(rep *report.Report, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// resumeHint is the command line that continues a run, with the URLs
// this process was given, redacted: a password is never printed, the user
// puts it back (or sets it in PGPASSWORD or CARAVAN_*_URL). The read
// options a run is not recorded with (SQL Server's, which decide target
// types and text) are repeated as given: a resume must read the same way.
func resumeHint(c *cli.Context, run string) string {
	src, dst := shellQuote(pgutil.Redact(c.String("source-url"))), shellQuote(pgutil.Redact(c.String("target-url")))
	args := []string{"caravan", "resume", "--source-url", src, "--target-url", dst}
	tail := []string{run}
	if u := c.String("nats-url"); u != "" && c.Command.Name == "coordinator" {
		// The workers of the distributed run are on that broker: the
		// coordinator resumes there.
		args = []string{"caravan", "coordinator", "--source-url", src, "--target-url", dst, "--nats-url", shellQuote(pgutil.Redact(u))}
		tail = []string{"--resume", run}
	}
	args = append(args, givenReadFlags(c)...)
	return strings.Join(append(args, tail...), " ")
}

// givenReadFlags are the SQL Server read flags given to this command, as
// command-line arguments.
func givenReadFlags(c *cli.Context) []string {
	var out []string
	for _, f := range mssqlFlags {
		name := f.Names()[0]
		if !c.IsSet(name) {
			continue
		}
		switch v := c.Value(name).(type) {
		case bool:
			out = append(out, fmt.Sprintf("--%s=%t", name, v))
		case cli.StringSlice:
			for _, s := range v.Value() {
				out = append(out, "--"+name, shellQuote(s))
			}
		default:
			out = append(out, "--"+name, shellQuote(fmt.Sprint(v)))
		}
	}
	return out
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe
// characters.
func shellQuote(s string) string {
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./-_", r)) {
			safe = false
			break
		}
	}
	if safe && s != "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
