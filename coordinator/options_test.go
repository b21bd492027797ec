package coordinator

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/caravan-db/caravan/schema"
)

// resume rebuilds a run's options from caravan.runs.config (JSON): they
// must come back exactly as the run started with them.
func TestOptionsSurviveTheRunRecord(t *testing.T) {
	c := &Coordinator{cfg: Config{Options: Options{
		Filter: schema.Filter{Include: []string{"public.*"}, Exclude: []string{"*_tmp"}}, NameCase: schema.CaseLower,
		SchemaMap: map[string]string{"dbo": "app"}, Mode: ModeTruncate, RowsPerChunk: 5000, BatchBytes: 1 << 19,
		BatchRows: 777, Unlogged: true, Validation: []string{"count", "digest"}, SourceOptions: map[string]string{"invalid_text": "replace"},
		AcceptUnmigrated: []string{"aggregate:*"}, OwnersAndGrants: true,
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
