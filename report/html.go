package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// The HTML report is one self-contained page: inline CSS and SVG, no
// script, nothing fetched. SVG <title> elements give each bar a tooltip.

// Geometry of the timeline, in SVG user units (pixels).
const (
	tlLeft   = 110  // room for lane labels
	tlWidth  = 1060 // the time axis
	tlLane   = 16   // height of a lane
	tlBar    = 10   // height of a bar within its lane
	tlTop    = 24   // room for the axis labels
	tlGap    = 22   // between the chunk lanes and the validation lanes
	tlBottom = 8
)

type htmlPage struct {
	R          *Report
	Rejects    map[string]int
	Started    string
	Finished   string
	Elapsed    string
	Rate       string
	Width      int
	Height     int
	Ticks      []svgTick
	Lanes      []svgLabel
	Chunks     []svgChunk
	Checks     []svgCheck
	Unread     int
	CheckLabel svgLabel
	CheckLanes []svgLabel
	LanesCount int
	Workers    int
	Separators []float64
}

type svgTick struct {
	X     float64
	Label string
	Y2    int
}

type svgLabel struct {
	Y    float64
	Text string
	Full string // tooltip
}

type svgRect struct {
	X, W float64
}

// svgShape is one rectangle of a chunk's bar.
type svgShape struct {
	Class      string
	X, Y, W, H float64
}

type svgChunk struct {
	Table, Title   string
	Chunk, Attempt int
	Failed         bool
	Shapes         []svgShape
}

type svgCheck struct {
	Title string
	Y     float64
	X, W  float64
	OK    bool
}

// WriteHTML writes the run's report as one HTML page: the summary, a table
// per table, and a timeline of every chunk's extract, wait and load
// and of every validation check.
func (r *Report) WriteHTML(w io.Writer, tl *Timeline) error {
	start := r.StartedAt
	end := start.Add(time.Duration(r.Seconds * float64(time.Second)))
	for _, c := range tl.Chunks {
		if _, e, ok := c.span(); ok && e.After(end) {
			end = e
		}
	}
	for _, c := range tl.Checks {
		if c.Ended.After(end) {
			end = c.Ended
		}
	}
	total := max(end.Sub(start).Seconds(), 0.001)
	x := func(t time.Time) float64 {
		return tlLeft + math.Max(0, t.Sub(start).Seconds())/total*tlWidth
	}
	rect := func(from, to *time.Time) *svgRect {
		if from == nil || to == nil {
			return nil
		}
		x0, x1 := x(*from), x(*to)
		return &svgRect{X: x0, W: math.Max(x1-x0, 1.5)} // a sliver stays visible
	}

	p := &htmlPage{R: r, Rejects: tl.Rejects, Started: r.StartedAt.UTC().Format(time.RFC3339), Elapsed: elapsed(r.Seconds), Rate: rateText(r.RowsPerSec),
		LanesCount: tl.Lanes}
	if r.FinishedAt != nil {
		p.Finished = r.FinishedAt.UTC().Format(time.RFC3339)
	}
	for _, w := range tl.Workers {
		name := w.Worker
		if name == "" {
			name = "(unnamed)" // read by an extractor too old to say who it is
		}
		p.Lanes = append(p.Lanes, svgLabel{Y: float64(tlTop+w.First*tlLane) + tlBar, Text: clip(name, 18), Full: "extractor " + name})
		p.Separators = append(p.Separators, float64(tlTop+w.First*tlLane)-2)
	}
	p.Workers = len(tl.Workers)
	for _, c := range tl.Chunks {
		if c.Lane < 0 {
			p.Unread++
			continue
		}
		y := float64(tlTop + c.Lane*tlLane)
		ch := svgChunk{Table: c.Table, Chunk: c.Chunk, Attempt: c.Attempt, Failed: c.Status == "failed"}
		bar := func(class string, r *svgRect) {
			if r != nil {
				ch.Shapes = append(ch.Shapes, svgShape{Class: class, X: r.X, Y: y + 1, W: r.W, H: tlBar})
			}
		}
		bar("extract", rect(c.Read, c.Extracted))
		if c.Extracted != nil && c.FirstCommit != nil && c.FirstCommit.After(*c.Extracted) {
			bar("wait", rect(c.Extracted, c.FirstCommit))
		}
		bar("load", rect(c.FirstCommit, c.LastCommit))
		ch.Title = chunkTitle(c, start)
		p.Chunks = append(p.Chunks, ch)
	}
	checksTop := tlTop + tl.Lanes*tlLane + tlGap
	p.CheckLabel = svgLabel{Y: float64(checksTop) - 6, Text: "validation"}
	labelled := map[int]bool{}
	for _, c := range tl.Checks {
		if !labelled[c.Lane] {
			labelled[c.Lane] = true
			p.CheckLanes = append(p.CheckLanes, svgLabel{Y: float64(checksTop+c.Lane*tlLane) + tlBar, Text: clip(c.Table, 18)})
		}
	}
	for _, c := range tl.Checks {
		y := float64(checksTop + c.Lane*tlLane)
		from, to := c.Started, c.Ended
		r := rect(&from, &to)
		p.Checks = append(p.Checks, svgCheck{Y: y + 1, X: r.X, W: r.W, OK: c.OK,
			Title: fmt.Sprintf("%s %s: %s, %.2fs (from %s)", c.Table, strings.Join(c.Levels, ", "), map[bool]string{true: "ok", false: "FAILED"}[c.OK],
				c.Ended.Sub(c.Started).Seconds(), offset(c.Started, start))})
	}
	p.Width = tlLeft + tlWidth + 20
	p.Height = checksTop + tl.CheckLanes()*tlLane + tlBottom
	for _, t := range ticks(total) {
		p.Ticks = append(p.Ticks, svgTick{X: tlLeft + t/total*tlWidth, Label: tickLabel(t), Y2: p.Height - tlBottom})
	}
	return htmlTemplate.Execute(w, p)
}

func chunkTitle(c ChunkTimes, start time.Time) string {
	s := fmt.Sprintf("%s chunk %d (attempt %d): %s, %d rows, %.1f MB", c.Table, c.Chunk, c.Attempt, c.Status, c.Rows, float64(c.Bytes)/1e6)
	if c.Read != nil && c.Extracted != nil {
		s += fmt.Sprintf("; extract %.2fs from %s", c.Extracted.Sub(*c.Read).Seconds(), offset(*c.Read, start))
	}
	if c.Published != nil && c.Read != nil {
		s += fmt.Sprintf("; queued %.2fs", c.Read.Sub(*c.Published).Seconds())
	}
	if c.FirstCommit != nil && c.LastCommit != nil {
		s += fmt.Sprintf("; load %.2fs from %s", c.LastCommit.Sub(*c.FirstCommit).Seconds(), offset(*c.FirstCommit, start))
	}
	if c.Error != "" {
		s += "; " + c.Error
	}
	return s
}

func offset(t, start time.Time) string { return "+" + elapsed(t.Sub(start).Seconds()) }

// ticks are round times along an axis of total seconds, about ten.
func ticks(total float64) []float64 {
	steps := []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if total/s <= 12 {
			step = s
			break
		}
	}
	var out []float64
	for t := 0.0; t <= total+1e-9; t += step {
		out = append(out, t)
	}
	return out
}

func tickLabel(seconds float64) string {
	if seconds == 0 {
		return "0"
	}
	return elapsed(seconds)
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"f":    func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"plus": func(a, b float64) float64 { return a + b },
	"mb":   func(b int64) string { return fmt.Sprintf("%.1f", float64(b)/1e6) },
	"rate": rateText,
	"sec":  func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"deref": func(p *int64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	},
	"digest": func(p *bool) string {
		if p == nil {
			return "-"
		}
		return map[bool]string{true: "yes", false: "NO"}[*p]
	},
	"verdict": verdict,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>caravan run {{.R.Run}}: {{.R.Status}}</title>
<style>
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1d232a; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.status { display: inline-block; padding: 2px 8px; border-radius: 4px; font-weight: 600; color: #fff; background: #6b7280; }
.status.succeeded { background: #15803d; } .status.failed { background: #b91c1c; }
.status.interrupted, .status.abandoned { background: #b45309; } .status.loading, .status.validating { background: #1d4ed8; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 12px 0; }
dl.summary dt { color: #555; } dl.summary dd { margin: 0; }
table.tables { border-collapse: collapse; }
table.tables th, table.tables td { padding: 4px 10px; border-bottom: 1px solid #e5e7eb; text-align: right; white-space: nowrap; }
table.tables th:first-child, table.tables td:first-child, table.tables td.detail { text-align: left; }
table.tables td.detail { white-space: normal; max-width: 480px; color: #b91c1c; }
td.v-ok { color: #15803d; font-weight: 600; } td.v-FAILED { color: #b91c1c; font-weight: 600; }
.error { color: #b91c1c; }
svg { font: 11px system-ui, sans-serif; }
svg .axis { stroke: #e5e7eb; } svg .label { fill: #555; }
svg .extract { fill: #2563eb; } svg .wait { fill: #fcd34d; } svg .load { fill: #16a34a; }
svg .failed rect { stroke: #b91c1c; stroke-width: 1.5; }
svg .check.ok { fill: #7c3aed; } svg .check.failed { fill: #b91c1c; }
.legend span { display: inline-block; margin-right: 18px; }
.legend i { display: inline-block; width: 14px; height: 10px; margin-right: 6px; vertical-align: middle; }
.note { color: #555; max-width: 900px; }
</style>
</head>
<body>
<h1>caravan run {{.R.Run}} <span class="status {{.R.Status}}">{{.R.Status}}</span></h1>
<dl class="summary">
<dt>source</dt><dd>{{.R.Source}}</dd>
<dt>consistency</dt><dd>{{.R.Consistency}}</dd>
<dt>phase</dt><dd>{{.R.Phase}} (exit code {{.R.ExitCode}})</dd>
<dt>started</dt><dd>{{.Started}}</dd>
<dt>finished</dt><dd>{{if .Finished}}{{.Finished}}{{else}}not yet{{end}}</dd>
<dt>elapsed</dt><dd>{{.Elapsed}}</dd>
<dt>rows</dt><dd>{{.R.Rows}} of {{.R.EstRows}} ({{mb .R.Bytes}} MB, {{.Rate}} rows/s)</dd>
{{if .R.Error}}<dt>error</dt><dd class="error">{{.R.Error}}</dd>{{end}}
</dl>

<h2>Tables</h2>
<table class="tables">
<thead><tr><th>table</th><th>verdict</th><th>source rows</th><th>target rows</th><th>MB</th><th>seconds</th><th>rows/s</th><th>chunks</th><th>rejects</th><th>digest ok</th><th>detail</th></tr></thead>
<tbody>
{{range .R.Tables}}<tr class="table-row"><td>{{.Table}}</td><td class="v-{{verdict .}}">{{verdict .}}</td><td>{{.SourceRows}}</td><td>{{deref .TargetRows}}</td><td>{{mb .Bytes}}</td><td>{{sec .Seconds}}</td><td>{{rate .RowsPerSec}}</td><td>{{.ChunksLoaded}}/{{.Chunks}}</td><td>{{index $.Rejects .Table}}</td><td>{{digest .DigestOK}}</td><td class="detail">{{.Detail}}</td></tr>
{{end}}</tbody>
</table>
{{if .R.ForeignKeys}}<p class="error">Foreign keys: {{range .R.ForeignKeys}}{{.}}; {{end}}</p>{{end}}

<h2>Timeline</h2>
<p class="note">One bar per chunk: read from the source (blue), waiting for a loader (yellow), batches committed (green); a failed
chunk is outlined red. The time a chunk was queued before an extractor took it is in its tooltip. Each extractor process ({{.Workers}}) has its own lanes, one per chunk it had in flight at once
({{.LanesCount}} lanes in all); a chunk's load is drawn on its bar, by whichever loader committed its batches. Below, each validation check
of each table. Hover a bar for its numbers.{{if .Unread}} {{.Unread}} chunks were never read and are not drawn.{{end}}</p>
<p class="legend"><span><i style="background:#2563eb"></i>extract</span><span><i style="background:#fcd34d"></i>waiting for a loader</span><span><i style="background:#16a34a"></i>load</span><span><i style="background:#7c3aed"></i>validation check</span></p>
<svg class="timeline" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="timeline of the run's chunks and checks">
{{range .Ticks}}<line class="axis" x1="{{f .X}}" y1="14" x2="{{f .X}}" y2="{{.Y2}}"/><text class="label" x="{{f .X}}" y="10" text-anchor="middle">{{.Label}}</text>
{{end}}{{range .Separators}}<line class="axis" x1="0" y1="{{f .}}" x2="{{$.Width}}" y2="{{f .}}"/>
{{end}}{{range .Lanes}}<text class="label" x="4" y="{{f .Y}}"><title>{{.Full}}</title>{{.Text}}</text>
{{end}}{{range .Chunks}}<g class="chunk{{if .Failed}} failed{{end}}" data-table="{{.Table}}" data-chunk="{{.Chunk}}" data-attempt="{{.Attempt}}"><title>{{.Title}}</title>{{range .Shapes}}<rect class="{{.Class}}" x="{{f .X}}" y="{{f .Y}}" width="{{f .W}}" height="{{f .H}}"/>{{end}}</g>
{{end}}<text class="label" x="4" y="{{f .CheckLabel.Y}}">{{.CheckLabel.Text}}</text>
{{range .CheckLanes}}<text class="label" x="4" y="{{f .Y}}">{{.Text}}</text>
{{end}}{{range .Checks}}<rect class="check {{if .OK}}ok{{else}}failed{{end}}" x="{{f .X}}" y="{{f .Y}}" width="{{f .W}}" height="10"><title>{{.Title}}</title></rect>
{{end}}</svg>
</body>
</html>
`))
