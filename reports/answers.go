package reports

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// question is the seed document's question; every report answers it.
const question = `Will "Restore into clean system (reinit first)" break auth?`

// answer is the one-line answer to the question for one scenario.
func answer(r *results.Result, f fmtr) string {
	m := measure(r)
	switch {
	case m.notPerformed:
		return notPerformedAnswer(r, f)
	case m.errored && !m.failedAfterReinit:
		return "Not measured: the harness could not run this scenario."
	}
	var parts []string
	if m.failedAfterReinit {
		parts = append(parts, failedAfterReinitText(r, f), "then "+m.outageAnswer(f, false))
	} else {
		parts = append(parts, m.outageAnswer(f, true))
	}
	parts = append(parts, serverErrorsText(r, f))
	parts = append(parts, m.tokenAnswer()...)
	parts = append(parts, m.refreshAnswer())
	parts = append(parts, kindAnswer(r))
	if r.Facts.LostAccount() {
		parts = append(parts, "an account created in the window was lost")
	}
	if len(m.broken) > 0 && !m.errored {
		var names []string
		for _, c := range m.broken {
			names = append(names, string(c.Name))
		}
		parts = append(parts, "broken: "+strings.Join(names, ", "))
	}
	parts = slices.DeleteFunc(parts, func(s string) bool { return s == "" })
	return strings.Join(parts, "; ") + "."
}

// outageAnswer is the answer's clause on access: an outage, none, or why
// none could be seen. verdict starts it with "Yes"/"No outage"; without,
// it only says what the probes saw.
func (m measures) outageAnswer(f fmtr, verdict bool) string {
	switch {
	case len(m.access) == 0:
		return pick(verdict, "Outage not probed", "no probe watched access")
	case m.longest != nil:
		w := m.longest.Longest()
		length := f.ms(m.longest.LongestMS)
		if w.Open {
			length = "at least " + length + ", still failing when sampling stopped"
		}
		if !verdict {
			return failedWhat(*m.longest) + " for " + length
		}
		s := "Yes, for " + length + ": " + failedWhat(*m.longest)
		// The stretch began before the reinit only if its first failure was
		// answered before the reinit committed (sent earlier is not enough:
		// a request in flight across the commit sees the state after it).
		// The reinit's stamp is taken after its commit became visible, late
		// by as much as a loaded machine delays a goroutine, so an answer a
		// little before the stamp may already show the state after it: only
		// one earlier by more than a request's time (50 ms at least) shows
		// a failure before the reinit.
		// Where the engine measured when it sent the COMMIT, an answer
		// before that is before the reinit, with no margin to guess.
		ws, _ := m.r.Phase(results.PhaseReinitCommitted)
		first := firstAnswer(m.r, m.longest.Name, w.StartMS)
		before := first < ws-max(50, m.longest.MedianMS)
		if sent, ok := m.r.PhaseSent(results.PhaseReinitCommitted); ok && sent < ws {
			before = first < sent
		}
		switch {
		case m.window && !w.Open && !before:
			s += " between the reinit and restore commits"
		case m.window && before:
			s += ", from " + f.at(w.StartMS) + ", before the reinit committed at " + f.at(ws)
		}
		return s
	}
	none := fmt.Sprintf("none of %s failed (%s samples, %s", plural(len(m.access), "probe", "probes"), f.n(m.samples), m.resolution(f))
	var s string
	switch {
	case len(m.unsampled) > 0:
		s = "Outage not measured: " + m.notSampledText(f) + m.refusedInWindow()
	case m.windowUnknown:
		s = "No failure seen: " + none + "), but the window between the commits was not observed"
	case m.window:
		s = "No outage: " + none + ", within the " + f.ms(m.r.Facts.WindowMS) + " window)"
	default:
		s = "No outage: " + none + ")"
	}
	if !verdict {
		return firstLetter(s, strings.ToLower)
	}
	return s
}

// refusedInWindow names the old-token probes that were refused inside the
// window, when the access probes could not see it.
func (m measures) refusedInWindow() string {
	var refused []string
	for _, p := range m.r.Probes {
		if (p.Kind == results.ProbeProfile || p.Kind == results.ProbeRefresh) && p.InWindowBad > 0 {
			refused = append(refused, probeTarget(p))
		}
	}
	if len(refused) == 0 {
		return ""
	}
	return "; in the window, refused: " + strings.Join(refused, ", ")
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

// outage is the worst that the access probes of some scenarios saw.
type outage struct {
	probed bool
	// p and who are the probe with the longest failing stretch and its
	// scenario; nil when none failed.
	p   *results.ProbeSummary
	who *results.Result
	// unseen are the scenarios without a failure whose window the probes
	// could not see.
	unseen []string
}

func worstOutage(rs []*results.Result) outage {
	var o outage
	for _, r := range rs {
		m := measure(r)
		if len(m.access) > 0 {
			o.probed = true
		}
		if m.longest != nil && (o.p == nil || m.longest.LongestMS > o.p.LongestMS) {
			o.p, o.who = m.longest, r
		}
		if m.unseen() {
			o.unseen = append(o.unseen, r.Name)
		}
	}
	return o
}

// clean reports whether probes watched and none failed nor missed a window.
func (o outage) clean() bool { return o.probed && o.p == nil && len(o.unseen) == 0 }

// length is the worst stretch: "48.0 ms", or "at least 48.0 ms, still
// failing when sampling stopped".
func (o outage) length(f fmtr) string {
	if o.p.Longest().Open {
		return "at least " + f.ms(o.p.LongestMS) + ", still failing when sampling stopped"
	}
	return f.ms(o.p.LongestMS)
}

// text says it for the overall answer: "yes, up to 48.0 ms (two-phase)".
func (o outage) text(f fmtr) string {
	switch {
	case o.p != nil && o.p.Longest().Open:
		return "yes, " + o.length(f) + " (" + o.who.Name + ")"
	case o.p != nil:
		return "yes, up to " + o.length(f) + " (" + o.who.Name + ")"
	case len(o.unseen) > 0:
		return "not measured: the window was not seen by the probes (" + strings.Join(o.unseen, ", ") + ")"
	case o.probed:
		return "no outage"
	}
	return ""
}

// overallAnswer answers the question for the whole run in one line.
func overallAnswer(rf *results.RunFile, f fmtr) string {
	if len(rf.Results) == 1 {
		return answer(rf.Results[0], f)
	}
	lead := runLead(rf, f)
	base := baseline(rf)
	if len(base) == 0 {
		return strings.TrimSpace(lead + "Not measured: no scenario could be run.")
	}
	if len(base) == 1 && lead == "" {
		return answer(base[0], f)
	}
	names, by := engines(base)
	var parts []string
	for _, e := range names {
		if t := worstOutage(by[e]).text(f); t != "" {
			parts = append(parts, e+": "+t)
		}
	}
	var b strings.Builder
	b.WriteString(lead)
	if len(names) > 1 {
		b.WriteString("It depends on the engine. ")
	}
	if len(parts) > 0 {
		b.WriteString("Outage: " + strings.Join(parts, "; ") + ". ")
	}
	b.WriteString(oldTokens(base).verdict())
	b.WriteString(kindsVerdict(base))
	return strings.TrimSpace(b.String())
}

// runLead is what the overall answer says before anything else: the
// scenarios whose restore failed after the reinit, and the server errors.
func runLead(rf *results.RunFile, f fmtr) string {
	var failed, servers []string
	for _, r := range rf.Results {
		if r.Facts.Outcome == results.OperationFailedAfterReinit {
			failed = append(failed, fmt.Sprintf("%s (%s)", r.Name, usersLeft(r)))
		}
		if n := len(r.Facts.ServerErrors); n > 0 {
			servers = append(servers, fmt.Sprintf("%s (%s %s)", r.Name, f.n(n), pick(n == 1, "request", "requests")))
		}
	}
	var b strings.Builder
	if len(failed) > 0 {
		b.WriteString("The restore failed after the reinit committed, leaving the system without its data, in " + strings.Join(failed, ", ") + ". ")
	}
	if len(servers) > 0 {
		b.WriteString("The server failed in " + strings.Join(servers, ", ") + ". ")
	}
	return b.String()
}

// tokenFates sorts the scenarios that seeded tokens by what became of the
// tokens after the operation: all refused; some working again (or as
// another user); some accepted throughout, even while their users did not
// exist (no user lookup); some kept working, their users never deleted;
// some working, whether their users were deleted not observed.
type tokenFates struct{ refused, working, throughout, kept, unseen []string }

func oldTokens(rs []*results.Result) tokenFates {
	var t tokenFates
	for _, r := range rs {
		if len(r.Tokens) == 0 {
			continue
		}
		m := measure(r)
		impostor := slices.ContainsFunc(r.Tokens, func(tk results.TokenFate) bool { return tk.After == 200 && tk.AfterAs != "" && tk.AfterAs != tk.User })
		switch {
		case !m.workAfter():
			t.refused = append(t.refused, r.Name)
		case len(m.worksAgain) > 0 || impostor:
			t.working = append(t.working, r.Name)
		case len(m.evenDeleted) > 0:
			t.throughout = append(t.throughout, r.Name)
		case len(m.keptWorking) > 0:
			t.kept = append(t.kept, r.Name)
		default:
			t.unseen = append(t.unseen, r.Name)
		}
	}
	return t
}

func (t tokenFates) seeded() bool {
	return len(t.refused)+len(t.working)+len(t.throughout)+len(t.kept)+len(t.unseen) > 0
}
func (t tokenFates) allRefused() bool {
	return len(t.refused) > 0 && len(t.working)+len(t.throughout)+len(t.kept)+len(t.unseen) == 0
}

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
	}
	var parts []string
	if len(t.refused) > 0 {
		parts = append(parts, "old tokens are refused afterwards in "+strings.Join(t.refused, ", "))
	}
	switch {
	case len(t.working) > 0 && len(parts) > 0:
		parts = append(parts, "but work again in "+strings.Join(t.working, ", "))
	case len(t.working) > 0:
		parts = append(parts, "old tokens work again afterwards ("+strings.Join(t.working, ", ")+")")
	}
	if len(t.throughout) > 0 {
		parts = append(parts, "old tokens kept working throughout, even while their users did not exist, in "+strings.Join(t.throughout, ", "))
	}
	if len(t.kept) > 0 {
		parts = append(parts, "an old token whose user was never deleted kept working in "+strings.Join(t.kept, ", "))
	}
	if len(t.unseen) > 0 {
		parts = append(parts, "an old token worked after the operation in "+strings.Join(t.unseen, ", ")+" (whether its user was deleted in between was not observed)")
	}
	return firstLetter(strings.Join(parts, ", "), strings.ToUpper) + "."
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
	mo, ao := worstOutage(manual), worstOutage(api)
	if !mo.probed || !ao.probed {
		c.Verdict, c.Evidence = NotMeasured, "needs a probed manual scenario and a probed two-phase API scenario in the same run"
		return c
	}
	describe := func(o outage) string {
		switch {
		case o.p != nil:
			return fmt.Sprintf("%s outage (%s)", o.length(f), o.who.Name)
		case len(o.unseen) > 0:
			return "window not seen by the probes (" + strings.Join(o.unseen, ", ") + ")"
		}
		return "no outage"
	}
	c.Evidence = fmt.Sprintf("manual 3-step: %s; API call, two-phase: %s", describe(mo), describe(ao))
	switch {
	case mo.p != nil:
		c.Verdict = Refuted
		c.Evidence += "; the manual path has the same window between reinit and restore, and every pause between its steps lies inside it"
	case ao.p != nil && mo.clean():
		c.Verdict = Held
	case ao.p != nil:
		c.Verdict = NotMeasured
	default:
		c.Verdict, c.Evidence = NotMeasured, c.Evidence+"; neither had an outage"
	}
	return c
}

// adviceKind names the rule of the recommendation a piece of advice comes
// from; tests compare kinds, since the texts quote measurements.
type adviceKind string

const (
	adviceFailedAfterReinit adviceKind = "failed-after-reinit"
	adviceNotPerformed      adviceKind = "not-performed"
	adviceServerErrors      adviceKind = "server-errors"
	adviceRerun             adviceKind = "re-run"
	adviceBrokenInvariant   adviceKind = "broken-invariant"
	adviceCleanEngine       adviceKind = "clean-engine"
	adviceNoOutage          adviceKind = "no-outage"
	adviceMaintenanceWindow adviceKind = "maintenance-window"
	adviceWindowSize        adviceKind = "window-size"
	adviceNotManual         adviceKind = "not-manual"
	adviceLogInAgain        adviceKind = "log-in-again"
	adviceCheckRevocation   adviceKind = "check-revocation"
	adviceRefreshAlive      adviceKind = "refresh-alive"
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
	recs := operationAdvice(rf, f)
	base := baseline(rf)
	var errored []string
	for _, r := range rf.Results {
		if r.Status == results.Errored && r.Facts.Outcome != results.OperationFailedAfterReinit && !notPerformed(r.Facts.Outcome) {
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
	var alive []string
	for _, r := range base {
		if len(measure(r).refreshAlive) > 0 && len(r.Defects) == 0 {
			alive = append(alive, r.Name)
		}
	}
	if len(alive) > 0 {
		recs = append(recs, advice{adviceRefreshAlive, "Do not count on the operation to log anyone out: old refresh tokens still mint access tokens after it in " + strings.Join(alive, ", ") +
			"; if they must die, blacklist them at reinit and rehearse again to see that the restore does not bring them back."})
	}
	return append(recs, defectAdvice(rf)...)
}

// operationAdvice comes first: a restore that failed after its reinit,
// an operation that did not happen, and server errors.
func operationAdvice(rf *results.RunFile, f fmtr) []advice {
	var recs, notRun []advice
	var servers []string
	for _, r := range rf.Results {
		switch {
		case r.Facts.Outcome == results.OperationFailedAfterReinit:
			recs = append(recs, advice{adviceFailedAfterReinit, fmt.Sprintf("Do not run it on staging: in %s the restore failed after the reinit committed (%s %s), leaving the system with %s; find out why before rehearsing again.",
				r.Name, callName(r), callResult(r, f), usersLeft(r))})
		case notPerformed(r.Facts.Outcome):
			notRun = append(notRun, advice{adviceNotPerformed, fmt.Sprintf("Nothing of %s was measured: %s; rehearse again once the operation happens and its commits are seen.", r.Name, notPerformedText(r, f))})
		}
		if s := serverErrorsText(r, f); s != "" {
			servers = append(servers, r.Name+": "+strings.TrimPrefix(s, "the server failed: "))
		}
	}
	if len(servers) > 0 {
		recs = append(recs, advice{adviceServerErrors, "Find out why the server failed, apart from any 401: " + strings.Join(servers, "; ") + "."})
	}
	return append(recs, notRun...)
}

// engineAdvice compares the engines' outages and sizes the maintenance window.
func engineAdvice(base []*results.Result, f fmtr) []advice {
	var recs []advice
	names, by := engines(base)
	var clean, outages, sizes []string
	var worst outage
	for _, e := range names {
		o := worstOutage(by[e])
		switch {
		case o.p != nil:
			outages = append(outages, fmt.Sprintf("%s (%s, %s)", e, o.who.Name, pick(o.p.Longest().Open, "", "up to ")+o.length(f)))
			if worst.p == nil || o.p.LongestMS > worst.p.LongestMS {
				worst = o
			}
			sizes = append(sizes, dataSize(o.who))
		case o.clean():
			clean = append(clean, e)
		}
	}
	switch {
	case len(clean) > 0 && len(outages) > 0:
		recs = append(recs, advice{adviceCleanEngine, fmt.Sprintf("Run the with_reinit restore as %s: no probe failed there, while access failed with %s.", strings.Join(clean, " or "), strings.Join(outages, ", "))})
	case len(clean) > 0:
		recs = append(recs, advice{adviceNoOutage, fmt.Sprintf("The with_reinit restore had no outage with %s.", strings.Join(clean, ", "))})
	case len(outages) > 0:
		recs = append(recs, advice{adviceMaintenanceWindow, fmt.Sprintf("Plan a maintenance window: logins fail while the restore runs, with %s.", strings.Join(outages, ", "))})
	}
	if worst.p != nil && worst.p.LongestMS < 5000 {
		sort.Strings(sizes)
		was := "was at most " + worst.length(f)
		if worst.p.Longest().Open {
			was = "lasted " + worst.length(f)
		}
		recs = append(recs, advice{adviceWindowSize, fmt.Sprintf("Do not size that window from the seed's 5-30 s estimate, nor from these numbers alone: with %s the outage %s; it grows with the backup, so rehearse with a backup of staging's size.", strings.Join(uniq(sizes), " and "), was)})
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
		if len(m.worksAgain) > 0 && len(r.Defects) > 0 {
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

// firstAnswer is when the answer to probe's sample sent at sentMS arrived.
func firstAnswer(r *results.Result, probe string, sentMS float64) float64 {
	for _, s := range r.Timeline.Samples {
		if s.Probe == probe && s.AtMS == sentMS {
			return s.DoneMS()
		}
	}
	return sentMS
}
