package reports

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/results"
)

// textFields are the fields of the results written for people. Reports
// quote them and never decide anything by reading them.
var textFields = map[string]bool{
	"Result.Description": true, "Result.Error": true,
	"Outcome.Subject": true, "Outcome.Expected": true, "Outcome.Measured": true, "Outcome.Excerpt": true,
	"InvariantCheck.Evidence": true, "Sample.Detail": true, "PhaseMark.Note": true, "Facts.OperationBody": true,
	"ServerError.Body": true, "Result.AccountsFrom": true, "LeftOut.Detail": true, "AccountsRemoval.Error": true,
}

// nameFields are the plain strings that identify something (a scenario, a
// user, a probe, a token): reports may compare them with one another.
var nameFields = map[string]bool{
	"Result.Name": true, "Result.File": true, "Result.Fixture": true, "Result.Target": true, "Result.Provider": true,
	"Result.Defects": true, "Result.Secrets": true, "Pos.File": true, "Outcome.Kind": true,
	"Sample.Probe": true, "Sample.AuthAs": true, "ProbeSummary.Name": true, "ProbeSummary.Target": true,
	"TokenFate.Name": true, "TokenFate.User": true, "TokenFate.Fingerprint": true, "TokenFate.AfterAs": true,
	"LoginCheck.User": true, "PKReuse.User": true, "PKReuse.Other": true, "PKReuse.Token": true, "Facts.Admin": true,
	"ServerError.Name": true, "RefreshFate.Fingerprint": true, "LeftOut.Table": true, "LeftOut.Model": true, "TableRows.Table": true,
	"AccountsFacts.Fixture": true, "AccountsFacts.File": true, "AccountsFacts.Created": true, "AccountsFacts.Staff": true, "ModelRows.Model": true,
	// A reason code of the backup engine, shown in words.
	"LeftOut.Reason": true,
}

// rewriteTexts replaces every text field below v with fn(its value) and
// returns how many it replaced; a plain string field that is neither text
// nor a name is an error, so a new field must be classified here first.
func rewriteTexts(t *testing.T, v reflect.Value, fn func(string) string) int {
	t.Helper()
	n := 0
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			n += rewriteTexts(t, v.Elem(), fn)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			n += rewriteTexts(t, v.Index(i), fn)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			key := v.Type().Name() + "." + f.Name
			plain := f.Type == reflect.TypeFor[string]() || f.Type == reflect.TypeFor[[]string]()
			switch {
			case !f.IsExported():
			case plain && textFields[key]:
				v.Field(i).SetString(fn(v.Field(i).String()))
				n++
			case plain && !nameFields[key]:
				t.Errorf("results field %s is a plain string: add it to textFields or nameFields in text_test.go", key)
			default:
				n += rewriteTexts(t, v.Field(i), fn)
			}
		}
	}
	return n
}

// decisions lists everything the reports decide about rf, one line each:
// claims' verdicts, answers, the kinds of advice, and the tables made of
// measurements only. None of it may depend on a text field.
func decisions(rf *results.RunFile) []string {
	f := fmtr{masked: true} // answers quote the call's body; what they decide is the rest
	rf = redactRun(rf)
	var out []string
	add := func(key, value string) { out = append(out, key+": "+value) }
	addTable := func(key string, t table) {
		for _, row := range t.rows {
			var texts []string
			for _, c := range row {
				texts = append(texts, c.text+"{"+c.class+"}")
			}
			add(key, strings.Join(texts, " | "))
		}
	}
	add("overall answer", overallAnswer(rf, f))
	add("manual path safer", string(manualSafer(rf, f).Verdict))
	for _, a := range recommendation(rf, f) {
		add("advice", string(a.kind))
	}
	addTable("summary", summaryTable(rf, f))
	addTable("comparison", comparisonTable(rf, f))
	addTable("claim matrix", claimMatrix(rf, f))
	for _, r := range rf.Results {
		add(r.Name+" answer", answer(r, f))
		add(r.Name+" window", measure(r).windowText(f))
		for _, c := range claims(r, f) {
			add(r.Name+" claim "+c.ID, string(c.Verdict))
		}
		addTable(r.Name+" probes", probeTable(r, f))
		addTable(r.Name+" tokens", tokenTable(r, f))
		addTable(r.Name+" server errors", serverErrorTable(r, f))
		if r.Backup != nil {
			addTable(r.Name+" left out", leftOutTable(r.Backup, f))
		}
	}
	return out
}

// textValues are the distinct texts of rf and the words a decision on text
// might look for (phase labels, kinds, the sentences issue 8 found read).
func textValues(t *testing.T, rf *results.RunFile) []string {
	var words []string
	rewriteTexts(t, reflect.ValueOf(clone(t, rf)), func(s string) string { words = append(words, s); return s })
	for _, p := range results.Phases() {
		words = append(words, p.Label(), string(p))
	}
	words = append(words, "lost", "authenticated as", "original password", "default password", "admin", "atomic", "two-phase",
		"operation started", "response sent", "Old tokens are refused afterwards in every", "200", "401", "ok", "failed", "passed", "error")
	slices.Sort(words)
	return slices.Compact(words)
}

// rewrites are the ways checkTextDecidesNothing rewrites every text field:
// to nothing, reworded, to all texts at once (any strings.Contains on a
// text becomes true, where "" makes it false), and to each single text or
// word in turn (any == or HasPrefix on one becomes true somewhere else).
func rewrites(values []string) map[string]func(string) string {
	all := strings.Join(values, "; ")
	m := map[string]func(string) string{
		"empty":     func(string) string { return "" },
		"reworded":  func(s string) string { return "reworded: " + strings.ToUpper(s) },
		"all texts": func(string) string { return all },
	}
	for _, v := range values {
		m[fmt.Sprintf("every text %q", v)] = func(string) string { return v }
	}
	return m
}

// checkTextDecidesNothing rewrites every text field of rf and checks that
// no decision of the reports changes.
func checkTextDecidesNothing(t *testing.T, rf *results.RunFile) {
	want := decisions(rf)
	md := string(render(t, "md", rf, Options{}))
	for name, fn := range rewrites(textValues(t, rf)) {
		cp := clone(t, rf)
		if n := rewriteTexts(t, reflect.ValueOf(cp), fn); n == 0 {
			t.Fatalf("%s: no text field to rewrite", name)
		}
		if name == "to nothing" && string(render(t, "md", cp, Options{})) == md {
			t.Errorf("%s: the Markdown report did not change: the rewrite did not reach the texts", name)
		}
		got := decisions(cp)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			continue
		}
		for i := range max(len(got), len(want)) {
			if i >= len(got) || i >= len(want) || got[i] != want[i] {
				t.Errorf("rewriting every text %s changed a decision:\n  before: %s\n  after:  %s", name, at(want, i), at(got, i))
				break
			}
		}
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(nothing)"
}

// Rewording any message of the harness changes no verdict: a results file
// built by hand, with every shape the reports tell apart.
func TestTextDecidesNothing(t *testing.T) {
	checkTextDecidesNothing(t, handmadeRun())
}

// The same for a real run of the shipped scenarios.
func TestTextDecidesNothingInARealRun(t *testing.T) {
	checkTextDecidesNothing(t, realRun(t))
}
