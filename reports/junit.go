package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rehearse-dev/rehearse/results"
)

// JUnit XML as Jenkins, GitLab and GitHub readers expect it, valid against
// the Jenkins xUnit plugin's schema and Apache Ant's (testdata/junit-10.xsd,
// testdata/ant-junit.xsd) but for the file and line attributes of
// <testcase>, which many readers use for annotations and neither schema
// declares. One <testcase> per scenario with at most one <failure>, which
// holds every failed expectation (file:line first in its message: some CI
// systems show only that attribute), or one <error> when the harness could
// not run it; each scenario's answer, probes and claims in the suite's
// <system-out> (Ant allows none in a test case).

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Package    string          `xml:"package,attr"`
	ID         int             `xml:"id,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  junitText       `xml:"system-out"`
	SystemErr  junitText       `xml:"system-err"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	File      string        `xml:"file,attr"`
	Line      int           `xml:"line,attr"`
	Failure   *junitProblem `xml:"failure"`
	Error     *junitProblem `xml:"error"`
}

// junitText is written as CDATA, so multi-line output stays readable.
type junitText struct {
	Text string `xml:",cdata"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",cdata"`
}

// junitTimestamp is when the run started as Ant's schema wants it: UTC,
// no zone.
func (f fmtr) junitTimestamp(t time.Time) string {
	if f.normalize {
		return phTimestamp
	}
	return t.UTC().Format("2006-01-02T15:04:05")
}

// hostname is the machine the run is reported from ("localhost" when it
// has no name).
func (f fmtr) hostname() string {
	h, err := os.Hostname()
	if f.normalize || err != nil || h == "" {
		return "localhost"
	}
	return h
}

func writeJUnit(w io.Writer, rf *results.RunFile, f fmtr) error {
	suite := junitSuite{
		Name:      "rehearse",
		Package:   "rehearse",
		Time:      f.seconds(rf.Duration),
		Timestamp: f.junitTimestamp(rf.Started),
		Hostname:  f.hostname(),
		Properties: []junitProperty{
			{Name: "question", Value: question},
			{Name: "answer", Value: overallAnswer(rf, f)},
			{Name: "results_version", Value: fmt.Sprint(results.Version)},
		},
	}
	var out []string
	for _, r := range rf.Results {
		c := junitCase{Name: r.Name, Classname: classname(r.File), Time: f.seconds(r.Duration), File: r.File, Line: 1}
		if r.Status == results.Errored {
			c.Error = errorProblem(r, f)
			suite.Errors++
		} else if c.Failure = expectationsFailure(r, f); c.Failure != nil {
			c.Line = failedOutcomes(r)[0].Pos.Line
			suite.Failures++
		}
		suite.Tests++
		suite.Cases = append(suite.Cases, c)
		if sc, ok := serverErrorCase(r, f); ok {
			suite.Tests++
			suite.Failures++
			suite.Cases = append(suite.Cases, sc)
		}
		out = append(out, caseOutput(r, f))
	}
	suite.SystemOut.Text = strings.Join(out, "\n")
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{suite}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// expectationsFailure is the one <failure> of a scenario whose expectations
// failed: the first one's file:line, subject and values in the message, how
// many more failed, and every one of them in the body.
func expectationsFailure(r *results.Result, f fmtr) *junitProblem {
	failed := failedOutcomes(r)
	if len(failed) == 0 {
		return nil
	}
	var bodies []string
	for _, o := range failed {
		bodies = append(bodies, failureBody(o, f))
	}
	first := failed[0]
	msg := fmt.Sprintf("%s: %s: expected %s, measured %s", first.Pos, first.Subject, first.Expected, oneLine(f.text(first.Measured)))
	if n := len(failed) - 1; n > 0 {
		msg += " (and " + plural(n, "more failed expectation", "more failed expectations") + ")"
	}
	return &junitProblem{Type: first.Kind, Message: msg, Body: strings.Join(bodies, "\n")}
}

// errorProblem is the <error> of a scenario the harness stopped: an
// operation that did not happen, or failed after its reinit, says so first.
func errorProblem(r *results.Result, f fmtr) *junitProblem {
	switch m := measure(r); {
	case m.notPerformed:
		return &junitProblem{Type: "operation", Message: fmt.Sprintf("%s: not measured: %s", r.File, oneLine(notPerformedText(r, f))), Body: f.text(r.Error)}
	case m.failedAfterReinit:
		return &junitProblem{Type: "operation", Message: fmt.Sprintf("%s: %s", r.File, oneLine(failedAfterReinitText(r, f))), Body: f.text(r.Error)}
	}
	return &junitProblem{
		Type:    "harness",
		Message: fmt.Sprintf("%s: the harness could not run the scenario: %s", r.File, oneLine(f.text(r.Error))),
		Body:    f.text(r.Error),
	}
}

// serverErrorCase is a test case of its own for a scenario's server
// errors, in one failure: the server failing is a finding apart from the
// scenario's expectations.
func serverErrorCase(r *results.Result, f fmtr) (junitCase, bool) {
	if len(r.Facts.ServerErrors) == 0 {
		return junitCase{}, false
	}
	var msgs []string
	for _, e := range r.Facts.ServerErrors {
		msg := fmt.Sprintf("%s: the server failed: %s got %s at %s", r.File, sourceWords(e), status(e.Status), f.at(e.AtMS)) + f.quoted(": ", e.Body)
		msgs = append(msgs, oneLine(msg))
	}
	p := &junitProblem{Type: "server_error", Message: msgs[0], Body: strings.Join(msgs, "\n")}
	if n := len(msgs) - 1; n > 0 {
		p.Message += " (and " + plural(n, "more server error", "more server errors") + ")"
	}
	return junitCase{Name: r.Name + ": server errors", Classname: classname(r.File), Time: f.seconds(0), File: r.File, Line: 1, Failure: p}, true
}

// classname groups scenarios by folder the way JUnit groups classes by
// package: scenarios/seed-flow-atomic.yaml → scenarios.seed-flow-atomic.
func classname(file string) string {
	file = strings.TrimSuffix(filepath.ToSlash(file), filepath.Ext(file))
	file = strings.TrimLeft(file, "./")
	return strings.ReplaceAll(file, "/", ".")
}

func failureBody(o results.Outcome, f fmtr) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: expectation failed: %s\n    expected: %s\n    measured: %s\n", o.Pos, o.Subject, o.Expected, f.text(o.Measured))
	if o.Excerpt != "" {
		b.WriteString("    timeline:\n")
		for _, line := range strings.Split(f.text(o.Excerpt), "\n") {
			b.WriteString("      " + line + "\n")
		}
	}
	return b.String()
}

// caseOutput is the test case's system-out: the answer and the windows.
func caseOutput(r *results.Result, f fmtr) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s, %s, %s)\n", r.Name, engine(r), dataSize(r), system(r))
	fmt.Fprintf(&b, "answer: %s\n", answer(r, f))
	for _, p := range r.Probes {
		fmt.Fprintf(&b, "probe %s: %s samples, %s failed, longest window %s, one request takes %s\n", p.Name, f.n(p.Samples), f.n(p.Failures), windowLabel(f, p.Longest()), resolutionText(p, f))
	}
	for _, e := range r.Facts.ServerErrors {
		fmt.Fprintf(&b, "server error: %s got %s at %s\n", sourceWords(e), status(e.Status), f.at(e.AtMS))
	}
	for _, c := range claims(r, f) {
		fmt.Fprintf(&b, "claim %s: %s\n", c.ID, c.Verdict)
	}
	return b.String()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
