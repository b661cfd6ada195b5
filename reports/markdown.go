package reports

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

const title = "Restore with reinit: auth impact, measured"

// writeMarkdown renders the auth-impact report.
func writeMarkdown(w io.Writer, rf *results.RunFile, f fmtr) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	p("# %s\n\n", title)
	p("**Question:** %s  \n**Answer:** %s\n\n", question, overallAnswer(rf, f))
	p("%s\n\n", runLine(rf, f))

	p("## Executive summary\n\n")
	mdTable(bw, summaryTable(rf, f))

	if distinctEngines(rf) > 1 {
		p("## Strategies side by side\n\n")
		mdTable(bw, comparisonTable(rf, f))
		p("The seed's claims, per scenario (evidence in each scenario's section):\n\n")
		mdTable(bw, claimMatrix(rf, f))
		c := manualSafer(rf, f)
		p("Across scenarios: *%s*: **%s**. %s\n\n", c.Seed, c.Verdict, c.Evidence)
	}

	p("## Recommendation\n\n")
	for i, rec := range recommendation(rf, f) {
		p("%d. %s\n", i+1, rec.text)
	}
	p("\n")

	for _, r := range rf.Results {
		writeScenarioMarkdown(bw, r, f)
	}
	return bw.Flush()
}

func runLine(rf *results.RunFile, f fmtr) string {
	passed, failed, errored := rf.Counts()
	return fmt.Sprintf("Measured by rehearse on %s: %s (%d passed, %d failed, %d could not run) in %s; results format version %d. Every statement below is a measurement of this run; passwords and tokens appear only as fingerprints.",
		f.when(rf.Started), plural(len(rf.Results), "scenario", "scenarios"), passed, failed, errored, f.dur(rf.Duration), results.Version)
}

func writeScenarioMarkdown(w *bufio.Writer, r *results.Result, f fmtr) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## Scenario %s\n\n", r.Name)
	if d := strings.TrimSpace(r.Description); d != "" {
		p("> %s\n\n", strings.ReplaceAll(d, "\n", " "))
	}
	p("File `%s`, %s: **%s** in %s (setup %s).\n\n", r.File, scenarioMeta(r), r.Status, f.dur(r.Duration), f.dur(r.Setup))
	p("**Answer:** %s\n\n", answer(r, f))
	for _, b := range scenarioBlocks(r, f) {
		switch {
		case b.heading != "":
			p("### %s\n\n", b.heading)
		case b.tbl != nil:
			mdTable(w, *b.tbl)
		case b.lead != "":
			p("**%s** %s\n\n", b.lead, b.text)
		default:
			p("%s\n\n", b.text)
		}
		for _, item := range b.list {
			p("- %s\n", item)
		}
		if len(b.list) > 0 {
			p("\n")
		}
	}
}

func mdTable(w *bufio.Writer, t table) {
	if len(t.rows) == 0 {
		fmt.Fprint(w, "(none)\n\n")
		return
	}
	w.WriteString("| " + strings.Join(mapStrings(t.head, mdCell), " | ") + " |\n")
	w.WriteString("|" + strings.Repeat("---|", len(t.head)) + "\n")
	for _, row := range t.rows {
		texts := make([]string, len(row))
		for i, c := range row {
			texts[i] = mdCell(c.text)
			if c.class == "fail" || c.class == "refuted" || c.class == "error" {
				texts[i] = "**" + texts[i] + "**"
			}
		}
		w.WriteString("| " + strings.Join(texts, " | ") + " |\n")
	}
	w.WriteString("\n")
}

// mdCell keeps a value inside its table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(strings.TrimSpace(s), "\n", "<br>")
	if s == "" {
		return "—"
	}
	return s
}

func mapStrings(in []string, fn func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = fn(s)
	}
	return out
}
