package main

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// The command printed to continue a run repeats the SQL Server read flags
// the run was started with (they decide target types and text and are not
// recorded with the run), never a password, and leaves out what was not given.
func TestResumeHintRepeatsReadFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"caravan", "migrate", "--source-url", "sqlserver://sa:Secret1@db:1433?database=shop", "--target-url", "postgres://u:pw@pg/shop",
			"--mssql-nul", "strip", "--type-override", "dbo.t.c=text", "--type-override", "dbo.t.d=jsonb", "--postgis"},
			`caravan resume --source-url 'sqlserver://sa:xxxxx@db:1433?database=shop' --target-url postgres://u:xxxxx@pg/shop --mssql-nul strip --type-override dbo.t.c=text --type-override dbo.t.d=jsonb --postgis=true RUN`},
		{[]string{"caravan", "migrate", "--source-url", "postgres://a@src/db", "--target-url", "postgres://a@dst/db"},
			`caravan resume --source-url postgres://a@src/db --target-url postgres://a@dst/db RUN`},
		{[]string{"caravan", "coordinator", "--source-url", "sqlserver://db", "--target-url", "postgres://dst", "--nats-url", "nats://b:4222", "--computed", "generated"},
			`caravan coordinator --source-url sqlserver://db --target-url postgres://dst --nats-url nats://b:4222 --computed generated --resume RUN`},
	}
	for _, tc := range cases {
		var got string
		a := app()
		for _, cmd := range a.Commands {
			if cmd.Name == tc.args[1] {
				cmd.Before = nil
				cmd.Action = func(c *cli.Context) error { got = resumeHint(c, "RUN"); return nil }
			}
		}
		if err := a.Run(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", strings.Join(tc.args[1:2], ""), got, tc.want)
		}
		if strings.Contains(got, "Secret1") || strings.Contains(got, ":pw@") {
			t.Errorf("a password is in %s", got)
		}
	}
}
