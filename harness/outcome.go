package harness

import (
	"context"
	"fmt"

	"github.com/rehearse-dev/rehearse/results"
)

// watchMode is how the runner saw the system's commits.
type watchMode int

const (
	watchHooks   watchMode = iota // the embedded system and the manual path stamp their own phases
	watchTrigger                  // a running system's database, through a trigger: every commit is heard
	watchPolling                  // a running system's database, polled: one transaction's reinit and restore go unseen
	watchNone                     // a running system without its database: no commit can be seen
)

// operationOutcome decides from the plan and the typed timeline whether the
// operation really happened: only then are its checks judged.
func operationOutcome(p *Plan, res *results.Result, watch watchMode) results.OperationOutcome {
	_, reinit := res.Phase(results.PhaseReinitCommitted)
	_, restored := res.Phase(results.PhaseRestoreCommitted)
	_, together := res.Phase(results.PhaseCommittedTogether)
	if p.Call != nil {
		switch st := res.Facts.OperationStatus; {
		case (st == 0 || st < 200 || st > 299) && reinit:
			return results.OperationFailedAfterReinit
		case st == 0:
			return results.OperationNoResponse
		case st < 200 || st > 299:
			return results.OperationRefused
		}
	}
	withReinit := p.Call == nil || p.Call.WithReinit
	var seen bool
	switch watch {
	case watchNone:
		return results.OperationCompleted // nothing can be seen: the strategy is "not observed"
	case watchPolling:
		seen = !reinit || restored
	case watchTrigger:
		seen = !withReinit || (reinit && restored) || together
	default:
		twoPhase := withReinit && (p.Operation == results.Manual || p.Strategy != results.Atomic)
		seen = restored && (reinit || !twoPhase)
	}
	if !seen {
		return results.OperationCommitsNotObserved
	}
	return results.OperationCompleted
}

// operationError says why an operation that did not complete cannot be
// judged, with the call's answer first.
func operationError(res *results.Result) error {
	f := res.Facts
	answer := fmt.Sprintf("%d %s", f.OperationStatus, f.OperationBody)
	if f.OperationStatus == 0 {
		answer = "no response (" + f.OperationBody + ")"
	}
	switch f.Outcome {
	case results.OperationRefused:
		if f.OperationStatus >= 500 {
			return fmt.Errorf("not measured: the restore call failed: %s; no reinit was seen to commit, so nothing was judged", answer)
		}
		return fmt.Errorf("not measured: the restore call was refused: %s; it changed nothing that was observed, so nothing was judged", answer)
	case results.OperationNoResponse:
		return fmt.Errorf("not measured: the restore call got %s; nothing was judged", answer)
	case results.OperationFailedAfterReinit:
		left := ""
		if f.UsersAfter != nil {
			left = fmt.Sprintf("; the system was left with %d of %d users", *f.UsersAfter, f.UsersBefore)
		}
		if res.Operation == results.Manual {
			return fmt.Errorf("the restore failed after the reinit committed%s; nothing was judged", left)
		}
		return fmt.Errorf("the restore call failed after the reinit committed: %s%s; nothing was judged", answer, left)
	case results.OperationCommitsNotObserved:
		return fmt.Errorf("not measured: the restore call answered %s, but the reinit and restore commits it should have made were not seen in the database; nothing was judged", answer)
	}
	return nil
}

// countUsersAfter measures what a failed operation left behind.
func (ru *run) countUsersAfter(ctx context.Context) {
	if ru.conn == nil {
		return
	}
	var n int
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if ru.conn.QueryRow(ctx, `SELECT count(*) FROM `+ru.plan.System.usersTable()).Scan(&n) == nil {
		ru.res.Facts.UsersAfter = &n
	}
}

// watchMode says how this run saw the system's commits.
func (ru *run) watchMode() watchMode {
	switch {
	case ru.plan.Target != TargetHTTP:
		return watchHooks
	case ru.win.dsn == "":
		return watchNone
	case ru.win.polling.Load():
		return watchPolling
	}
	return watchTrigger
}
