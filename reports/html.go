package reports

import (
	"bufio"
	"fmt"
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
.legend span { display: inline-block; margin-right: 1.2rem; font-size: .85rem; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: .3rem; vertical-align: -1px; }
`

// writeHTML renders the report as one self-contained page: the Markdown
// report's tables plus a timeline picture per scenario.
func writeHTML(w io.Writer, rf *results.RunFile, f fmtr) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n", esc(title), pageStyle)
	p("<h1>%s</h1>\n", esc(title))
	p("<p class=\"answer\"><strong>Question:</strong> %s<br><strong>Answer:</strong> %s</p>\n", esc(question), esc(overallAnswer(rf, f)))
	p("<p class=\"meta\">%s</p>\n", esc(runLine(rf, f)))

	p("<h2>Executive summary</h2>\n")
	htmlTable(bw, summaryTable(rf, f))

	p("<h2 id=\"timelines\">Timelines</h2>\n<section id=\"timeline-pictures\">\n")
	p(`<p class="legend"><span><i style="background:#3a9d5d"></i>probe succeeded</span><span><i style="background:#d64545"></i>probe refused</span><span><i style="background:#6a1b9a"></i>server error (5xx or no response)</span><span><i style="background:#f6d55c;opacity:.6"></i>between reinit and restore commits</span><span><i style="border:1.5px solid #7a1010"></i>a probe's failing stretch (its length above it)</span><span>dashed: phases</span></p>` + "\n")
	for _, r := range rf.Results {
		p("<figure id=\"timeline-%s\">\n<figcaption>%s: %s</figcaption>\n%s\n</figure>\n", esc(r.Name), esc(r.Name), esc(engine(r)), timelineSVG(r, f))
	}
	p("</section>\n")

	if distinctEngines(rf) > 1 {
		p("<h2>Strategies side by side</h2>\n")
		htmlTable(bw, comparisonTable(rf, f))
		p("<p>The seed's claims, per scenario:</p>\n")
		htmlTable(bw, claimMatrix(rf, f))
		c := manualSafer(rf, f)
		p("<p>Across scenarios: <em>%s</em>: <strong>%s</strong>. %s</p>\n", esc(c.Seed), esc(string(c.Verdict)), esc(c.Evidence))
	}

	p("<h2>Recommendation</h2>\n<ol>\n")
	for _, rec := range recommendation(rf, f) {
		p("<li>%s</li>\n", esc(rec.text))
	}
	p("</ol>\n")

	for _, r := range rf.Results {
		writeScenarioHTML(bw, r, f)
	}
	p("</body>\n</html>\n")
	return bw.Flush()
}

func writeScenarioHTML(w *bufio.Writer, r *results.Result, f fmtr) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("<section class=\"scenario\" id=\"scenario-%s\">\n<h2>Scenario %s</h2>\n", esc(r.Name), esc(r.Name))
	if d := strings.TrimSpace(r.Description); d != "" {
		p("<blockquote>%s</blockquote>\n", esc(d))
	}
	p("<p class=\"meta\">File <code>%s</code>, %s: <strong>%s</strong> in %s (setup %s).</p>\n",
		esc(r.File), esc(scenarioMeta(r)), esc(string(r.Status)), esc(f.dur(r.Duration)), esc(f.dur(r.Setup)))
	p("<p class=\"answer\"><strong>Answer:</strong> %s</p>\n", esc(answer(r, f)))
	for _, b := range scenarioBlocks(r, f) {
		switch {
		case b.heading != "":
			p("<h3>%s</h3>\n", esc(b.heading))
		case b.tbl != nil:
			htmlTable(w, *b.tbl)
		case b.lead != "":
			p("<p><strong>%s</strong> %s</p>\n", esc(b.lead), esc(b.text))
		default:
			p("<p>%s</p>\n", esc(b.text))
		}
		if len(b.list) > 0 {
			p("<ul>\n")
			for _, item := range b.list {
				p("<li>%s</li>\n", esc(item))
			}
			p("</ul>\n")
		}
	}
	p("</section>\n")
}

func htmlTable(w *bufio.Writer, t table) {
	if len(t.rows) == 0 {
		w.WriteString("<p>(none)</p>\n")
		return
	}
	w.WriteString("<table>\n<thead><tr>")
	for _, h := range t.head {
		w.WriteString("<th>" + esc(h) + "</th>")
	}
	w.WriteString("</tr></thead>\n<tbody>\n")
	for _, row := range t.rows {
		w.WriteString("<tr>")
		for _, c := range row {
			if c.class != "" {
				fmt.Fprintf(w, `<td class="%s">%s</td>`, esc(c.class), esc(c.text))
			} else {
				w.WriteString("<td>" + esc(c.text) + "</td>")
			}
		}
		w.WriteString("</tr>\n")
	}
	w.WriteString("</tbody>\n</table>\n")
}
