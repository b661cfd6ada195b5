package reports

import (
	"regexp"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/results"
)

// In the HTML report each scenario's name in the summary links to its
// section, and a section whose expectations failed shows them first: right
// after its answer, and first in its table of expectations. Text is
// escaped by html/template.
func TestHTMLLinksAndFailuresFirst(t *testing.T) {
	rf := realRun(t)
	r := result(t, rf, "seed-flow-two-phase")
	var failed results.Outcome
	for i := range r.Expectations {
		if r.Expectations[i].Kind == "server_errors" || i == len(r.Expectations)-1 {
			r.Expectations[i].Pass, r.Expectations[i].Measured = false, `<b>"7 of 7" & more</b>`
			failed = r.Expectations[i]
			break
		}
	}
	r.Status = results.Failed
	page := string(render(t, "html", rf, Options{}))
	for _, res := range rf.Results {
		link := `<td><a href="#scenario-` + res.Name + `">` + res.Name + `</a></td>`
		if !strings.Contains(page, link) || !strings.Contains(page, `<section class="scenario" id="scenario-`+res.Name+`">`) {
			t.Errorf("no link %s from the summary to a section with that id", link)
		}
	}
	section := page[strings.Index(page, `id="scenario-seed-flow-two-phase"`):]
	section = section[:strings.Index(section, "</section>")]
	answer, failedAt, data := strings.Index(section, `<p class="answer">`), strings.Index(section, "<h3>Failed expectations</h3>"), strings.Index(section, "<h3>Accounts and data</h3>")
	if answer < 0 || failedAt < answer || data < failedAt {
		t.Errorf("the failed expectations are not right after the answer (answer at %d, failures at %d, data at %d)", answer, failedAt, data)
	}
	rows := regexp.MustCompile(`<tr><td>([^<]*)</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td class="(pass|fail)">`).FindAllStringSubmatch(section[strings.Index(section, "<h3>Expectations of the scenario</h3>"):], -1)
	if len(rows) != len(r.Expectations) || rows[0][1] != failed.Pos.String() || rows[0][2] != "fail" {
		t.Errorf("the expectations table does not start with the failed one (%s): %q", failed.Pos, rows)
	}
	if !strings.Contains(section, "&lt;b&gt;&#34;7 of 7&#34; &amp; more&lt;/b&gt;") {
		t.Error("the measured value is not escaped as text")
	}
	if n := strings.Count(page, "<h3>Failed expectations</h3>"); n != 1 {
		t.Errorf("%d sections show failed expectations, want the one that has some", n)
	}
}
