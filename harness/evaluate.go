package harness

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rehearse-dev/rehearse/edms"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
	"github.com/rehearse-dev/rehearse/pg/integrity"
	"github.com/rehearse-dev/rehearse/results"
)

// measureAfter takes the measurements after the operation that the checks
// are judged on: every token on profile, the logins the checks ask for, and
// the database invariants.
func (ru *run) measureAfter(ctx context.Context) error {
	ru.measureTokensAfter(ctx)
	for _, l := range loginsAfter(ru.plan) {
		rep := ru.cl.login(ctx, l.User, ru.plan.password(l.User, l.Password))
		ru.serverErrorAfter("login as "+l.User, rep)
		l.Status = rep.Status
		ru.res.Facts.LoginsAfter = append(ru.res.Facts.LoginsAfter, l)
	}
	if ru.conn == nil {
		return nil
	}
	return ru.checkInvariants(ctx)
}

// measureTokensAfter uses every token, and its refresh token, once after
// the operation, also one that failed: what an old token does then is
// measured even when nothing is judged.
func (ru *run) measureTokensAfter(ctx context.Context) {
	sys := ru.plan.System
	for i := range ru.res.Tokens {
		f := &ru.res.Tokens[i]
		rep := ru.cl.profile(ctx, ru.tokens[f.Name])
		ru.serverErrorAfter("profile with token "+f.Name, rep)
		f.After = rep.Status
		if rep.Status == 200 {
			f.AfterAs = rep.field(sys.ProfileUserField)
		}
	}
	for i := range ru.res.Tokens {
		f := &ru.res.Tokens[i]
		if f.Refresh != nil {
			rep := ru.cl.refresh(ctx, ru.refresh[f.Name])
			ru.serverErrorAfter("refresh with token "+f.Name, rep)
			f.Refresh.After = rep.Status
		}
	}
}

// serverErrorAfter records a 5xx or a missing response of a measurement
// made after the operation.
func (ru *run) serverErrorAfter(what string, rep reply) {
	if rep.Err == nil && rep.Status < 500 {
		return
	}
	body := rep.Line
	if rep.Err != nil {
		body = rep.Err.Error()
	}
	ru.res.Facts.ServerErrors = append(ru.res.Facts.ServerErrors, results.ServerError{Source: results.SourceAfter, Name: what,
		AtMS: ru.res.Timeline.EndMS, Status: rep.Status, Body: body})
}

// loginsAfter is every login the plan's checks ask for after the
// operation, each once.
func loginsAfter(p *Plan) []results.LoginCheck {
	var out []results.LoginCheck
	for _, c := range p.Checks {
		if la, ok := c.Check.(loginsAfterCheck); ok {
			for _, l := range la.loginsAfter(p) {
				if !slices.Contains(out, l) {
					out = append(out, l)
				}
			}
		}
	}
	return out
}

// derive computes from the timeline what the checks and reports read: the
// window, the observed strategy of a running system, probe summaries and
// what the tokens saw in the window. It is a pure function.
func derive(p *Plan, res *results.Result) {
	ws, reinit := res.Phase(results.PhaseReinitCommitted)
	we, restored := res.Phase(results.PhaseRestoreCommitted)
	if p.Target == TargetHTTP {
		// A running system's strategy is its own setting: say what was observed.
		_, together := res.Phase(results.PhaseCommittedTogether)
		switch {
		case reinit:
			res.Strategy = results.TwoPhase
		case together:
			res.Strategy = results.Atomic
		default:
			res.Strategy = results.StrategyNotObserved
		}
	}
	f := &res.Facts
	switch {
	case p.Operation != results.Manual && res.Strategy == results.Atomic:
		// One transaction: the engine's reinit phase is not a commit.
		f.Window = results.WindowNone
	case reinit && restored:
		f.Window, f.WindowMS = results.WindowObserved, we-ws
	default:
		f.Window = results.WindowNotObserved
	}
	observed := f.Window == results.WindowObserved
	serverErrorsOfSamples(res)
	res.Probes = nil
	for _, pr := range p.Probes {
		res.Probes = append(res.Probes, summarize(pr, res.Timeline, observed, ws, we))
	}
	for i := range res.Tokens {
		t := &res.Tokens[i]
		t.During = nil
		if observed {
			t.During = statusesInWindow(p, res.Timeline, results.ProbeProfile, t.Name, ws, we)
		}
		if t.Refresh != nil {
			t.Refresh.During = nil
			if observed {
				t.Refresh.During = statusesInWindow(p, res.Timeline, results.ProbeRefresh, t.Name, ws, we)
			}
		}
	}
}

// serverErrorsOfSamples adds every sample that met a server error (5xx or
// no response), before, during and after the operation, to the facts.
func serverErrorsOfSamples(res *results.Result) {
	var kept []results.ServerError
	for _, e := range res.Facts.ServerErrors {
		if e.Source != results.SourceProbe {
			kept = append(kept, e)
		}
	}
	for _, s := range res.Timeline.Samples {
		if s.ServerFailed() {
			kept = append(kept, results.ServerError{Source: results.SourceProbe, Name: s.Probe, AtMS: s.AtMS, Status: s.Status, Body: s.Detail})
		}
	}
	slices.SortStableFunc(kept, func(a, b results.ServerError) int { return cmp.Compare(a.AtMS, b.AtMS) })
	res.Facts.ServerErrors = kept
}

// inside reports whether a sample was sent after ws and answered before we:
// only such a sample shows the state between the two commits.
func inside(s results.Sample, ws, we float64) bool { return s.AtMS >= ws && s.DoneMS() <= we }

// straddles reports whether a sample was in flight at ws or at we.
func straddles(s results.Sample, ws, we float64) bool {
	in := func(at float64) bool { return s.AtMS < at && s.DoneMS() > at }
	return in(ws) || in(we)
}

// statusesInWindow is the distinct statuses the probes of a kind on token
// saw wholly inside the window.
func statusesInWindow(p *Plan, tl results.Timeline, kind results.ProbeKind, token string, ws, we float64) []int {
	var seen []int
	for _, pr := range p.Probes {
		if k, target, _ := pr.Probe.describe(); k != kind || target != token {
			continue
		}
		for _, smp := range tl.Samples {
			if smp.Probe == pr.Name && inside(smp, ws, we) && !slices.Contains(seen, smp.Status) {
				seen = append(seen, smp.Status)
			}
		}
	}
	slices.Sort(seen)
	return seen
}

func summarize(p PlannedProbe, tl results.Timeline, hasWindow bool, ws, we float64) results.ProbeSummary {
	ps := results.ProbeSummary{Name: p.Name, IntervalMS: float64(p.Every.D().Microseconds()) / 1000}
	ps.Kind, ps.Target, ps.Password = p.Probe.describe()
	var cur *results.Window
	var last float64
	var took []float64
	for _, smp := range tl.Samples {
		if smp.Probe != p.Name {
			continue
		}
		last = smp.AtMS
		took = append(took, smp.TookMS)
		inOp := smp.AtMS >= 0 && smp.AtMS <= tl.EndMS
		if inOp {
			ps.Samples++
		}
		switch {
		case !hasWindow:
		case inside(smp, ws, we) && smp.OK:
			ps.InWindowOK++
		case inside(smp, ws, we):
			ps.InWindowBad++
		case straddles(smp, ws, we):
			ps.Straddling++
		}
		if !smp.OK {
			if inOp {
				ps.Failures++
			}
			if cur == nil && inOp {
				cur = &results.Window{StartMS: smp.AtMS}
			}
			if cur != nil {
				cur.Failures++
				cur.EndMS = smp.AtMS
				if len(cur.Statuses) == 0 || cur.Statuses[len(cur.Statuses)-1] != smp.Status {
					cur.Statuses = append(cur.Statuses, smp.Status)
				}
			}
			continue
		}
		if cur != nil {
			cur.EndMS = smp.AtMS // the first success closes the window
			cur.LengthMS = cur.EndMS - cur.StartMS
			ps.Windows = append(ps.Windows, *cur)
			cur = nil
		}
	}
	if cur != nil { // never recovered while we watched
		cur.EndMS = last
		cur.LengthMS = cur.EndMS - cur.StartMS
		cur.Open = true
		ps.Windows = append(ps.Windows, *cur)
	}
	for _, w := range ps.Windows {
		ps.LongestMS = max(ps.LongestMS, w.LengthMS)
	}
	if len(took) > 0 {
		slices.Sort(took)
		ps.MedianMS, ps.MaxMS = took[len(took)/2], took[len(took)-1]
	}
	ps.LatencyBefore, ps.LatencyDuring, ps.LatencyAfter = latencies(p.Name, tl)
	return ps
}

// latencies condenses a probe's request times before, during and after the
// operation (by when each request was sent).
func latencies(probe string, tl results.Timeline) (before, during, after results.Latency) {
	var b, d, a []float64
	for _, s := range tl.Samples {
		switch {
		case s.Probe != probe:
		case s.AtMS < 0:
			b = append(b, s.TookMS)
		case s.AtMS <= tl.EndMS:
			d = append(d, s.TookMS)
		default:
			a = append(a, s.TookMS)
		}
	}
	return results.LatencyOf(b), results.LatencyOf(d), results.LatencyOf(a)
}

func (ru *run) addInvariant(name results.Invariant, ok bool, format string, args ...any) {
	ru.res.Invariants = append(ru.res.Invariants, results.InvariantCheck{Name: name, OK: ok, Evidence: fmt.Sprintf(format, args...)})
}

func (ru *run) checkInvariants(ctx context.Context) error {
	cat, err := pgcatalog.Load(ctx, ru.conn, "")
	if err != nil {
		return err
	}
	if err := ru.checkForeignKeys(ctx, cat); err != nil {
		return err
	}
	if err := ru.checkSequences(ctx, cat); err != nil {
		return err
	}
	hashes, err := ru.checkIDs(ctx)
	if err != nil {
		return err
	}
	if c := ru.plan.Call; c == nil || c.BackupFile == "" {
		// Counts and hashes of the state before say what the backup holds;
		// of an uploaded backup they say nothing.
		if err := ru.checkBackupMatches(ctx, cat, hashes); err != nil {
			return err
		}
	}
	return ru.overwrittenInWindow(ctx)
}

func (ru *run) checkForeignKeys(ctx context.Context, cat *pgcatalog.Catalog) error {
	fks, err := integrity.CheckForeignKeys(ctx, ru.conn, cat, nil)
	if err != nil {
		return err
	}
	bad := integrity.Broken(fks)
	if len(bad) == 0 {
		ru.addInvariant(results.ForeignKeys, true, "%d foreign keys, 0 orphan rows (each scanned, NOT VALID ones included)", len(fks))
		return nil
	}
	var parts []string
	for _, b := range bad {
		parts = append(parts, fmt.Sprintf("%s.%s → %s: %d orphan rows (e.g. %s)", b.Table, strings.Join(b.Columns, ","), b.RefTable, b.Count, b.Example))
	}
	ru.addInvariant(results.ForeignKeys, false, "%d of %d foreign keys have orphans: %s", len(bad), len(fks), strings.Join(parts, "; "))
	return nil
}

func (ru *run) checkSequences(ctx context.Context, cat *pgcatalog.Catalog) error {
	seqs, err := integrity.CheckSequences(ctx, ru.conn, cat, nil)
	if err != nil {
		return err
	}
	var behind []string
	for _, s := range seqs {
		if !s.OK {
			behind = append(behind, fmt.Sprintf("%s.%s: next %d ≤ max %d", s.Table, s.Column, s.Next, *s.Max))
		}
	}
	if len(behind) > 0 {
		ru.addInvariant(results.Sequences, false, "%d of %d sequences behind max(id): %s", len(behind), len(seqs), strings.Join(behind, "; "))
	} else {
		ru.addInvariant(results.Sequences, true, "%d sequences, all ahead of max(id)", len(seqs))
	}
	return nil
}

// checkIDs compares username → id with the state before; it returns the
// password hashes after, for the backup comparison.
func (ru *run) checkIDs(ctx context.Context) (map[string]string, error) {
	ids, hashes, err := users(ctx, ru.conn, ru.plan.System)
	if err != nil {
		return nil, err
	}
	ru.res.Facts.AdminIDAfter = ids[ru.plan.System.Admin]
	var moved []string
	for u, id := range ru.before.ids {
		if now, ok := ids[u]; !ok {
			moved = append(moved, fmt.Sprintf("%s missing", u))
		} else if now != id {
			moved = append(moved, fmt.Sprintf("%s %d → %d", u, id, now))
		}
	}
	slices.Sort(moved)
	if len(moved) > 0 {
		ru.addInvariant(results.IDsUnchanged, false, "username → id changed: %s", strings.Join(moved, ", "))
	} else {
		ru.addInvariant(results.IDsUnchanged, true, "all %d users kept their ids", len(ru.before.ids))
	}
	return hashes, nil
}

func (ru *run) checkBackupMatches(ctx context.Context, cat *pgcatalog.Catalog, hashes map[string]string) error {
	sums, err := integrity.TableChecksums(ctx, ru.conn, cat, edms.Protected())
	if err != nil {
		return err
	}
	var diff, changed []string
	compared := 0
	for _, t := range sortedKeys(ru.before.sums) {
		if ru.before.leftOut[t] {
			continue // not in the backup: nothing to compare with
		}
		compared++
		b, a := ru.before.sums[t], sums[t]
		if a.Rows == b.Rows {
			continue
		}
		ours, err := ru.addedAfterBackup(ctx, cat, t)
		if err != nil {
			return err
		}
		if ours > 0 {
			ru.res.Facts.WrittenByRehearsal = append(ru.res.Facts.WrittenByRehearsal, results.TableRows{Table: t, Rows: ours})
		}
		if a.Rows-ours != b.Rows {
			diff = append(diff, fmt.Sprintf("%s %d → %d rows", t, b.Rows, a.Rows-ours))
		}
	}
	for _, u := range sortedKeys(ru.before.hashes) {
		if hashes[u] != ru.before.hashes[u] {
			changed = append(changed, u)
		}
	}
	ours := ""
	for _, w := range ru.res.Facts.WrittenByRehearsal {
		ours += fmt.Sprintf("; %s: %d rows added after the backup (not in it), not counted", w.Table, w.Rows)
	}
	if len(diff) > 0 {
		ru.addInvariant(results.CountsMatchBackup, false, "row counts differ from the backup: %s%s", strings.Join(diff, ", "), ours)
	} else {
		ru.addInvariant(results.CountsMatchBackup, true, "%d tables of the backup, same row counts%s", compared, ours)
	}
	if len(changed) > 0 {
		ru.addInvariant(results.HashesMatchBackup, false, "password hashes differ from the backup for: %s", strings.Join(changed, ", "))
	} else {
		ru.addInvariant(results.HashesMatchBackup, true, "all %d password hashes equal the backup's", len(ru.before.hashes))
	}
	return nil
}

// addedAfterBackup counts the rows of table the backup did not hold. With
// an integer primary key that is every row above the largest key the table
// had at the backup: the restore brings back the backup's rows under their
// own keys, so a row in that range that is not the backup's is a mismatch,
// whoever wrote it or wrote it last. (Who wrote a row last says nothing of
// where it came from: the restore rewrites the backup's rows, inside a
// savepoint of its own transaction under Django's loaddata, and the reinit
// updates rows the rehearsal's logins added.) Other tables fall back to
// the transactions that wrote them.
func (ru *run) addedAfterBackup(ctx context.Context, cat *pgcatalog.Catalog, table string) (int64, error) {
	top, ok := ru.before.maxKeys[table]
	if !ok {
		return ru.writtenByRehearsal(ctx, cat, table)
	}
	pk := pgcatalog.Ident(cat.Tables[table].PK())
	var n int64
	err := ru.conn.QueryRow(ctx, `SELECT count(*) FROM `+cat.QualifiedIdent(table)+` WHERE `+pk+` > $1`, top).Scan(&n)
	return n, err
}

// writtenByRehearsal counts the rows of table written after the backup by
// transactions other than the operation's. Only a running system watched
// through its trigger names the operation's transactions; elsewhere
// nothing is attributed. PostgreSQL's xmin says which transaction wrote a
// row; age() compares it with the backup's moment across wraparound.
func (ru *run) writtenByRehearsal(ctx context.Context, cat *pgcatalog.Catalog, table string) (int64, error) {
	if ru.watchMode() != watchTrigger || len(ru.win.opTxs) == 0 {
		return 0, nil
	}
	var xids []int64
	for _, tx := range ru.win.opTxs {
		xids = append(xids, tx%(1<<32))
	}
	var n int64
	q := `SELECT count(*) FROM ` + cat.QualifiedIdent(table) + ` WHERE age(xmin) < age(($1::bigint % 4294967296)::text::xid) AND NOT (xmin::text::bigint = ANY($2))`
	err := ru.conn.QueryRow(ctx, q, ru.before.txid, xids).Scan(&n)
	return n, err
}

// overwrittenInWindow records the rows of users created in the window that
// the restore overwrote or deleted.
func (ru *run) overwrittenInWindow(ctx context.Context) error {
	for _, c := range ru.win.created {
		var name string
		err := ru.conn.QueryRow(ctx, `SELECT COALESCE((SELECT `+ru.plan.System.loginColumn()+` FROM `+ru.plan.System.usersTable()+` WHERE id = $1), '')`, c.id).Scan(&name)
		if err != nil {
			return err
		}
		switch name {
		case c.username:
		case "":
			ru.res.Facts.PKReuse = append(ru.res.Facts.PKReuse, results.PKReuse{Kind: results.RowDeleted, User: c.username, ID: c.id})
		default:
			ru.res.Facts.PKReuse = append(ru.res.Facts.PKReuse, results.PKReuse{Kind: results.RowOverwritten, User: c.username, Other: name, ID: c.id})
		}
	}
	return nil
}

func msStr(ms float64) string {
	return (time.Duration(ms * float64(time.Millisecond))).Round(100 * time.Microsecond).String()
}

// excerpt renders the phases and a probe's windows: the part of the timeline
// a reader needs to see why an expectation passed or failed.
func excerpt(tl results.Timeline, ps results.ProbeSummary) string {
	var b strings.Builder
	for _, p := range tl.Phases {
		fmt.Fprintf(&b, "T%+9.1fms  %s\n", p.AtMS, p.Text())
	}
	if len(ps.Windows) == 0 {
		fmt.Fprintf(&b, "probe %s: no failed sample (%d samples)\n", ps.Name, ps.Samples)
	}
	for _, w := range ps.Windows {
		fmt.Fprintf(&b, "probe %s failed from T%+.1fms to T%+.1fms (%s, %d samples, statuses %v)\n", ps.Name, w.StartMS, w.EndMS, msStr(w.LengthMS), w.Failures, w.Statuses)
	}
	var lastBad *results.Sample
	for i := range tl.Samples {
		if tl.Samples[i].Probe == ps.Name && !tl.Samples[i].OK {
			lastBad = &tl.Samples[i]
		}
	}
	if lastBad != nil {
		fmt.Fprintf(&b, "last failed sample: T%+.1fms status %d %s\n", lastBad.AtMS, lastBad.Status, lastBad.Detail)
	}
	return strings.TrimRight(b.String(), "\n")
}
