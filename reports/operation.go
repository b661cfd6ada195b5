package reports

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// An operation that did not happen is not measured, and one that failed
// after its reinit committed left the system broken: both are said from
// the typed outcome, the call's status and the phases, never from the
// harness's sentence (Result.Error), which is only quoted.

// callName is what ran the operation, in words.
func callName(r *results.Result) string {
	if r.Operation == results.Manual {
		return "the manual restore"
	}
	return "the restore call"
}

// callAnswer is what the call got: "400 Invalid confirmation", "no response: EOF".
func callAnswer(r *results.Result, f fmtr) string {
	return status(r.Facts.OperationStatus) + f.quoted(pick(r.Facts.OperationStatus == 0, ": ", " "), r.Facts.OperationBody)
}

// callResult is the call's answer with its verb: "answered 500 ...", "got
// no response: EOF".
func callResult(r *results.Result, f fmtr) string {
	return pick(r.Facts.OperationStatus == 0, "got ", "answered ") + callAnswer(r, f)
}

// firstLine is the first non-empty line of s, trimmed.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// notPerformedText says why nothing was measured: "the restore call was
// refused: 400 Invalid confirmation".
func notPerformedText(r *results.Result, f fmtr) string {
	call := callName(r)
	switch r.Facts.Outcome {
	case results.OperationRefused:
		return call + " was refused: " + callAnswer(r, f)
	case results.OperationNoResponse:
		return call + " " + callResult(r, f)
	}
	return call + " " + callResult(r, f) + ", but " + missingCommits(r)
}

// missingCommits names the commits the harness did not see.
func missingCommits(r *results.Result) string {
	_, reinit := r.Phase(results.PhaseReinitCommitted)
	_, restore := r.Phase(results.PhaseRestoreCommitted)
	_, together := r.Phase(results.PhaseCommittedTogether)
	switch {
	case reinit && !restore:
		return "the restore's commit was not observed after the reinit committed"
	case !reinit && !restore && !together:
		return "neither the reinit's nor the restore's commit was observed"
	case !reinit && restore:
		return "the reinit's commit was not observed"
	}
	return "a commit that had to be seen was not observed"
}

// usersLeft says how many users there were before and after: "users 7 → 1".
func usersLeft(r *results.Result) string {
	if r.Facts.UsersAfter == nil {
		return fmt.Sprintf("users %d → not observed", r.Facts.UsersBefore)
	}
	return fmt.Sprintf("users %d → %d", r.Facts.UsersBefore, *r.Facts.UsersAfter)
}

// failedAfterReinitText leads the answer of an operation that failed after
// its reinit committed, with what the system was left with.
func failedAfterReinitText(r *results.Result, f fmtr) string {
	return fmt.Sprintf("Yes, and worse: the restore failed after the reinit committed (%s %s), leaving the system with %s",
		callName(r), callResult(r, f), usersLeft(r))
}

// notPerformedAnswer is the whole answer for an operation that did not
// happen.
func notPerformedAnswer(r *results.Result, f fmtr) string {
	parts := []string{"Not measured: " + notPerformedText(r, f)}
	if r.Facts.UsersAfter != nil {
		parts = append(parts, usersLeft(r))
	}
	if s := serverErrorsText(r, f); s != "" {
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ") + "."
}

// serverErrorsText is the answer's line on server errors: "the server
// failed: 2 requests got 500, first at T+12.3 ms: <body>"; "" without any.
func serverErrorsText(r *results.Result, f fmtr) string {
	errs := r.Facts.ServerErrors
	if len(errs) == 0 {
		return ""
	}
	first := errs[0]
	var codes []int
	for _, e := range errs {
		if e.AtMS < first.AtMS {
			first = e
		}
		if !slices.Contains(codes, e.Status) {
			codes = append(codes, e.Status)
		}
	}
	slices.Sort(codes)
	words := make([]string, len(codes))
	for i, c := range codes {
		words[i] = status(c)
	}
	return fmt.Sprintf("the server failed: %s %s got %s, first at %s", f.n(len(errs)), pick(len(errs) == 1, "request", "requests"),
		strings.Join(words, " or "), f.at(first.AtMS)) + f.quoted(": ", first.Body)
}

// sourceWords says which request met a server error.
func sourceWords(e results.ServerError) string {
	switch e.Source {
	case results.SourceProbe:
		return "probe " + e.Name
	case results.SourceOperation:
		return "the operation " + e.Name
	case results.SourceWindowAction:
		return "action in the window: " + e.Name
	case results.SourceAfter:
		return "measurement after the operation: " + e.Name
	}
	return e.Name
}
