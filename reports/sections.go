package reports

import (
	"fmt"

	"github.com/rehearse-dev/rehearse/results"
)

// block is one piece of a scenario's section: Markdown and HTML render the
// same blocks, so the two never disagree.
type block struct {
	heading string // a subheading; nothing else set
	lead    string // a paragraph's bold start
	text    string // a paragraph
	tbl     *table
	list    []string
}

// The accessors are what the HTML template reads.
func (b block) Heading() string { return b.heading }
func (b block) Lead() string    { return b.lead }
func (b block) Text() string    { return b.text }
func (b block) Table() *table   { return b.tbl }
func (b block) List() []string  { return b.list }

func heading(h string) block { return block{heading: h} }
func para(s string) block    { return block{text: s} }
func tbl(t table) block      { return block{tbl: &t} }

// scenarioMeta is the line under a scenario's title, after its file.
func scenarioMeta(r *results.Result) string {
	return fmt.Sprintf("%s, system %s%s", engine(r), system(r), providerNote(r))
}

// scenarioBlocks is a scenario's section after its answer: what went
// wrong first, then the measurements.
func scenarioBlocks(r *results.Result, f fmtr) []block {
	m := measure(r)
	switch {
	case m.notPerformed || m.failedAfterReinit:
		return append([]block{{lead: "The harness stopped:", text: f.text(r.Error)}}, measuredBlocks(r, m, f)...)
	case m.errored:
		return []block{{lead: "The harness could not run this scenario:", text: f.text(r.Error)}}
	}
	return append(failedBlocks(r, f), measuredBlocks(r, m, f)...)
}

// failedOutcomes are the scenario's failed expectations, in file order.
func failedOutcomes(r *results.Result) []results.Outcome {
	var failed []results.Outcome
	for _, o := range r.Expectations {
		if !o.Pass {
			failed = append(failed, o)
		}
	}
	return failed
}

// failedBlocks are the scenario's failed expectations, none when all held.
func failedBlocks(r *results.Result, f fmtr) []block {
	failed := failedOutcomes(r)
	if len(failed) == 0 {
		return nil
	}
	return []block{heading("Failed expectations"), tbl(outcomeTable(failed, f))}
}

// measuredBlocks are the measurements of a scenario whose operation was
// attempted; invariants are judged only when it completed.
func measuredBlocks(r *results.Result, m measures, f fmtr) []block {
	bs := dataBlocks(r, f)
	bs = append(bs, heading("Timeline of the operation"), para("Milliseconds from the moment the operation started, on a monotonic clock."),
		tbl(phaseTable(r, f)), para(m.windowText(f)))
	if len(r.Facts.PKReuse) > 0 {
		b := block{text: "Primary-key reuse:"}
		for _, s := range r.Facts.PKReuse {
			b.list = append(b.list, s.String())
		}
		bs = append(bs, b)
	}
	bs = append(bs, section("Outage windows per probe", len(r.Probes) == 0, "No probes in this scenario.", func() []block { return []block{tbl(probeTable(r, f))} })...)
	bs = append(bs, section("Request times per probe: median / p99 / max", len(r.Probes) == 0, "No probes in this scenario.", func() []block { return []block{tbl(latencyTable(r, f))} })...)
	bs = append(bs, section("Server errors", len(r.Facts.ServerErrors) == 0,
		"None: no request got a 5xx status or went without a response, before, during or after the operation.", func() []block {
			return []block{para("Every request that got a 5xx status or no response at all, before, during and after the operation: the server failed, which is apart from any refusal (401)."),
				tbl(serverErrorTable(r, f))}
		})...)
	bs = append(bs, section("Fate of every seeded token", len(r.Tokens) == 0, "No tokens were seeded.", func() []block { return []block{tbl(tokenTable(r, f))} })...)
	bs = append(bs, section("Invariants after the operation", m.errored, "Not judged: the operation did not complete.", func() []block { return []block{tbl(invariantTable(r, f))} })...)
	if s := writtenText(r, f); s != "" {
		bs = append(bs, para(s))
	}
	return append(bs, heading("The seed's claims vs. measured"), tbl(claimTable(claims(r, f))),
		heading("Expectations of the scenario"), tbl(expectationTable(r, f)))
}

// section is a heading and its blocks, or a sentence saying why there
// are none.
func section(h string, empty bool, none string, blocks func() []block) []block {
	if empty {
		return []block{heading(h), para(none)}
	}
	return append([]block{heading(h)}, blocks()...)
}

// dataBlocks say whose accounts the scenario used and how much data it
// restored, with what the backup left out.
func dataBlocks(r *results.Result, f fmtr) []block {
	bs := []block{heading("Accounts and data"), para(fmt.Sprintf("Accounts: %s. Data restored: %s.", accountsText(r, f), dataSize(r)))}
	if a := r.Accounts; a != nil && a.Source == results.AccountsCreated {
		bs = append(bs, para(removalText(a, f)))
	}
	if b := r.Backup; b != nil && len(b.PerModel) > 0 {
		bs = append(bs, para("The backup held:"), tbl(perModelTable(b, f)))
	}
	switch b := r.Backup; {
	case b == nil:
	case len(b.LeftOut) == 0:
		bs = append(bs, para("The backup left out no table."))
	default:
		bs = append(bs, para("The backup left out:"), tbl(leftOutTable(b, f)))
	}
	return bs
}
