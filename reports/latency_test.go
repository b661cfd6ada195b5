package reports

import (
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/results"
)

// svgNode is an element of a timeline picture, parsed back from the page.
type svgNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []svgNode  `xml:",any"`
}

func (n svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n svgNode) num(t *testing.T, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(n.attr(name), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.XMLName.Local, name, n.attr(name), err)
	}
	return v
}

// find lists the elements below n (n included) that match.
func (n svgNode) find(match func(svgNode) bool) []svgNode {
	var out []svgNode
	if match(n) {
		out = append(out, n)
	}
	for _, c := range n.Nodes {
		out = append(out, c.find(match)...)
	}
	return out
}

// timelines parses every timeline picture of an HTML report, by scenario.
func timelines(t *testing.T, page string) map[string]svgNode {
	t.Helper()
	out := map[string]svgNode{}
	for rest := page; ; {
		i := strings.Index(rest, `<svg class="timeline"`)
		if i < 0 {
			return out
		}
		rest = rest[i:]
		j := strings.Index(rest, "</svg>") + len("</svg>")
		var n svgNode
		if err := xml.Unmarshal([]byte(rest[:j]), &n); err != nil {
			t.Fatalf("a timeline is not well-formed SVG: %v", err)
		}
		out[n.attr("data-scenario")] = n
		rest = rest[j:]
	}
}

func hasClass(n svgNode, tag, class string) bool {
	return n.XMLName.Local == tag && strings.Contains(" "+n.attr("class")+" ", " "+class+" ")
}

// Every probe has a request-time lane in the HTML timeline: one bar per
// request, sent in order, whose height is its time on the picture's one
// scale, placed on the same time axis as the phase markers.
func TestHTMLLatencyLane(t *testing.T) {
	rf := realRun(t)
	pics := timelines(t, string(render(t, "html", rf, Options{})))
	checked := 0
	for _, r := range rf.Results {
		pic, ok := pics[r.Name]
		if !ok {
			t.Fatalf("%s: no timeline", r.Name)
		}
		lanes := pic.find(func(n svgNode) bool { return hasClass(n, "g", "took-lane") })
		if len(lanes) != len(r.Probes) {
			t.Errorf("%s: %d request-time lanes, want one per probe (%d)", r.Name, len(lanes), len(r.Probes))
			continue
		}
		// The time axis, from two phase markers at different times.
		phases := pic.find(func(n svgNode) bool { return hasClass(n, "line", "phase") })
		if len(phases) != len(r.Timeline.Phases) {
			t.Fatalf("%s: %d phase lines, want %d", r.Name, len(phases), len(r.Timeline.Phases))
		}
		a, b := 0, len(phases)-1
		if len(phases) < 2 || r.Timeline.Phases[b].AtMS-r.Timeline.Phases[a].AtMS < 1 {
			continue
		}
		ta, tb := r.Timeline.Phases[a].AtMS, r.Timeline.Phases[b].AtMS
		xa, xb := phases[a].num(t, "x1"), phases[b].num(t, "x1")
		x := func(ms float64) float64 { return xa + (ms-ta)/(tb-ta)*(xb-xa) }
		var scale float64
		for _, s := range r.Timeline.Samples {
			scale = math.Max(scale, s.TookMS)
		}
		for i, p := range r.Probes {
			l := lanes[i]
			if l.attr("data-probe") != p.Name {
				t.Errorf("%s: request-time lane %d is %q, want %q", r.Name, i, l.attr("data-probe"), p.Name)
			}
			bars := l.find(func(n svgNode) bool { return hasClass(n, "rect", "took") })
			samples := probeSamples(r, p.Name)
			if len(bars) != len(samples) || len(samples) == 0 {
				t.Errorf("%s/%s: %d bars, want one per request (%d)", r.Name, p.Name, len(bars), len(samples))
				continue
			}
			base := l.find(func(n svgNode) bool { return hasClass(n, "line", "took-base") })[0].num(t, "y1")
			for k, s := range samples {
				bar := bars[k]
				wantH := s.TookMS / scale * tookHeight
				if h := bar.num(t, "height"); math.Abs(h-wantH) > 0.06 || math.Abs(bar.num(t, "y")+h-base) > 0.11 {
					t.Fatalf("%s/%s request %d took %.1f ms: bar %.1f tall from %.1f, want %.1f tall on the base %.1f", r.Name, p.Name, k, s.TookMS, h, bar.num(t, "y"), wantH, base)
				}
				if got := bar.num(t, "x"); math.Abs(got-x(s.AtMS)) > 0.2 {
					t.Fatalf("%s/%s request %d sent at %.1f ms: bar at x=%.1f, want %.1f (the phases' time axis)", r.Name, p.Name, k, s.AtMS, got, x(s.AtMS))
				}
				checked++
			}
		}
	}
	if checked == 0 {
		t.Fatal("no request-time bar checked: the run has no probe samples")
	}
}

// The probe latency table gives median, p99 and max for each phase as the
// harness measured them, and says "not measured" for a phase without a
// request.
func TestLatencyTable(t *testing.T) {
	r := &results.Result{Probes: []results.ProbeSummary{{Name: "login",
		LatencyBefore: results.LatencyOf([]float64{3, 1, 2}),
		LatencyDuring: results.LatencyOf([]float64{10, 400, 20, 30}),
	}}}
	tb := latencyTable(r, fmtr{})
	if len(tb.rows) != 1 {
		t.Fatalf("rows %v", tb.rows)
	}
	row := tb.rows[0]
	for i, want := range []string{"login", "2.0 ms / 3.0 ms / 3.0 ms (3 requests)", "20.0 ms / 400.0 ms / 400.0 ms (4 requests)", "not measured: no request"} {
		if row[i].text != want {
			t.Errorf("column %q: %q, want %q", tb.head[i], row[i].text, want)
		}
	}
	md := string(render(t, "md", &results.RunFile{Results: []*results.Result{realRun(t).Results[0]}}, Options{}))
	if !strings.Contains(md, "### Request times per probe: median / p99 / max") {
		t.Error("the Markdown report has no request-time table")
	}
}
