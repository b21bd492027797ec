package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"
)

// version and commit say which caravan this is, set at build time with
// -ldflags "-X main.version=v1.2.3 -X main.commit=..." (make build does);
// otherwise they come from what Go recorded: the module version ("(devel)"
// for a build from a work tree) and the VCS revision.
var version, commit string

// buildInfo is what `caravan --version` prints: version, commit (with
// "+dirty" when the work tree had changes) and the Go that built it.
func buildInfo() (ver, rev, goVersion string) {
	ver, rev, goVersion = version, commit, runtime.Version()
	if rev == "" {
		rev = "unknown"
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if ver == "" {
		ver = info.Main.Version
	}
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if rev == "unknown" {
				rev = s.Value
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && rev != "unknown" && !strings.HasSuffix(rev, "+dirty") {
		rev += "+dirty"
	}
	return
}

func init() {
	cli.VersionPrinter = func(c *cli.Context) {
		ver, commit, goVersion := buildInfo()
		fmt.Fprintf(c.App.Writer, "caravan %s\ncommit %s\n%s\n", ver, commit, goVersion)
	}
}
