package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/caravan-db/caravan/schema"
)

// writeDefinitions writes the source text of each object caravan does not
// migrate to DIR/<schema>.<name>.sql, for the person who rewrites it, and
// returns the files written. Objects without a text (indexes, partition
// schemes, CLR or encrypted modules) get none.
func writeDefinitions(dir string, objects []*schema.Unmigrated) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--objects-dir: %w", err)
	}
	var written []string
	for _, u := range objects {
		if u.Definition == "" {
			continue
		}
		file := filepath.Join(dir, definitionFile(u.Name))
		text := fmt.Sprintf("-- %s %s: %s\n%s\n", u.Kind, u.Name, u.Reason, strings.TrimRight(u.Definition, "\n"))
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			return written, fmt.Errorf("--objects-dir: %s %s: %w", u.Kind, u.Name, err)
		}
		written = append(written, file)
	}
	return written, nil
}

// definitionFile names an object's file: its qualified name
// (schema.name) with every byte outside [A-Za-z0-9_.-] written %XX ("/",
// "%", spaces, the characters Windows refuses, non-ASCII UTF-8 bytes), a
// leading dot too (no hidden files), then ".sql". The mapping is
// reversible; two objects collide only when their names differ by where a
// dot falls inside them ("a.b"."c" and "a"."b.c").
func definitionFile(qualified string) string {
	var b strings.Builder
	for i := 0; i < len(qualified); i++ {
		c := qualified[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String() + ".sql"
}
