package reports

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/restore"
)

// question is the seed document's question; every report answers it.
const question = `Will "Restore into clean system (reinit first)" break auth?`

// answer is the one-line answer to the question for one scenario.
func answer(r *harness.Result, f fmtr) string {
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
	if len(r.Facts.PKReuse) > 0 && lostAccount(r) {
		b.WriteString("; an account created in the window was lost")
	}
	if len(m.broken) > 0 {
		var names []string
		for _, c := range m.broken {
			names = append(names, c.Name)
		}
		b.WriteString("; broken: " + strings.Join(names, ", "))
	}
	return b.String() + "."
}

func failedWhat(p harness.ProbeSummary) string {
	switch {
	case p.Kind == "login":
		return p.Target + " could not log in"
	case p.Kind == "profile":
		return "old token " + p.Target + " was refused"
	}
	return p.Name + " failed"
}

func lostAccount(r *harness.Result) bool {
	for _, s := range r.Facts.PKReuse {
		if strings.Contains(s, "lost") {
			return true
		}
	}
	return false
}

// baseline is what the run-level prose speaks about: the scenarios of the
// system as it is (without deliberate defects) that ran; when there are none,
// every scenario that ran.
func baseline(rf *harness.RunFile) []*harness.Result {
	var clean, ran []*harness.Result
	for _, r := range rf.Results {
		if r.Status == harness.Errored {
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
func engines(rs []*harness.Result) (names []string, by map[string][]*harness.Result) {
	by = map[string][]*harness.Result{}
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
func worstOutage(rs []*harness.Result) (ms float64, probed bool, who *harness.Result) {
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
func overallAnswer(rf *harness.RunFile, f fmtr) string {
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
	b.WriteString(tokensVerdict(base))
	return strings.TrimSpace(b.String())
}

// tokensVerdict says what happened to old tokens across results.
func tokensVerdict(rs []*harness.Result) string {
	var refused, working []string
	for _, r := range rs {
		if len(r.Tokens) == 0 {
			continue
		}
		if len(measure(r).workAfter) > 0 {
			working = append(working, r.Name)
		} else {
			refused = append(refused, r.Name)
		}
	}
	switch {
	case len(refused) == 0 && len(working) == 0:
		return ""
	case len(working) == 0:
		return fmt.Sprintf("Old tokens are refused afterwards in every scenario that seeded them (%s), so users must log in again.", strings.Join(refused, ", "))
	case len(refused) == 0:
		return "Old tokens work again afterwards (" + strings.Join(working, ", ") + ")."
	}
	return fmt.Sprintf("Old tokens are refused afterwards in %s, but work again in %s.", strings.Join(refused, ", "), strings.Join(working, ", "))
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
func manualSafer(rf *harness.RunFile, f fmtr) runClaim {
	c := runClaim{Seed: `The manual 3-step path (create_backup, system_reinit, restore_backup) is safer than the with_reinit API call ("Recommended Approach")`}
	var manual, api []*harness.Result
	for _, r := range baseline(rf) {
		switch {
		case r.Operation == "manual":
			manual = append(manual, r)
		case r.Strategy != string(restore.Atomic):
			api = append(api, r)
		}
	}
	mMS, mProbed, mWho := worstOutage(manual)
	aMS, aProbed, aWho := worstOutage(api)
	if !mProbed || !aProbed {
		c.Verdict, c.Evidence = NotMeasured, "needs a probed manual scenario and a probed two-phase API scenario in the same run"
		return c
	}
	describe := func(ms float64, who *harness.Result) string {
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

// recommendation derives what to do from the measurements, most important
// first.
func recommendation(rf *harness.RunFile, f fmtr) []string {
	var recs []string
	base := baseline(rf)
	var errored []string
	for _, r := range rf.Results {
		if r.Status == harness.Errored {
			errored = append(errored, r.Name)
		}
	}
	if len(errored) > 0 {
		recs = append(recs, fmt.Sprintf("Re-run before deciding: %s could not be run (%s), so their verdicts are missing.", plural(len(errored), "scenario", "scenarios"), strings.Join(errored, ", ")))
	}
	for _, r := range base {
		if len(r.Defects) > 0 {
			continue
		}
		for _, c := range measure(r).broken {
			recs = append(recs, fmt.Sprintf("Do not run it on staging yet: invariant %s failed in %s (%s).", c.Name, r.Name, f.text(c.Evidence)))
		}
	}
	recs = append(recs, engineAdvice(base, f)...)
	if c := manualSafer(rf, f); c.Verdict == Refuted {
		recs = append(recs, "Do not switch to the seed's manual 3-step path for safety: "+c.Evidence+".")
	}
	if v := tokensVerdict(base); v != "" {
		if strings.HasPrefix(v, "Old tokens are refused afterwards in every") {
			v = strings.TrimSuffix(v, ", so users must log in again.") + "."
			recs = append(recs, "Announce that everyone must log in again, whatever the engine: "+strings.ToLower(v[:1])+v[1:])
		} else {
			recs = append(recs, "Check token revocation before relying on it: "+strings.ToLower(v[:1])+v[1:])
		}
	}
	recs = append(recs, defectAdvice(rf)...)
	return recs
}

// engineAdvice compares the engines' outages and sizes the maintenance window.
func engineAdvice(base []*harness.Result, f fmtr) []string {
	var recs []string
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
		recs = append(recs, fmt.Sprintf("Run the with_reinit restore as %s: no probe failed there, while access failed with %s.", strings.Join(clean, " or "), strings.Join(outage, ", ")))
	case len(clean) > 0:
		recs = append(recs, fmt.Sprintf("The with_reinit restore had no outage with %s.", strings.Join(clean, ", ")))
	case len(outage) > 0:
		recs = append(recs, fmt.Sprintf("Plan a maintenance window: logins fail while the restore runs, with %s.", strings.Join(outage, ", ")))
	}
	if len(outage) > 0 && worst < 5000 {
		sort.Strings(fixtures)
		recs = append(recs, fmt.Sprintf("Do not size that window from the seed's 5-30 s estimate, nor from these numbers alone: with fixture %s the outage was at most %s; it grows with the backup, so rehearse with a backup of staging's size.", strings.Join(uniq(fixtures), ", "), f.ms(worst)))
	}
	return recs
}

// defectAdvice turns what the deliberately broken systems showed into advice
// about what must stay as it is.
func defectAdvice(rf *harness.RunFile) []string {
	var recs []string
	var resurrected, impersonated, lost []string
	for _, r := range rf.Results {
		if r.Status == harness.Errored {
			continue
		}
		m := measure(r)
		if len(m.workAfter) > 0 && len(r.Defects) > 0 {
			resurrected = append(resurrected, fmt.Sprintf("%s (%s)", r.Name, strings.Join(r.Defects, ", ")))
		}
		if len(m.impostors) > 0 {
			impersonated = append(impersonated, r.Name)
		}
		if lostAccount(r) {
			lost = append(lost, r.Name)
		}
	}
	if len(resurrected) > 0 {
		recs = append(recs, "Keep revoking tokens at reinit: without it the old token worked again after the restore in "+strings.Join(resurrected, ", ")+".")
	}
	if len(impersonated) > 0 {
		recs = append(recs, "Without revocation an old token can even authenticate as someone else: a user created in the window got a recycled id ("+strings.Join(impersonated, ", ")+").")
	}
	if len(lost) > 0 {
		recs = append(recs, "Block sign-ups and other writes while it runs: an account created in the window was overwritten by the restore ("+strings.Join(lost, ", ")+"), and the reinit's sequence reset hands out ids of the backup.")
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
