package harness

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rehearse-dev/rehearse/edms"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
	"github.com/rehearse-dev/rehearse/pg/integrity"
	"github.com/rehearse-dev/rehearse/restore"
)

// evaluate measures the state after the operation and judges every expectation.
func (ru *run) evaluate(ctx context.Context) error {
	res := ru.res
	tl := res.Timeline
	winStart, errA := tl.phaseAt(restore.PhaseReinitCommitted)
	winEnd, errB := tl.phaseAt(restore.PhaseRestoreCommitted)
	hasWindow := errA == nil && errB == nil && ru.s.Strategy != "atomic" || (ru.s.Operation.Manual != nil && errA == nil && errB == nil)
	if ru.s.Target == TargetHTTP {
		// The target's strategy is its own setting: say what was observed.
		hasWindow = errA == nil && errB == nil
		switch {
		case errA == nil: // the reinit committed on its own
			res.Strategy = "two-phase"
		case ru.conn != nil:
			res.Strategy = "atomic"
		default:
			res.Strategy = "unknown"
		}
	}
	if hasWindow {
		res.Facts.WindowMS = winEnd - winStart
	}
	for _, p := range ru.s.Probes {
		res.Probes = append(res.Probes, summarize(p, tl, hasWindow, winStart, winEnd))
	}
	// Token fates after the operation.
	for i := range res.Tokens {
		f := &res.Tokens[i]
		rep := ru.cl.profile(ctx, ru.tokens[f.Name])
		f.After = rep.Status
		if rep.Status == 200 {
			f.AfterAs = rep.field(ru.profileUserField)
		}
		seen := map[int]bool{}
		for _, p := range ru.s.Probes {
			if p.Profile == nil || p.Profile.Token != f.Name || !hasWindow {
				continue
			}
			for _, smp := range tl.Samples {
				if smp.Probe == p.Name && smp.AtMS >= winStart && smp.AtMS <= winEnd && !seen[smp.Status] {
					seen[smp.Status] = true
					f.During = append(f.During, smp.Status)
				}
			}
		}
		sort.Ints(f.During)
	}
	if ru.conn != nil {
		if err := ru.checkInvariants(ctx); err != nil {
			return err
		}
	}
	if c := ru.s.Operation.RestoreFromFile; c != nil {
		// Implicit: the call itself must succeed, or every other verdict is moot.
		o := Outcome{Pos: c.Pos, Kind: "operation", Subject: "restore_from_file response", Expected: "200", Measured: fmt.Sprint(res.Facts.OperationStatus), Pass: res.Facts.OperationStatus == 200}
		if !o.Pass {
			o.Measured += ": " + res.Facts.OperationBody
		}
		res.Expectations = append(res.Expectations, o)
	}
	for _, e := range ru.s.Expect {
		res.Expectations = append(res.Expectations, ru.judge(ctx, e, hasWindow, winStart, winEnd))
	}
	return nil
}

func summarize(p Probe, tl Timeline, hasWindow bool, ws, we float64) ProbeSummary {
	ps := ProbeSummary{Name: p.Name, IntervalMS: float64(p.Every.D().Microseconds()) / 1000}
	if p.Login != nil {
		ps.Kind, ps.Target, ps.Password = "login", p.Login.User, p.Login.Password
	} else {
		ps.Kind, ps.Target = "profile", p.Profile.Token
	}
	var cur *Window
	var last float64
	for _, smp := range tl.Samples {
		if smp.Probe != p.Name {
			continue
		}
		last = smp.AtMS
		inOp := smp.AtMS >= 0 && smp.AtMS <= tl.EndMS
		if inOp {
			ps.Samples++
		}
		if hasWindow && smp.AtMS >= ws && smp.AtMS <= we {
			if smp.OK {
				ps.InWindowOK++
			} else {
				ps.InWindowBad++
			}
		}
		if !smp.OK {
			if inOp {
				ps.Failures++
			}
			if cur == nil && inOp {
				cur = &Window{StartMS: smp.AtMS}
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
	return ps
}

func (ru *run) checkInvariants(ctx context.Context) error {
	res := ru.res
	cat, err := pgcatalog.Load(ctx, ru.conn, "")
	if err != nil {
		return err
	}
	add := func(name string, ok bool, format string, args ...any) {
		res.Invariants = append(res.Invariants, InvariantCheck{Name: name, OK: ok, Evidence: fmt.Sprintf(format, args...)})
	}
	fks, err := integrity.CheckForeignKeys(ctx, ru.conn, cat, nil)
	if err != nil {
		return err
	}
	if bad := integrity.Broken(fks); len(bad) > 0 {
		var parts []string
		for _, b := range bad {
			parts = append(parts, fmt.Sprintf("%s.%s → %s: %d orphan rows (e.g. %s)", b.Table, strings.Join(b.Columns, ","), b.RefTable, b.Count, b.Example))
		}
		add("foreign_keys", false, "%d of %d foreign keys have orphans: %s", len(bad), len(fks), strings.Join(parts, "; "))
	} else {
		add("foreign_keys", true, "%d foreign keys, 0 orphan rows (each scanned, NOT VALID ones included)", len(fks))
	}
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
		add("sequences", false, "%d of %d sequences behind max(id): %s", len(behind), len(seqs), strings.Join(behind, "; "))
	} else {
		add("sequences", true, "%d sequences, all ahead of max(id)", len(seqs))
	}
	ids, hashes, err := users(ctx, ru.conn, ru.usersTable)
	if err != nil {
		return err
	}
	res.Facts.AdminIDAfter = ids[ru.adminUser]
	var moved, changed []string
	for u, id := range ru.idsBefore {
		if now, ok := ids[u]; !ok {
			moved = append(moved, fmt.Sprintf("%s missing", u))
		} else if now != id {
			moved = append(moved, fmt.Sprintf("%s %d → %d", u, id, now))
		}
		if hashes[u] != ru.hashBefore[u] {
			changed = append(changed, u)
		}
	}
	sort.Strings(moved)
	sort.Strings(changed)
	if len(moved) > 0 {
		add("ids_unchanged", false, "username → id changed: %s", strings.Join(moved, ", "))
	} else {
		add("ids_unchanged", true, "all %d users kept their ids", len(ru.idsBefore))
	}
	sums, err := integrity.TableChecksums(ctx, ru.conn, cat, edms.Protected())
	if err != nil {
		return err
	}
	if c := ru.s.Operation.RestoreFromFile; c != nil && c.BackupFile != "" {
		// Another backup was uploaded: counts and hashes of the state before
		// say nothing about what it should restore.
		return ru.overwrittenInWindow(ctx)
	}
	var diff []string
	for _, t := range sortedKeys(ru.sumsBefore) {
		b, a := ru.sumsBefore[t], sums[t]
		if a.Rows != b.Rows {
			diff = append(diff, fmt.Sprintf("%s %d → %d rows", t, b.Rows, a.Rows))
		}
	}
	if len(diff) > 0 {
		add("counts_match_backup", false, "row counts differ from the backup: %s", strings.Join(diff, ", "))
	} else {
		add("counts_match_backup", true, "%d tables, same row counts as the backup", len(ru.sumsBefore))
	}
	if len(changed) > 0 {
		add("hashes_match_backup", false, "password hashes differ from the backup for: %s", strings.Join(changed, ", "))
	} else {
		add("hashes_match_backup", true, "all %d password hashes equal the backup's", len(ru.hashBefore))
	}
	return ru.overwrittenInWindow(ctx)
}

// overwrittenInWindow records the rows of users created in the window that
// the restore overwrote or deleted.
func (ru *run) overwrittenInWindow(ctx context.Context) error {
	res := ru.res
	for _, c := range ru.created {
		var name string
		err := ru.conn.QueryRow(ctx, `SELECT COALESCE((SELECT username FROM `+ru.usersTable+` WHERE id = $1), '')`, c.id).Scan(&name)
		if err != nil {
			return err
		}
		if name != c.username {
			what := fmt.Sprintf("the restore deleted %s's row (id %d)", c.username, c.id)
			if name != "" {
				what = fmt.Sprintf("the restore overwrote %s's row (id %d) with %s's", c.username, c.id, name)
			}
			res.Facts.PKReuse = append(res.Facts.PKReuse, what+": the account created in the window is lost")
		}
	}
	return nil
}

func (ru *run) invariant(name string) InvariantCheck {
	for _, c := range ru.res.Invariants {
		if c.Name == name {
			return c
		}
	}
	return InvariantCheck{Name: name, Evidence: "not measured"}
}

func msStr(ms float64) string {
	return (time.Duration(ms * float64(time.Millisecond))).Round(100 * time.Microsecond).String()
}

// judge evaluates one expectation.
func (ru *run) judge(ctx context.Context, e Expectation, hasWindow bool, ws, we float64) Outcome {
	o := Outcome{Pos: e.Pos}
	tl := ru.res.Timeline
	switch {
	case e.Profile != nil:
		o.Kind, o.Subject = "profile", "token "+e.Profile.Token+" on profile after the operation"
		o.Expected = fmt.Sprint(e.Profile.Status)
		for _, f := range ru.res.Tokens {
			if f.Name == e.Profile.Token {
				o.Measured = fmt.Sprint(f.After)
				if f.AfterAs != "" {
					o.Measured += " (authenticated as " + f.AfterAs + ")"
				}
				o.Pass = f.After == e.Profile.Status
				o.Excerpt = fmt.Sprintf("token %s (%s, %s): before %d, during %v, after %d", f.Name, f.User, f.Fingerprint, f.Before, f.During, f.After)
			}
		}
	case e.Login != nil:
		users := []string{e.Login.User}
		if e.Login.User == "all" {
			users = nil
			for _, u := range ru.fx.Users {
				users = append(users, u.Username)
			}
		}
		o.Kind, o.Subject = "login", fmt.Sprintf("login as %s with the %s password after the operation", e.Login.User, e.Login.Password)
		o.Expected = fmt.Sprint(e.Login.Status)
		o.Pass = true
		var wrong []string
		for _, u := range users {
			rep := ru.cl.login(ctx, u, ru.password(u, e.Login.Password))
			if rep.Status != e.Login.Status {
				o.Pass = false
				wrong = append(wrong, fmt.Sprintf("%s: %d", u, rep.Status))
			}
		}
		if o.Pass {
			o.Measured = fmt.Sprintf("%d for %d user(s)", e.Login.Status, len(users))
		} else {
			o.Measured = strings.Join(wrong, ", ")
		}
	case e.Window != nil:
		ps := ru.summary(e.Window.Probe)
		o.Kind, o.Subject = "window", "longest failing stretch of probe "+e.Window.Probe
		o.Expected = fmt.Sprintf("≤ %s", e.Window.Max.D())
		if e.Window.Min > 0 {
			o.Expected = fmt.Sprintf("between %s and %s", e.Window.Min.D(), e.Window.Max.D())
		}
		longest := time.Duration(ps.LongestMS * float64(time.Millisecond))
		o.Pass = longest <= e.Window.Max.D() && longest >= e.Window.Min.D()
		if e.Window.Max == 0 && e.Window.Min == 0 {
			o.Pass = ps.Failures == 0
		}
		o.Measured = fmt.Sprintf("%s (%d of %d samples failed)", msStr(ps.LongestMS), ps.Failures, ps.Samples)
		if openWindow(ps) {
			// An outage still going on when sampling stopped has no length
			// to bound: it may never end.
			o.Pass = false
			o.Measured = fmt.Sprintf("at least %s and still failing when sampling stopped (%d of %d samples failed)", msStr(ps.LongestMS), ps.Failures, ps.Samples)
		}
		o.Excerpt = excerpt(tl, ps)
	case e.Probe != nil:
		ps := ru.summary(e.Probe.Name)
		o.Kind, o.Subject = "probe", "whether probe "+e.Probe.Name+" ever failed during the operation"
		o.Expected = fmt.Sprintf("ever_failed: %t", e.Probe.EverFailed)
		o.Measured = fmt.Sprintf("ever_failed: %t (%d of %d samples failed)", ps.Failures > 0, ps.Failures, ps.Samples)
		o.Pass = (ps.Failures > 0) == e.Probe.EverFailed
		o.Excerpt = excerpt(tl, ps)
	case e.DuringWindow != nil:
		ps := ru.summary(e.DuringWindow.Probe)
		o.Kind, o.Subject = "during_window", "probe "+e.DuringWindow.Probe+" between reinit and restore commits"
		o.Expected = fmt.Sprintf("succeeded: %t", e.DuringWindow.Succeeded)
		if !hasWindow {
			o.Measured = "no window was observed (no reinit/restore phases)"
			break
		}
		o.Measured = fmt.Sprintf("succeeded: %t (%d ok, %d failed in the %s window)", ps.InWindowOK > 0, ps.InWindowOK, ps.InWindowBad, msStr(we-ws))
		o.Pass = (ps.InWindowOK > 0) == e.DuringWindow.Succeeded
		o.Excerpt = excerpt(tl, ps)
	case e.Invariant != "":
		c := ru.invariant(e.Invariant)
		o.Kind, o.Subject = "invariant", e.Invariant
		o.Expected, o.Measured, o.Pass = "holds", c.Evidence, c.OK
	case e.AdminID != nil:
		f := ru.res.Facts
		o.Kind, o.Subject = "admin_id", "admin's id through the reinit"
		o.Expected = fmt.Sprintf("unchanged: %t", e.AdminID.Unchanged)
		after := f.AdminIDAfterReinit
		if after == 0 {
			after = f.AdminIDAfter // atomic: the in-between state is never visible
		}
		o.Measured = fmt.Sprintf("id %d before, %d after the reinit, %d at the end", f.AdminIDBefore, after, f.AdminIDAfter)
		o.Pass = (after == f.AdminIDBefore) == e.AdminID.Unchanged
	case e.PKReuse != nil:
		f := ru.res.Facts
		o.Kind, o.Subject = "pk_reuse", "primary-key reuse hazard"
		o.Expected = fmt.Sprintf("detected: %t", e.PKReuse.Detected)
		o.Measured = fmt.Sprintf("detected: %t", len(f.PKReuse) > 0)
		if len(f.PKReuse) > 0 {
			o.Measured += ": " + strings.Join(f.PKReuse, "; ")
		}
		o.Pass = (len(f.PKReuse) > 0) == e.PKReuse.Detected
	}
	return o
}

func openWindow(ps ProbeSummary) bool {
	for _, w := range ps.Windows {
		if w.Open {
			return true
		}
	}
	return false
}

func (ru *run) summary(probe string) ProbeSummary {
	for _, p := range ru.res.Probes {
		if p.Name == probe {
			return p
		}
	}
	return ProbeSummary{Name: probe}
}

// excerpt renders the phases and a probe's windows: the part of the timeline
// a reader needs to see why an expectation passed or failed.
func excerpt(tl Timeline, ps ProbeSummary) string {
	var b strings.Builder
	for _, p := range tl.Phases {
		fmt.Fprintf(&b, "T%+9.1fms  %s\n", p.AtMS, p.Name)
	}
	if len(ps.Windows) == 0 {
		fmt.Fprintf(&b, "probe %s: no failed sample (%d samples)\n", ps.Name, ps.Samples)
	}
	for _, w := range ps.Windows {
		fmt.Fprintf(&b, "probe %s failed from T%+.1fms to T%+.1fms (%s, %d samples, statuses %v)\n", ps.Name, w.StartMS, w.EndMS, msStr(w.LengthMS), w.Failures, w.Statuses)
	}
	var lastBad *Sample
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
