package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// JUnit XML as Jenkins, GitLab and GitHub readers expect it (the schema in
// testdata/junit-10.xsd): one <testcase> per scenario, one <failure> per
// failed expectation with file:line first in its message (some CI systems
// show only that attribute), <error> when the harness could not run it.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string         `xml:"name,attr"`
	Classname string         `xml:"classname,attr"`
	Time      string         `xml:"time,attr"`
	Failures  []junitProblem `xml:"failure"`
	Errors    []junitProblem `xml:"error"`
	SystemOut *junitText     `xml:"system-out,omitempty"`
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

func writeJUnit(w io.Writer, rf *results.RunFile, f fmtr) error {
	suite := junitSuite{
		Name:      "rehearse",
		Time:      f.seconds(rf.Duration),
		Timestamp: f.when(rf.Started),
		Properties: []junitProperty{
			{Name: "question", Value: question},
			{Name: "answer", Value: overallAnswer(rf, f)},
			{Name: "results_version", Value: fmt.Sprint(results.Version)},
		},
	}
	for _, r := range rf.Results {
		c := junitCase{Name: r.Name, Classname: classname(r.File), Time: f.seconds(r.Duration), SystemOut: &junitText{caseOutput(r, f)}}
		if r.Status == results.Errored {
			c.Errors = append(c.Errors, errorProblem(r, f))
			suite.Errors++
		}
		for _, o := range r.Expectations {
			if o.Pass {
				continue
			}
			c.Failures = append(c.Failures, junitProblem{
				Type:    o.Kind,
				Message: fmt.Sprintf("%s: %s: expected %s, measured %s", o.Pos, o.Subject, o.Expected, oneLine(f.text(o.Measured))),
				Body:    failureBody(o, f),
			})
		}
		if len(c.Failures) > 0 {
			suite.Failures++
		}
		suite.Tests++
		suite.Cases = append(suite.Cases, c)
		if sc, ok := serverErrorCase(r, f); ok {
			suite.Tests++
			suite.Failures++
			suite.Cases = append(suite.Cases, sc)
		}
	}
	doc := junitSuites{Name: "rehearse", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors, Time: suite.Time, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// errorProblem is the <error> of a scenario the harness stopped: an
// operation that did not happen, or failed after its reinit, says so first.
func errorProblem(r *results.Result, f fmtr) junitProblem {
	switch m := measure(r); {
	case m.notPerformed:
		return junitProblem{Type: "operation", Message: fmt.Sprintf("%s: not measured: %s", r.File, oneLine(notPerformedText(r, f))), Body: f.text(r.Error)}
	case m.failedAfterReinit:
		return junitProblem{Type: "operation", Message: fmt.Sprintf("%s: %s", r.File, oneLine(failedAfterReinitText(r, f))), Body: f.text(r.Error)}
	}
	return junitProblem{
		Type:    "harness",
		Message: fmt.Sprintf("%s: the harness could not run the scenario: %s", r.File, oneLine(f.text(r.Error))),
		Body:    f.text(r.Error),
	}
}

// serverErrorCase is a test case of its own for a scenario's server
// errors, one failure each: the server failing is a finding apart from
// the scenario's expectations.
func serverErrorCase(r *results.Result, f fmtr) (junitCase, bool) {
	if len(r.Facts.ServerErrors) == 0 {
		return junitCase{}, false
	}
	c := junitCase{Name: r.Name + ": server errors", Classname: classname(r.File), Time: f.seconds(0)}
	for _, e := range r.Facts.ServerErrors {
		msg := fmt.Sprintf("%s: the server failed: %s got %s at %s", r.File, sourceWords(e), status(e.Status), f.at(e.AtMS)) + f.quoted(": ", e.Body)
		c.Failures = append(c.Failures, junitProblem{Type: "server_error", Message: oneLine(msg), Body: f.text(e.Body)})
	}
	return c, true
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
