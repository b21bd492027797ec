package main

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// cliFlags maps every flag of every command to the commands that take it.
// --config and --help, which every command has, are left out.
func cliFlags() map[string][]string {
	out := map[string][]string{}
	for _, cmd := range app().Commands {
		for _, f := range cmd.Flags {
			name := f.Names()[0]
			if name == "config" || name == "help" {
				continue
			}
			out[name] = append(out[name], cmd.Name)
		}
	}
	for _, cmds := range out {
		sort.Strings(cmds)
	}
	return out
}

var flagRow = regexp.MustCompile("^\\| (`--[a-z0-9-]+`(?:, `--[a-z0-9-]+`)*) \\| ([a-z, ]+) \\| .+ \\|$")

// TestREADMEFlagTable: the README's flag table names every flag, each with
// exactly the commands that take it, so it cannot drift from the CLI.
func TestREADMEFlagTable(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := cliFlags()
	seen := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		m := flagRow.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("README flag row not of the form | `--flag`, ... | command, ... | meaning |:\n%s", line)
			continue
		}
		cmds := strings.Split(m[2], ", ")
		sort.Strings(cmds)
		for _, f := range strings.Split(m[1], ", ") {
			name := strings.Trim(f, "`-")
			seen[name] = true
			if have, ok := want[name]; !ok {
				t.Errorf("README lists --%s, which no command has", name)
			} else if strings.Join(have, ", ") != strings.Join(cmds, ", ") {
				t.Errorf("README: --%s for %s; the CLI has it on %s", name, strings.Join(cmds, ", "), strings.Join(have, ", "))
			}
		}
	}
	var missing []string
	for name := range want {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		t.Errorf("README's flag table lacks --%s (%s)", name, strings.Join(want[name], ", "))
	}
	if t.Failed() {
		t.Log("the CLI's flags and their commands:\n" + flagTable(want))
	}
}

func flagTable(flags map[string][]string) string {
	names := make([]string, 0, len(flags))
	for n := range flags {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "| `--%s` | %s |\n", n, strings.Join(flags[n], ", "))
	}
	return b.String()
}

// TestEveryCommandHasAnExample: each command's --help shows how it is run.
func TestEveryCommandHasAnExample(t *testing.T) {
	for _, cmd := range app().Commands {
		if !strings.Contains(cmd.Description, "caravan "+cmd.Name) {
			t.Errorf("caravan %s --help has no example (Description)", cmd.Name)
		}
	}
}
