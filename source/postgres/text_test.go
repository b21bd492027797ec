package postgres

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/source"
)

// The text policy of a SQL_ASCII source: converted from the encoding the
// run names, replaced, or failing at once with table, column, key and bytes.
func TestSQLASCIITextPolicy(t *testing.T) {
	ctx := context.Background()
	// Latin-1 bytes: caf\xe9, and \x81, which Windows-1252 leaves undefined.
	dbURL := testenv.SQLASCIIDatabase(t, "src")
	testenv.Exec(t, dbURL, `CREATE TABLE t (id integer PRIMARY KEY, v text, n text)`,
		`INSERT INTO t VALUES (1, convert_from('\x636166e9'::bytea, 'SQL_ASCII'), 'plain'),
			(2, 'ascii', NULL), (3, convert_from('\x615c09e962'::bytea, 'SQL_ASCII'), convert_from('\x81'::bytea, 'SQL_ASCII'))`)
	var logs bytes.Buffer
	s, err := Open(ctx, dbURL, 2, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	read := func(opts map[string]string) ([]string, error) {
		task := &proto.ChunkTask{Chunk: 4, Source: proto.TableRef{Schema: "public", Name: "t"}, Cols: []string{"id", "v", "n"},
			Key: []string{"id"}, KeyTypes: []string{"integer"}, Range: proto.RangeAll, Options: opts}
		var rows []string
		err := s.Read(ctx, task, func(line []byte) error {
			fields, err := proto.SplitRow(nil, line)
			if err != nil {
				return err
			}
			var vals []string
			for _, f := range fields {
				if f.Null {
					vals = append(vals, "NULL")
				} else {
					vals = append(vals, string(f.Value))
				}
			}
			rows = append(rows, strings.Join(vals, "|"))
			return nil
		})
		return rows, err
	}

	rows, err := read(map[string]string{OptionSourceEncoding: "LATIN1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1|café|plain", "2|ascii|NULL", "3|a\\\téb|\u0081"}; strings.Join(rows, ";") != strings.Join(want, ";") {
		// \x81 is a C1 control in Latin-1; the backslash and tab survive
		// the round trip through COPY's escapes.
		t.Errorf("LATIN1: got %q, want %q", rows, want)
	}

	rows, err = read(map[string]string{OptionInvalidText: InvalidTextReplace})
	if err != nil {
		t.Fatal(err)
	}
	if want := "1|caf\uFFFD|plain;2|ascii|NULL;3|a\\\t\uFFFDb|\uFFFD"; strings.Join(rows, ";") != want {
		t.Errorf("replace: got %q, want %q", strings.Join(rows, ";"), want)
	}
	for _, want := range []string{"level=WARN", "table=public.t column=v chunk=4 values=2", `keys="(id=1) (id=3)"`, "column=n chunk=4 values=1"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("replace warnings lack %q:\n%s", want, logs.String())
		}
	}

	for name, opts := range map[string]map[string]string{
		"default": nil, "fail": {OptionInvalidText: InvalidTextFail},
		"undefined in WIN1252": {OptionSourceEncoding: "WIN1252"},
	} {
		_, err := read(opts)
		if err == nil || !source.IsPermanent(err) {
			t.Errorf("%s: want a permanent error, got %v", name, err)
			continue
		}
		want := []string{"table public.t column v key (id=1)", "0xe9", `caf\xe9`}
		if name == "undefined in WIN1252" {
			want = []string{"table public.t column n key (id=3)", "no character in WIN1252", "0x81"}
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", name, err, w)
			}
		}
	}
}

// A UTF8 source pays nothing: PostgreSQL guarantees its text.
func TestUTF8SourceIsNotChecked(t *testing.T) {
	s := &Source{log: slog.Default()}
	c, err := s.newTextCheck(&proto.ChunkTask{Options: map[string]string{OptionInvalidText: InvalidTextFail}}, "UTF8")
	if c != nil || err != nil {
		t.Errorf("a UTF8 source got a text check (%v)", err)
	}
	if _, err := TextOptions("SJIS", ""); err == nil {
		t.Error("a multi-byte source encoding was accepted")
	}
	if _, err := TextOptions("", "drop"); err == nil {
		t.Error("an unknown invalid-text policy was accepted")
	}
	if o, err := TextOptions("win-1252", "replace"); err != nil || o[OptionSourceEncoding] != "WIN-1252" || o[OptionInvalidText] != "replace" {
		t.Errorf("TextOptions: %v, %v", o, err)
	}
}
