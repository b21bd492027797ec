package report

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestJSONSchemaDocumented: every field of the JSON report is in the
// README's table of it, so the documented schema cannot drift.
func TestJSONSchemaDocumented(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start := strings.Index(readme, "### The JSON report")
	if start < 0 {
		t.Fatal("README has no section \"The JSON report\"")
	}
	section := readme[start:]
	if end := strings.Index(section[4:], "\n#"); end > 0 {
		section = section[:end+4]
	}
	for _, typ := range []reflect.Type{reflect.TypeOf(Report{}), reflect.TypeOf(Table{})} {
		for i := 0; i < typ.NumField(); i++ {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			if !strings.Contains(section, "`"+name+"`") && !strings.Contains(section, "`"+name+"[]`") {
				t.Errorf("README's JSON report section lacks %s.%s (`%s`)", typ.Name(), typ.Field(i).Name, name)
			}
		}
	}
}
