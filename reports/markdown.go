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
	p("File `%s`, fixture %s, %s, system %s%s: **%s** in %s (setup %s).\n\n", r.File, r.Fixture, engine(r), system(r), providerNote(r), r.Status, f.dur(r.Duration), f.dur(r.Setup))
	p("**Answer:** %s\n\n", answer(r, f))
	if r.Status == results.Errored {
		p("**The harness could not run this scenario:** %s\n\n", f.text(r.Error))
		return
	}

	p("### Timeline of the operation\n\n")
	p("Milliseconds from the moment the operation started, on a monotonic clock.\n\n")
	mdTable(w, phaseTable(r, f))
	p("%s\n\n", measure(r).windowText(f))
	if len(r.Facts.PKReuse) > 0 {
		p("Primary-key reuse:\n\n")
		for _, s := range r.Facts.PKReuse {
			p("- %s\n", s.String())
		}
		p("\n")
	}

	p("### Outage windows per probe\n\n")
	if len(r.Probes) == 0 {
		p("No probes in this scenario.\n\n")
	} else {
		mdTable(w, probeTable(r, f))
	}
	p("### Fate of every seeded token\n\n")
	if len(r.Tokens) == 0 {
		p("No tokens were seeded.\n\n")
	} else {
		mdTable(w, tokenTable(r, f))
	}
	p("### Invariants after the operation\n\n")
	mdTable(w, invariantTable(r, f))
	p("### The seed's claims vs. measured\n\n")
	mdTable(w, claimTable(claims(r, f)))
	p("### Expectations of the scenario\n\n")
	mdTable(w, expectationTable(r, f))
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
