package reports

import (
	"html/template"
	"io"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// pageStyle is inlined: the report is one file that opens offline, with no
// fonts, scripts or stylesheets fetched from anywhere.
const pageStyle = `
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px; color: #1d2430; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #d8dde6; padding-bottom: .2rem; } h3 { margin-top: 1.4rem; }
.answer { background: #f3f6fb; border-left: 4px solid #3d6fb6; padding: .6rem 1rem; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .88rem; width: 100%; }
th, td { border: 1px solid #d8dde6; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f0f2f6; }
td.pass, td.held { color: #1d6b3a; font-weight: 600; }
td.fail, td.refuted, td.error { color: #a32020; font-weight: 600; }
td.not-measured { color: #6b7280; }
.meta { color: #4b5563; font-size: .9rem; }
figure { margin: 1rem 0 1.6rem; } figcaption { font-weight: 600; margin-bottom: .3rem; }
svg.timeline { max-width: 100%; height: auto; background: #fff; border: 1px solid #e3e7ee; }
svg .ok { fill: #3a9d5d; } svg .fail { fill: #d64545; } svg .server, svg .server-mark { fill: #6a1b9a; }
svg .window { fill: none; stroke: #7a1010; stroke-width: 1.5; }
svg .window-label { fill: #7a1010; font-weight: 600; }
svg .reinit-window { fill: #f6d55c; fill-opacity: .28; }
svg .band-label { fill: #7a5b00; }
svg .phase { stroke: #4b5563; stroke-dasharray: 3 3; stroke-width: 1; }
svg .phase-label, svg .tick-label { fill: #374151; }
svg .phase-label, svg .window-label, svg .band-label { paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
svg .lane-label { fill: #1d2430; font-weight: 600; }
svg .axis, svg .tick { stroke: #6b7280; }
svg .took-label { fill: #4b5563; } svg .took-base { stroke: #d1d5db; }
.legend span { display: inline-block; margin-right: 1.2rem; font-size: .85rem; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: .3rem; vertical-align: -1px; }
`

// page is what the HTML template renders; every string in it is text,
// escaped by html/template, the timelines' SVG included (svg.go lays them
// out, the "timeline" template draws them).
type page struct {
	Title, Question, Answer, RunLine string
	Style                            template.CSS
	Summary                          table
	Timelines                        []timeline
	Strategies                       *strategies
	Recommendations                  []string
	Scenarios                        []scenarioPart
}

type timeline struct {
	Name, Engine string
	SVG          svgView
}

type strategies struct {
	Comparison, Claims table
	Safer              runClaim
}

type scenarioPart struct {
	Name, Description, File, Meta, Status, Duration, Setup, Answer string
	Blocks                                                         []block
}

// pageTemplate is the report's one page; "table" renders a table, or
// "(none)" when it has no rows.
var pageTemplate = func() *template.Template {
	t := template.Must(template.New("page").Funcs(svgFuncs).Parse(pageSource))
	template.Must(t.New("timeline").Parse(timelineTemplate))
	return t
}()

const pageSource = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>{{.Style}}</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="answer"><strong>Question:</strong> {{.Question}}<br><strong>Answer:</strong> {{.Answer}}</p>
<p class="meta">{{.RunLine}}</p>
<h2>Executive summary</h2>
{{template "table" .Summary}}<h2 id="timelines">Timelines</h2>
<section id="timeline-pictures">
<p class="legend"><span><i style="background:#3a9d5d"></i>probe succeeded</span><span><i style="background:#d64545"></i>probe refused</span><span><i style="background:#6a1b9a"></i>server error (5xx or no response)</span><span><i style="background:#f6d55c;opacity:.6"></i>between reinit and restore commits</span><span><i style="border:1.5px solid #7a1010"></i>a probe's failing stretch (its length above it)</span><span>bars under the lanes: each request's time, at the moment it was sent</span><span>dashed: phases</span></p>
{{range .Timelines}}<figure id="timeline-{{.Name}}">
<figcaption>{{.Name}}: {{.Engine}}</figcaption>
{{template "timeline" .SVG}}
</figure>
{{end}}</section>
{{with .Strategies}}<h2>Strategies side by side</h2>
{{template "table" .Comparison}}<p>The claims, per scenario:</p>
{{template "table" .Claims}}<p>Across scenarios: <em>{{.Safer.Seed}}</em>: <strong>{{.Safer.Verdict}}</strong>. {{.Safer.Evidence}}</p>
{{end}}<h2>Recommendation</h2>
<ol>
{{range .Recommendations}}<li>{{.}}</li>
{{end}}</ol>
{{range .Scenarios}}<section class="scenario" id="scenario-{{.Name}}">
<h2>Scenario {{.Name}}</h2>
{{with .Description}}<blockquote>{{.}}</blockquote>
{{end}}<p class="meta">File <code>{{.File}}</code>, {{.Meta}}: <strong>{{.Status}}</strong> in {{.Duration}} (setup {{.Setup}}).</p>
<p class="answer"><strong>Answer:</strong> {{.Answer}}</p>
{{range .Blocks}}{{if .Heading}}<h3>{{.Heading}}</h3>
{{else if .Table}}{{template "table" .Table}}{{else if .Lead}}<p><strong>{{.Lead}}</strong> {{.Text}}</p>
{{else}}<p>{{.Text}}</p>
{{end}}{{with .List}}<ul>
{{range .}}<li>{{.}}</li>
{{end}}</ul>
{{end}}{{end}}</section>
{{end}}</body>
</html>
{{define "table"}}{{if .Rows}}<table>
<thead><tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr>{{range .}}<td{{with .Class}} class="{{.}}"{{end}}>{{if .Href}}<a href="{{.Href}}">{{.Text}}</a>{{else}}{{.Text}}{{end}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
{{else}}<p>(none)</p>
{{end}}{{end}}`

// writeHTML renders the report as one self-contained page: the Markdown
// report's tables plus a timeline picture per scenario, through
// html/template.
func writeHTML(w io.Writer, rf *results.RunFile, f fmtr) error {
	pg := page{Title: title, Question: question, Answer: overallAnswer(rf, f), RunLine: runLine(rf, f),
		Style: template.CSS(pageStyle), Summary: summaryTable(rf, f)}
	for i := range pg.Summary.rows { // the scenario's name leads to its section
		pg.Summary.rows[i][0].href = "#scenario-" + rf.Results[i].Name
	}
	for _, r := range rf.Results {
		pg.Timelines = append(pg.Timelines, timeline{Name: r.Name, Engine: engine(r), SVG: timelineView(r, f)})
		pg.Scenarios = append(pg.Scenarios, scenarioPart{Name: r.Name, Description: strings.TrimSpace(r.Description), File: r.File,
			Meta: scenarioMeta(r), Status: string(r.Status), Duration: f.dur(r.Duration), Setup: f.dur(r.Setup), Answer: answer(r, f),
			Blocks: scenarioBlocks(r, f)})
	}
	if distinctEngines(rf) > 1 {
		pg.Strategies = &strategies{Comparison: comparisonTable(rf, f), Claims: claimMatrix(rf, f), Safer: manualSafer(rf, f)}
	}
	for _, rec := range recommendation(rf, f) {
		pg.Recommendations = append(pg.Recommendations, rec.text)
	}
	return pageTemplate.Execute(w, pg)
}
