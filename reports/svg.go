package reports

import (
	"fmt"
	"html"
	"math"
	"strings"

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
	axisHeight  = 22.0
	bandLabelH  = 18.0
	svgFontSize = 11
)

// timelineSVG draws one scenario: a lane per probe coloured by outcome over
// time, a marker per phase, the reinit-to-restore window shaded, and the
// length of every outage window written above it.
func timelineSVG(r *results.Result, f fmtr) string {
	t0, t1 := timeRange(r)
	plotW := svgWidth - svgLeft - svgRight
	x := func(t float64) float64 { return svgLeft + (t-t0)/(t1-t0)*plotW }
	phases := r.Timeline.Phases
	top := phaseRow*float64(len(phases)) + 6
	laneTop := func(i int) float64 { return top + float64(i)*(laneLabel+laneHeight) + laneLabel }
	lanes := max(len(r.Probes), 1) // an empty lane holds the "no probes" note
	axisY := top + float64(lanes)*(laneLabel+laneHeight) + 6
	height := axisY + axisHeight + bandLabelH

	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="timeline" data-scenario="%s" role="img" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" font-size="%d">`,
		esc(r.Name), svgWidth, height, svgWidth, height, svgFontSize)
	fmt.Fprintf(&b, `<title>%s: timeline of the operation</title>`, esc(r.Name))

	// The window between the commits, behind everything else.
	ws, okA := r.Phase(results.PhaseReinitCommitted)
	we, okB := r.Phase(results.PhaseRestoreCommitted)
	if measure(r).window && okA && okB {
		fmt.Fprintf(&b, `<rect class="reinit-window" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x(ws), top, math.Max(1, x(we)-x(ws)), axisY-top)
		anchor, lx := "start", x(ws)
		if lx > svgWidth/2 {
			anchor, lx = "end", x(we)
		}
		fmt.Fprintf(&b, `<text class="band-label" x="%.1f" y="%.1f" text-anchor="%s">reinit commit → restore commit: %s</text>`, lx, axisY+axisHeight+12, anchor, esc(f.ms(r.Facts.WindowMS)))
	}

	for i, p := range r.Probes {
		writeLane(&b, r, p, laneTop(i), x, f)
	}
	if len(r.Probes) == 0 {
		fmt.Fprintf(&b, `<text class="no-probes" x="6" y="%.1f">no probes in this scenario</text>`, laneTop(0)+laneHeight-5)
	}

	for i, p := range phases {
		px := x(p.AtMS)
		y := phaseRow * float64(i+1)
		fmt.Fprintf(&b, `<line class="phase" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, px, y+2, px, axisY)
		anchor, lx := "start", px+3
		if px > svgWidth-220 {
			anchor, lx = "end", px-3
		}
		fmt.Fprintf(&b, `<text class="phase-label" x="%.1f" y="%.1f" text-anchor="%s">%s %s</text>`, lx, y, anchor, esc(f.at(p.AtMS)), esc(f.text(p.Text())))
	}

	writeAxis(&b, t0, t1, axisY, x, f)
	writeServerMarks(&b, r, axisY, x, f)
	b.WriteString(`</svg>`)
	return b.String()
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

// writeLane draws a probe's samples as runs of equal outcome, then its
// outage windows with their lengths.
func writeLane(b *strings.Builder, r *results.Result, p results.ProbeSummary, y float64, x func(float64) float64, f fmtr) {
	fmt.Fprintf(b, `<g class="lane" data-probe="%s">`, esc(p.Name))
	fmt.Fprintf(b, `<text class="lane-label" x="6" y="%.1f">%s<title>%s</title></text>`, y+laneHeight-5, esc(p.Name), esc(probeTarget(p)))
	var samples []results.Sample
	for _, s := range r.Timeline.Samples {
		if s.Probe == p.Name {
			samples = append(samples, s)
		}
	}
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
		class := "ok"
		switch {
		case samples[i].ServerFailed(): // the server failed: not a refusal
			class = "server"
		case !samples[i].OK:
			class = "fail"
		}
		fmt.Fprintf(b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.0f"><title>%s: %s ×%s, %s → %s</title></rect>`,
			class, x(start), y, math.Max(1, x(end)-x(start)), laneHeight, esc(p.Name), esc(status(samples[i].Status)), esc(f.n(j-i+1)), esc(f.at(start)), esc(f.at(end)))
		i = j + 1
	}
	for _, w := range p.Windows {
		x1, x2 := x(w.StartMS), x(w.EndMS)
		fmt.Fprintf(b, `<rect class="window" x="%.1f" y="%.1f" width="%.1f" height="%.0f"/>`, x1, y-1, math.Max(2, x2-x1), laneHeight+2)
		fmt.Fprintf(b, `<text class="window-label" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, (x1+x2)/2, y-3, esc(windowLabel(f, w)))
	}
	b.WriteString(`</g>`)
}

// writeServerMarks marks on the axis the server errors no probe lane shows:
// the operation call's, the window actions', the measurements' after it.
func writeServerMarks(b *strings.Builder, r *results.Result, y float64, x func(float64) float64, f fmtr) {
	for _, e := range r.Facts.ServerErrors {
		if e.Source == results.SourceProbe {
			continue
		}
		px := x(e.AtMS)
		fmt.Fprintf(b, `<path class="server-mark" d="M%.1f %.1f l-5 -9 h10 z"><title>the server failed: %s got %s at %s</title></path>`,
			px, y, esc(sourceWords(e)), esc(status(e.Status)), esc(f.at(e.AtMS)))
	}
}

func writeAxis(b *strings.Builder, t0, t1, y float64, x func(float64) float64, f fmtr) {
	fmt.Fprintf(b, `<line class="axis" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x(t0), y, x(t1), y)
	step := niceStep((t1 - t0) / 8)
	for i, t := 0, math.Ceil(t0/step)*step; t <= t1 && i < 50; i, t = i+1, t+step {
		fmt.Fprintf(b, `<line class="tick" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x(t), y, x(t), y+4)
		label := fmtMS(t)
		if f.normalize {
			label = phMS
		}
		fmt.Fprintf(b, `<text class="tick-label" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x(t), y+15, esc(label))
	}
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

func esc(s string) string { return html.EscapeString(s) }

// windowLabel is a failing stretch's length, "≥" when it never ended.
func windowLabel(f fmtr, w results.Window) string {
	if w.Open {
		return "≥ " + f.ms(w.LengthMS)
	}
	return f.ms(w.LengthMS)
}
