package reports

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// question is the seed document's question; every report answers it.
const question = `Will "Restore into clean system (reinit first)" break auth?`

// answer is the one-line answer to the question for one scenario.
func answer(r *results.Result, f fmtr) string {
	m := measure(r)
	if m.errored {
		return "Not measured: the harness could not run this scenario."
	}
	var b strings.Builder
	switch {
	case len(m.access) == 0:
		b.WriteString("Outage not probed")
	case m.longest != nil:
		b.WriteString("Yes, for " + f.ms(m.longest.LongestMS) + ": " + failedWhat(*m.longest))
		if m.window {
			b.WriteString(" between the reinit and restore commits")
		}
	default:
		fmt.Fprintf(&b, "No outage: none of %s failed (%s samples)", plural(len(m.access), "probe", "probes"), f.n(m.samples))
	}
	switch {
	case len(r.Tokens) == 0:
	case len(m.workAfter) > 0 && len(m.impostors) > 0:
		b.WriteString("; worse, an old token authenticated as another user")
	case len(m.workAfter) > 0:
		b.WriteString("; the old token works again afterwards (no need to log in again)")
	default:
		b.WriteString("; every old token is refused afterwards, so users must log in again")
	}
	if r.Facts.LostAccount() {
		b.WriteString("; an account created in the window was lost")
	}
	if len(m.broken) > 0 {
		var names []string
		for _, c := range m.broken {
			names = append(names, string(c.Name))
		}
		b.WriteString("; broken: " + strings.Join(names, ", "))
	}
	return b.String() + "."
}

func failedWhat(p results.ProbeSummary) string {
	switch p.Kind {
	case results.ProbeLogin:
		return p.Target + " could not log in"
	case results.ProbeProfile:
		return "old token " + p.Target + " was refused"
	}
	return p.Name + " failed"
}

// baseline is what the run-level prose speaks about: the scenarios of the
// system as it is (without deliberate defects) that ran; when there are none,
// every scenario that ran.
func baseline(rf *results.RunFile) []*results.Result {
	var clean, ran []*results.Result
	for _, r := range rf.Results {
		if r.Status == results.Errored {
			continue
		}
		ran = append(ran, r)
		if len(r.Defects) == 0 {
			clean = append(clean, r)
		}
	}
	if len(clean) > 0 {
		return clean
	}
	return ran
}

// engines groups results by engine, in order of first appearance.
func engines(rs []*results.Result) (names []string, by map[string][]*results.Result) {
	by = map[string][]*results.Result{}
	for _, r := range rs {
		e := engine(r)
		if by[e] == nil {
			names = append(names, e)
		}
		by[e] = append(by[e], r)
	}
	return names, by
}

// worstOutage is the longest outage among rs: its length and scenario.
func worstOutage(rs []*results.Result) (ms float64, probed bool, who *results.Result) {
	for _, r := range rs {
		m := measure(r)
		if len(m.access) > 0 {
			probed = true
		}
		if m.longest != nil && (who == nil || m.longest.LongestMS > ms) {
			ms, who = m.longest.LongestMS, r
		}
	}
	return ms, probed, who
}

// overallAnswer answers the question for the whole run in one line.
func overallAnswer(rf *results.RunFile, f fmtr) string {
	base := baseline(rf)
	if len(base) == 0 {
		return "Not measured: no scenario could be run."
	}
	if len(base) == 1 {
		return answer(base[0], f)
	}
	names, by := engines(base)
	var parts []string
	for _, e := range names {
		ms, probed, who := worstOutage(by[e])
		switch {
		case who != nil:
			parts = append(parts, fmt.Sprintf("%s: yes, up to %s (%s)", e, f.ms(ms), who.Name))
		case probed:
			parts = append(parts, e+": no outage")
		}
	}
	var b strings.Builder
	if len(names) > 1 {
		b.WriteString("It depends on the engine. ")
	}
	if len(parts) > 0 {
		b.WriteString("Outage: " + strings.Join(parts, "; ") + ". ")
	}
	b.WriteString(oldTokens(base).verdict())
	return strings.TrimSpace(b.String())
}

// tokenFates sorts the scenarios that seeded tokens by what became of the
// tokens after the operation.
type tokenFates struct{ refused, working []string }

func oldTokens(rs []*results.Result) tokenFates {
	var t tokenFates
	for _, r := range rs {
		if len(r.Tokens) == 0 {
			continue
		}
		if len(measure(r).workAfter) > 0 {
			t.working = append(t.working, r.Name)
		} else {
			t.refused = append(t.refused, r.Name)
		}
	}
	return t
}

func (t tokenFates) seeded() bool     { return len(t.refused)+len(t.working) > 0 }
func (t tokenFates) allRefused() bool { return len(t.refused) > 0 && len(t.working) == 0 }

// refusedEverywhere says that every scenario with tokens refused them.
func (t tokenFates) refusedEverywhere() string {
	return fmt.Sprintf("old tokens are refused afterwards in every scenario that seeded them (%s)", strings.Join(t.refused, ", "))
}

// verdict says what happened to old tokens, as a sentence ("" without any).
func (t tokenFates) verdict() string {
	switch {
	case !t.seeded():
		return ""
	case t.allRefused():
		return firstLetter(t.refusedEverywhere(), strings.ToUpper) + ", so users must log in again."
	case len(t.refused) == 0:
		return "Old tokens work again afterwards (" + strings.Join(t.working, ", ") + ")."
	}
	return fmt.Sprintf("Old tokens are refused afterwards in %s, but work again in %s.", strings.Join(t.refused, ", "), strings.Join(t.working, ", "))
}

// firstLetter changes the case of s's first letter with to (strings.ToUpper
// or strings.ToLower), so one sentence can start or continue another.
func firstLetter(s string, to func(string) string) string {
	if s == "" {
		return s
	}
	return to(s[:1]) + s[1:]
}

// runClaim is a claim judged across scenarios.
type runClaim struct {
	Seed     string
	Verdict  Verdict
	Evidence string
}

// manualSafer judges the seed's recommendation of the manual path against
// the API call. Its auth impact is the same window (reinit committed, restore
// not yet), with any pause between the steps inside it; the lengths of the
// two windows are reported but not compared, since they follow the machine's
// load as much as the path.
func manualSafer(rf *results.RunFile, f fmtr) runClaim {
	c := runClaim{Seed: `The manual 3-step path (create_backup, system_reinit, restore_backup) is safer than the with_reinit API call ("Recommended Approach")`}
	var manual, api []*results.Result
	for _, r := range baseline(rf) {
		switch {
		case r.Operation == results.Manual:
			manual = append(manual, r)
		case r.Strategy == results.TwoPhase:
			api = append(api, r)
		}
	}
	mMS, mProbed, mWho := worstOutage(manual)
	aMS, aProbed, aWho := worstOutage(api)
	if !mProbed || !aProbed {
		c.Verdict, c.Evidence = NotMeasured, "needs a probed manual scenario and a probed two-phase API scenario in the same run"
		return c
	}
	describe := func(ms float64, who *results.Result) string {
		if who == nil {
			return "no outage"
		}
		return fmt.Sprintf("%s outage (%s)", f.ms(ms), who.Name)
	}
	c.Evidence = fmt.Sprintf("manual 3-step: %s; API call, two-phase: %s", describe(mMS, mWho), describe(aMS, aWho))
	switch {
	case mWho != nil:
		c.Verdict = Refuted
		c.Evidence += "; the manual path has the same window between reinit and restore, and every pause between its steps lies inside it"
	case aWho != nil:
		c.Verdict = Held
	default:
		c.Verdict, c.Evidence = NotMeasured, c.Evidence+"; neither had an outage"
	}
	return c
}

// adviceKind names the rule of the recommendation a piece of advice comes
// from; tests compare kinds, since the texts quote measurements.
type adviceKind string

const (
	adviceRerun             adviceKind = "re-run"
	adviceBrokenInvariant   adviceKind = "broken-invariant"
	adviceCleanEngine       adviceKind = "clean-engine"
	adviceNoOutage          adviceKind = "no-outage"
	adviceMaintenanceWindow adviceKind = "maintenance-window"
	adviceWindowSize        adviceKind = "window-size"
	adviceNotManual         adviceKind = "not-manual"
	adviceLogInAgain        adviceKind = "log-in-again"
	adviceCheckRevocation   adviceKind = "check-revocation"
	adviceKeepRevoking      adviceKind = "keep-revoking"
	adviceImpersonation     adviceKind = "impersonation"
	adviceBlockWrites       adviceKind = "block-writes"
)

// advice is one item of the recommendation.
type advice struct {
	kind adviceKind
	text string
}

// recommendation derives what to do from the measurements, most important
// first.
func recommendation(rf *results.RunFile, f fmtr) []advice {
	var recs []advice
	base := baseline(rf)
	var errored []string
	for _, r := range rf.Results {
		if r.Status == results.Errored {
			errored = append(errored, r.Name)
		}
	}
	if len(errored) > 0 {
		recs = append(recs, advice{adviceRerun, fmt.Sprintf("Re-run before deciding: %s could not be run (%s), so their verdicts are missing.", plural(len(errored), "scenario", "scenarios"), strings.Join(errored, ", "))})
	}
	for _, r := range base {
		if len(r.Defects) > 0 {
			continue
		}
		for _, c := range measure(r).broken {
			recs = append(recs, advice{adviceBrokenInvariant, fmt.Sprintf("Do not run it on staging yet: invariant %s failed in %s (%s).", c.Name, r.Name, f.text(c.Evidence))})
		}
	}
	recs = append(recs, engineAdvice(base, f)...)
	if c := manualSafer(rf, f); c.Verdict == Refuted {
		recs = append(recs, advice{adviceNotManual, "Do not switch to the seed's manual 3-step path for safety: " + c.Evidence + "."})
	}
	switch t := oldTokens(base); {
	case t.allRefused():
		recs = append(recs, advice{adviceLogInAgain, "Announce that everyone must log in again, whatever the engine: " + t.refusedEverywhere() + "."})
	case t.seeded():
		recs = append(recs, advice{adviceCheckRevocation, "Check token revocation before relying on it: " + firstLetter(t.verdict(), strings.ToLower)})
	}
	return append(recs, defectAdvice(rf)...)
}

// engineAdvice compares the engines' outages and sizes the maintenance window.
func engineAdvice(base []*results.Result, f fmtr) []advice {
	var recs []advice
	names, by := engines(base)
	var clean, outage []string
	var worst float64
	var fixtures []string
	for _, e := range names {
		ms, probed, who := worstOutage(by[e])
		switch {
		case who != nil:
			outage = append(outage, fmt.Sprintf("%s (%s, up to %s)", e, who.Name, f.ms(ms)))
			worst = max(worst, ms)
			fixtures = append(fixtures, who.Fixture)
		case probed:
			clean = append(clean, e)
		}
	}
	switch {
	case len(clean) > 0 && len(outage) > 0:
		recs = append(recs, advice{adviceCleanEngine, fmt.Sprintf("Run the with_reinit restore as %s: no probe failed there, while access failed with %s.", strings.Join(clean, " or "), strings.Join(outage, ", "))})
	case len(clean) > 0:
		recs = append(recs, advice{adviceNoOutage, fmt.Sprintf("The with_reinit restore had no outage with %s.", strings.Join(clean, ", "))})
	case len(outage) > 0:
		recs = append(recs, advice{adviceMaintenanceWindow, fmt.Sprintf("Plan a maintenance window: logins fail while the restore runs, with %s.", strings.Join(outage, ", "))})
	}
	if len(outage) > 0 && worst < 5000 {
		sort.Strings(fixtures)
		recs = append(recs, advice{adviceWindowSize, fmt.Sprintf("Do not size that window from the seed's 5-30 s estimate, nor from these numbers alone: with fixture %s the outage was at most %s; it grows with the backup, so rehearse with a backup of staging's size.", strings.Join(uniq(fixtures), ", "), f.ms(worst))})
	}
	return recs
}

// defectAdvice turns what the deliberately broken systems showed into advice
// about what must stay as it is.
func defectAdvice(rf *results.RunFile) []advice {
	var recs []advice
	var resurrected, impersonated, lost []string
	for _, r := range rf.Results {
		if r.Status == results.Errored {
			continue
		}
		m := measure(r)
		if len(m.workAfter) > 0 && len(r.Defects) > 0 {
			resurrected = append(resurrected, fmt.Sprintf("%s (%s)", r.Name, strings.Join(r.Defects, ", ")))
		}
		if len(m.impostors) > 0 {
			impersonated = append(impersonated, r.Name)
		}
		if r.Facts.LostAccount() {
			lost = append(lost, r.Name)
		}
	}
	if len(resurrected) > 0 {
		recs = append(recs, advice{adviceKeepRevoking, "Keep revoking tokens at reinit: without it the old token worked again after the restore in " + strings.Join(resurrected, ", ") + "."})
	}
	if len(impersonated) > 0 {
		recs = append(recs, advice{adviceImpersonation, "Without revocation an old token can even authenticate as someone else: a user created in the window got a recycled id (" + strings.Join(impersonated, ", ") + ")."})
	}
	if len(lost) > 0 {
		recs = append(recs, advice{adviceBlockWrites, "Block sign-ups and other writes while it runs: an account created in the window was overwritten by the restore (" + strings.Join(lost, ", ") + "), and the reinit's sequence reset hands out ids of the backup."})
	}
	return recs
}

func uniq(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
