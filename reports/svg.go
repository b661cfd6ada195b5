package reports

import (
	"fmt"
	"math"

	"github.com/rehearse-dev/rehearse/results"
)

// Geometry of the timeline picture, in SVG user units.
const (
	svgWidth    = 960.0
	svgLeft     = 190.0 // room for the probe names
	svgRight    = 24.0
	phaseRow    = 14.0 // one row of phase labels each, so labels never overlap
	laneLabel   = 14.0 // room above a lane for its window labels
	laneHeight  = 18.0
	tookGap     = 6.0  // room above a request-time lane
	tookHeight  = 30.0 // the tallest request's bar
	axisHeight  = 22.0
	bandLabelH  = 18.0
	svgFontSize = 11
)

// svgView is one scenario's timeline as the "timeline" template draws it:
// every position computed here, every text escaped by html/template.
type svgView struct {
	Scenario      string
	Width, Height float64
	FontSize      int
	Band          *svgBand // the reinit-to-restore window, when measured
	Lanes         []svgLane
	NoProbesY     float64 // the "no probes" note's baseline, when there are none
	Took          []svgTookLane
	Phases        []svgPhase
	Axis          svgAxis
	Marks         []svgMark
}

type svgBand struct {
	X, Y, W, H, LX, LY float64
	Anchor, Label      string
}

type svgLane struct {
	Probe, Target string
	LabelY        float64
	Runs          []svgRect
	Windows       []svgWindow
}

type svgRect struct {
	Class, Title string
	X, Y, W, H   float64
}

type svgWindow struct {
	X, Y, W, H, LX, LY float64
	Label              string
}

// svgTookLane plots each request of a probe as a bar at its send time
// whose height is how long it took, on one scale for the whole picture.
type svgTookLane struct {
	Probe, Scale string  // its name; the full-height bar's time
	NameY, Base  float64 // the name's baseline; the bars' bottom (the scale's baseline)
	X1, X2       float64 // the plot's left and right edges
	ScaleMS      float64 // the request time of a full-height bar
	Bars         []svgBar
}

type svgBar struct {
	X, Y, W, H float64
	TookMS     float64
	Class      string
	Title      string
}

type svgPhase struct {
	X, Y1, Y2, LX, LY float64
	Anchor, Label     string
}

type svgAxis struct {
	X1, X2, Y float64
	Ticks     []svgTick
}

type svgTick struct {
	X     float64
	Label string
}

type svgMark struct {
	X, Y  float64
	Title string
}

// timelineTemplate draws an svgView inside the HTML page (html/template
// knows SVG's contexts); it is parsed into the page's template set.
const timelineTemplate = `<svg class="timeline" data-scenario="{{.Scenario}}" role="img" viewBox="0 0 {{px0 .Width}} {{px0 .Height}}" width="{{px0 .Width}}" height="{{px0 .Height}}" font-size="{{.FontSize}}">` +
	`<title>{{.Scenario}}: timeline of the operation</title>` +
	`{{with .Band}}<rect class="reinit-window" x="{{px .X}}" y="{{px .Y}}" width="{{px .W}}" height="{{px .H}}"/>` +
	`<text class="band-label" x="{{px .LX}}" y="{{px .LY}}" text-anchor="{{.Anchor}}">{{.Label}}</text>{{end}}` +
	`{{range .Lanes}}<g class="lane" data-probe="{{.Probe}}">` +
	`<text class="lane-label" x="6" y="{{px .LabelY}}">{{.Probe}}<title>{{.Target}}</title></text>` +
	`{{range .Runs}}<rect class="{{.Class}}" x="{{px .X}}" y="{{px .Y}}" width="{{px .W}}" height="{{px0 .H}}"><title>{{.Title}}</title></rect>{{end}}` +
	`{{range .Windows}}<rect class="window" x="{{px .X}}" y="{{px .Y}}" width="{{px .W}}" height="{{px0 .H}}"/>` +
	`<text class="window-label" x="{{px .LX}}" y="{{px .LY}}" text-anchor="middle">{{.Label}}</text>{{end}}` +
	`</g>{{else}}<text class="no-probes" x="6" y="{{px .NoProbesY}}">no probes in this scenario</text>{{end}}` +
	`{{range .Took}}<g class="took-lane" data-probe="{{.Probe}}" data-scale-ms="{{.ScaleMS}}">` +
	`<text class="took-label" x="6" y="{{px .NameY}}">{{.Probe}}</text><text class="took-label" x="6" y="{{px .Base}}">{{.Scale}}</text>` +
	`<line class="took-base" x1="{{px .X1}}" y1="{{px .Base}}" x2="{{px .X2}}" y2="{{px .Base}}"/>` +
	`{{range .Bars}}<rect class="took {{.Class}}" data-took-ms="{{.TookMS}}" x="{{px .X}}" y="{{px .Y}}" width="{{px .W}}" height="{{px .H}}"><title>{{.Title}}</title></rect>{{end}}` +
	`</g>{{end}}` +
	`{{range .Phases}}<line class="phase" x1="{{px .X}}" y1="{{px .Y1}}" x2="{{px .X}}" y2="{{px .Y2}}"/>` +
	`<text class="phase-label" x="{{px .LX}}" y="{{px .LY}}" text-anchor="{{.Anchor}}">{{.Label}}</text>{{end}}` +
	`{{with .Axis}}<line class="axis" x1="{{px .X1}}" y1="{{px .Y}}" x2="{{px .X2}}" y2="{{px .Y}}"/>` +
	`{{$y := .Y}}{{range .Ticks}}<line class="tick" x1="{{px .X}}" y1="{{px $y}}" x2="{{px .X}}" y2="{{px (add $y 4)}}"/>` +
	`<text class="tick-label" x="{{px .X}}" y="{{px (add $y 15)}}" text-anchor="middle">{{.Label}}</text>{{end}}{{end}}` +
	`{{range .Marks}}<path class="server-mark" d="M{{px .X}} {{px .Y}} l-5 -9 h10 z"><title>{{.Title}}</title></path>{{end}}` +
	`</svg>`

// svgFuncs format coordinates for the template.
var svgFuncs = map[string]any{
	"px":  func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"px0": func(v float64) string { return fmt.Sprintf("%.0f", v) },
	"add": func(a, b float64) float64 { return a + b },
}

// timelineView lays out one scenario: a lane per probe coloured by outcome over
// time, a lane per probe of its request times, a marker per phase, the
// reinit-to-restore window shaded, and the length of every outage window
// written above it.
func timelineView(r *results.Result, f fmtr) svgView {
	t0, t1 := timeRange(r)
	plotW := svgWidth - svgLeft - svgRight
	x := func(t float64) float64 { return svgLeft + (t-t0)/(t1-t0)*plotW }
	phases := r.Timeline.Phases
	top := phaseRow*float64(len(phases)) + 6
	laneTop := func(i int) float64 { return top + float64(i)*(laneLabel+laneHeight) + laneLabel }
	lanes := max(len(r.Probes), 1) // an empty lane holds the "no probes" note
	tookTop := top + float64(lanes)*(laneLabel+laneHeight)
	axisY := tookTop + float64(len(r.Probes))*(tookGap+tookHeight) + 6
	v := svgView{Scenario: r.Name, Width: svgWidth, Height: axisY + axisHeight + bandLabelH, FontSize: svgFontSize,
		NoProbesY: laneTop(0) + laneHeight - 5}

	ws, okA := r.Phase(results.PhaseReinitCommitted)
	we, okB := r.Phase(results.PhaseRestoreCommitted)
	if measure(r).window && okA && okB {
		b := &svgBand{X: x(ws), Y: top, W: math.Max(1, x(we)-x(ws)), H: axisY - top, LX: x(ws), LY: axisY + axisHeight + 12, Anchor: "start",
			Label: "reinit commit → restore commit: " + f.ms(r.Facts.WindowMS)}
		if b.LX > svgWidth/2 {
			b.Anchor, b.LX = "end", x(we)
		}
		v.Band = b
	}
	scale := 0.0 // one scale for every request-time lane, so they compare
	for _, s := range r.Timeline.Samples {
		scale = math.Max(scale, s.TookMS)
	}
	for i, p := range r.Probes {
		v.Lanes = append(v.Lanes, lane(r, p, laneTop(i), x, f))
		v.Took = append(v.Took, tookLane(r, p, tookTop+float64(i+1)*(tookGap+tookHeight), scale, x, f))
	}
	for i, p := range phases {
		ph := svgPhase{X: x(p.AtMS), Y1: phaseRow*float64(i+1) + 2, Y2: axisY, LY: phaseRow * float64(i+1), Anchor: "start",
			Label: f.at(p.AtMS) + " " + f.text(p.Text())}
		ph.LX = ph.X + 3
		if ph.X > svgWidth-220 {
			ph.Anchor, ph.LX = "end", ph.X-3
		}
		v.Phases = append(v.Phases, ph)
	}
	v.Axis = axis(t0, t1, axisY, x, f)
	for _, e := range r.Facts.ServerErrors {
		if e.Source == results.SourceProbe { // its lane shows it
			continue
		}
		v.Marks = append(v.Marks, svgMark{X: x(e.AtMS), Y: axisY,
			Title: "the server failed: " + sourceWords(e) + " got " + status(e.Status) + " at " + f.at(e.AtMS)})
	}
	return v
}

// timeRange spans every sample and phase, with the start of the operation.
func timeRange(r *results.Result) (t0, t1 float64) {
	t0, t1 = 0, math.Max(r.Timeline.EndMS, 1)
	for _, s := range r.Timeline.Samples {
		t0 = math.Min(t0, s.AtMS)
		t1 = math.Max(t1, s.AtMS+s.TookMS)
	}
	for _, p := range r.Timeline.Phases {
		t0, t1 = math.Min(t0, p.AtMS), math.Max(t1, p.AtMS)
	}
	for _, e := range r.Facts.ServerErrors {
		t0, t1 = math.Min(t0, e.AtMS), math.Max(t1, e.AtMS)
	}
	for _, p := range r.Probes {
		for _, w := range p.Windows {
			t1 = math.Max(t1, w.EndMS)
		}
	}
	pad := (t1 - t0) * 0.02
	return t0 - pad, t1 + pad
}

// probeSamples are the probe's samples in the order they were sent.
func probeSamples(r *results.Result, probe string) []results.Sample {
	var out []results.Sample
	for _, s := range r.Timeline.Samples {
		if s.Probe == probe {
			out = append(out, s)
		}
	}
	return out
}

// sampleClass colours a sample by outcome.
func sampleClass(s results.Sample) string {
	switch {
	case s.ServerFailed(): // the server failed: not a refusal
		return "server"
	case !s.OK:
		return "fail"
	}
	return "ok"
}

// lane is a probe's samples as runs of equal outcome, then its outage
// windows with their lengths.
func lane(r *results.Result, p results.ProbeSummary, y float64, x func(float64) float64, f fmtr) svgLane {
	l := svgLane{Probe: p.Name, Target: probeTarget(p), LabelY: y + laneHeight - 5}
	samples := probeSamples(r, p.Name)
	for i := 0; i < len(samples); {
		j := i
		for j+1 < len(samples) && samples[j+1].OK == samples[i].OK && samples[j+1].Status == samples[i].Status {
			j++
		}
		start := samples[i].AtMS
		end := samples[j].AtMS + math.Max(p.IntervalMS, samples[j].TookMS)
		if j+1 < len(samples) {
			end = samples[j+1].AtMS
		}
		l.Runs = append(l.Runs, svgRect{Class: sampleClass(samples[i]), X: x(start), Y: y, W: math.Max(1, x(end)-x(start)), H: laneHeight,
			Title: p.Name + ": " + status(samples[i].Status) + " ×" + f.n(j-i+1) + ", " + f.at(start) + " → " + f.at(end)})
		i = j + 1
	}
	for _, w := range p.Windows {
		x1, x2 := x(w.StartMS), x(w.EndMS)
		l.Windows = append(l.Windows, svgWindow{X: x1, Y: y - 1, W: math.Max(2, x2-x1), H: laneHeight + 2, LX: (x1 + x2) / 2, LY: y - 3, Label: windowLabel(f, w)})
	}
	return l
}

// tookLane draws one bar per request of the probe, at x(sent), scale ms
// tall at full height; base is the bars' bottom.
func tookLane(r *results.Result, p results.ProbeSummary, base, scale float64, x func(float64) float64, f fmtr) svgTookLane {
	l := svgTookLane{Probe: p.Name, Base: base, NameY: base - tookHeight + 10, ScaleMS: scale, X1: svgLeft, X2: svgWidth - svgRight,
		Scale: "request time, max " + f.ms(scale)}
	for _, s := range probeSamples(r, p.Name) {
		h := 0.0
		if scale > 0 {
			h = s.TookMS / scale * tookHeight
		}
		l.Bars = append(l.Bars, svgBar{X: x(s.AtMS), Y: base - h, W: 1.2, H: h, TookMS: s.TookMS, Class: sampleClass(s),
			Title: p.Name + ": " + f.ms(s.TookMS) + " at " + f.at(s.AtMS)})
	}
	return l
}

// axis is the time axis with ticks at a round interval.
func axis(t0, t1, y float64, x func(float64) float64, f fmtr) svgAxis {
	a := svgAxis{X1: x(t0), X2: x(t1), Y: y}
	step := niceStep((t1 - t0) / 8)
	for i, t := 0, math.Ceil(t0/step)*step; t <= t1 && i < 50; i, t = i+1, t+step {
		label := fmtMS(t)
		if f.normalize {
			label = phMS
		}
		a.Ticks = append(a.Ticks, svgTick{X: x(t), Label: label})
	}
	return a
}

// niceStep rounds a raw tick interval to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// windowLabel is a failing stretch's length, "≥" when it never ended
// (left out when normalizing: which of a probe's stretches is the longest,
// an open one or not, depends on the timing alone).
func windowLabel(f fmtr, w results.Window) string {
	if w.Open && !f.normalize {
		return "≥ " + f.ms(w.LengthMS)
	}
	return f.ms(w.LengthMS)
}
