package coordinator

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
)

// resume rebuilds a run's options from caravan.runs.config (JSON): they
// must come back exactly as the run started with them.
func TestOptionsSurviveTheRunRecord(t *testing.T) {
	c := &Coordinator{cfg: Config{Options: Options{
		Filter: schema.Filter{Include: []string{"public.*"}, Exclude: []string{"*_tmp"}}, NameCase: schema.CaseLower,
		SchemaMap: map[string]string{"dbo": "app"}, Mode: ModeTruncate, RowsPerChunk: 5000, BatchBytes: 1 << 19,
		BatchRows: 777, Unlogged: true, Validation: []string{"count", "digest"}, SourceOptions: map[string]string{"invalid_text": "replace"},
		AcceptUnmigrated: []string{"aggregate:*"}, OwnersAndGrants: true, CopyFormat: CopyText,
	}}}
	data, err := json.Marshal(c.configRecord())
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	var got Options
	if err := optionsFromRecord(rec, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c.cfg.Options) {
		t.Errorf("options came back as\n%+v\nwant\n%+v", got, c.cfg.Options)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{Mode: "replace"},
		{Mode: ModeCreate, Validation: []string{"checksum"}},
		{Mode: ModeCreate, Filter: schema.Filter{Include: []string{"[bad"}}},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v passed validation", o)
		}
	}
	good := Options{}
	good.Defaults()
	if err := good.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// Binary COPY only for tables whose every loaded column the source can
// send in binary and that keeps its type; --copy-format text for none.
func TestChooseEncodings(t *testing.T) {
	col := func(name string, binary bool, typ string) *schema.Column {
		return &schema.Column{Name: name, SourceType: "integer", Type: typ, BinaryCopy: binary}
	}
	enumCol := col("e", false, `"public"."mood"`)
	enumCol.TypeRef = &schema.Name{Schema: "public", Name: "mood"}
	generated := col("g", false, "integer")
	generated.Generated = "id * 2"
	tables := map[string]*schema.Table{
		proto.EncodingCopyBinary: {Columns: []*schema.Column{col("id", true, "integer"), generated}},
		"enum":                   {Columns: []*schema.Column{col("id", true, "integer"), enumCol}},
		"sqlserver":              {Columns: []*schema.Column{col("id", false, "integer")}},
		"retyped":                {Columns: []*schema.Column{col("id", true, "bigint")}},
	}
	db := &schema.Database{}
	for _, tb := range tables {
		db.Tables = append(db.Tables, tb)
	}
	ChooseEncodings(db, CopyAuto)
	for name, tb := range tables {
		want := proto.EncodingCopyText
		if name == proto.EncodingCopyBinary {
			want = proto.EncodingCopyBinary
		}
		if tb.Encoding != want {
			t.Errorf("%s: %s, want %s", name, tb.Encoding, want)
		}
	}
	ChooseEncodings(db, CopyText)
	if e := tables[proto.EncodingCopyBinary].Encoding; e != proto.EncodingCopyText {
		t.Errorf("--copy-format text: %s", e)
	}
}
