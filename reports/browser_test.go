package reports

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium or Chrome binary: REHEARSE_CHROMIUM, else the
// usual names on PATH.
func chromium(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell"}
	if env := os.Getenv("REHEARSE_CHROMIUM"); env != "" {
		names = []string{env}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("REHEARSE_SKIP_BROWSER") == "1" {
		t.Skip("chromium not found; skipped because REHEARSE_SKIP_BROWSER=1")
	}
	t.Fatal("chromium not found: install it (apt-get install -y chromium) or point REHEARSE_CHROMIUM at a Chrome binary; set REHEARSE_SKIP_BROWSER=1 to skip the browser test")
	return ""
}

// openInBrowser writes page into dir and opens it in headless Chromium,
// which is closed when the test ends.
func openInBrowser(t *testing.T, dir string, page []byte) context.Context {
	t.Helper()
	exe := chromium(t)
	file := filepath.Join(dir, "report.html")
	if err := WriteFileAtomic(file, page); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // Chromium refuses to run as root with its sandbox
		chromedp.DisableGPU,
		chromedp.WindowSize(1200, 900),
		// Only the file itself may load: any network request would fail.
		chromedp.ProxyServer("http://127.0.0.1:9"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+file), chromedp.WaitVisible(chromedp.CSS("svg.timeline"))); err != nil {
		t.Fatalf("open the report in chromium: %v", err)
	}
	return bctx
}

// evalJSON runs js, which returns a JSON string, in the page and decodes
// it into v; what names what is read, for the error.
func evalJSON(t *testing.T, bctx context.Context, what, js string, v any) {
	t.Helper()
	raw, err := chromedp.Run(bctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("read %s from the page: %v", what, err)
	}
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		t.Fatal(err)
	}
}

// A server error is drawn in a colour of its own, apart from refusals and
// successes, as Chromium renders the page; so is a server error of the
// operation call, marked on its timeline's axis.
func TestHTMLServerErrorsInBrowser(t *testing.T) {
	bctx := openInBrowser(t, t.TempDir(), render(t, "html", operationsRun(), Options{}))
	var fill map[string]string
	evalJSON(t, bctx, "the colours", `JSON.stringify(Object.fromEntries(
		['rect.ok', 'rect.fail', 'rect.server', '.server-mark'].map(sel => {
			const el = document.querySelector('svg.timeline ' + sel);
			return [sel, el ? getComputedStyle(el).fill : ''];
		})))`, &fill)
	for sel, c := range fill {
		if c == "" {
			t.Errorf("no %s drawn", sel)
		}
	}
	if fill["rect.server"] == fill["rect.fail"] || fill["rect.server"] == fill["rect.ok"] || fill[".server-mark"] != fill["rect.server"] {
		t.Errorf("server errors are not drawn apart: %v", fill)
	}
}

// laneInfo is what the page reports about one scenario's timeline.
type laneInfo struct {
	Lanes        []string `json:"lanes"`
	TookLanes    []string `json:"tookLanes"`
	TallBars     int      `json:"tallBars"` // request-time bars drawn over 1 px tall
	WindowLabels []string `json:"windowLabels"`
	Phases       int      `json:"phases"`
	Width        float64  `json:"width"`
	Height       float64  `json:"height"`
}

// The HTML report of a real run, opened from disk in headless Chromium,
// renders a timeline per scenario with one lane per probe, a request-time
// lane per probe and a label for every outage window; a screenshot of the timelines is saved to
// REHEARSE_SCREENSHOT (else into the test's temp dir).
func TestHTMLTimelineInBrowser(t *testing.T) {
	rf := realRun(t)
	dir := t.TempDir()
	bctx := openInBrowser(t, dir, render(t, "html", rf, Options{}))
	var got map[string]laneInfo
	evalJSON(t, bctx, "the timelines", `JSON.stringify(Object.fromEntries(
		[...document.querySelectorAll('svg.timeline')].map(svg => {
			const box = svg.getBoundingClientRect();
			return [svg.dataset.scenario, {
				lanes: [...svg.querySelectorAll('g.lane')].map(g => g.dataset.probe),
				tookLanes: [...svg.querySelectorAll('g.took-lane')].map(g => g.dataset.probe),
				tallBars: [...svg.querySelectorAll('g.took-lane rect.took')].filter(b => b.getBoundingClientRect().height > 1).length,
				windowLabels: [...svg.querySelectorAll('.window-label')].map(t => t.textContent),
				phases: svg.querySelectorAll('line.phase').length,
				width: box.width, height: box.height,
			}];
		})))`, &got)

	for _, r := range rf.Results {
		info, ok := got[r.Name]
		if !ok {
			t.Errorf("%s: no timeline in the page", r.Name)
			continue
		}
		if info.Width < 100 || info.Height < 20 {
			t.Errorf("%s: the timeline did not render (%.0f×%.0f px)", r.Name, info.Width, info.Height)
		}
		if len(info.Lanes) != len(r.Probes) {
			t.Errorf("%s: %d lanes %v, want one per probe (%d)", r.Name, len(info.Lanes), info.Lanes, len(r.Probes))
		}
		for i, p := range r.Probes {
			if i < len(info.Lanes) && info.Lanes[i] != p.Name {
				t.Errorf("%s: lane %d is %q, want probe %q", r.Name, i, info.Lanes[i], p.Name)
			}
		}
		if fmt.Sprint(info.TookLanes) != fmt.Sprint(info.Lanes) || (len(r.Probes) > 0 && info.TallBars == 0) {
			t.Errorf("%s: request-time lanes %v (%d bars drawn taller than 1 px), want one per probe lane %v", r.Name, info.TookLanes, info.TallBars, info.Lanes)
		}
		var want []string
		for _, p := range r.Probes {
			for _, w := range p.Windows {
				want = append(want, windowLabel(fmtr{}, w))
			}
		}
		if fmt.Sprint(info.WindowLabels) != fmt.Sprint(want) {
			t.Errorf("%s: window labels %q, want %q", r.Name, info.WindowLabels, want)
		}
		if info.Phases != len(r.Timeline.Phases) {
			t.Errorf("%s: %d phase markers, want %d", r.Name, info.Phases, len(r.Timeline.Phases))
		}
	}
	if two := got["seed-flow-two-phase"]; len(two.WindowLabels) == 0 {
		t.Error("the two-phase timeline shows no outage window")
	}

	shot, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.ID("timeline-pictures")))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := os.Getenv("REHEARSE_SCREENSHOT")
	if out == "" {
		out = filepath.Join(dir, "timeline.png")
	}
	if err := WriteFileAtomic(out, shot); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the timelines: %s (%d bytes)", out, len(shot))
}
