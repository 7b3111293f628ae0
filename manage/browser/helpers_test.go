package browser_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// stepTimeout bounds one wait or one page load; the whole test has its own,
// longer deadline.
const stepTimeout = 15 * time.Second

// browserNames are the executables looked up on PATH, in order, when
// CHROME_PATH is not set.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// findBrowser returns the path of the browser to run: CHROME_PATH, else the
// first of browserNames on PATH.
func findBrowser() (string, error) {
	if p := os.Getenv("CHROME_PATH"); p != "" {
		return exec.LookPath(p)
	}
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %s is on PATH and CHROME_PATH is not set", strings.Join(browserNames, ", "))
}

// noBrowser ends the test when no browser can be found or started: a loud
// skip, or a failure under CI=true, where a skipped browser test would pass
// unnoticed.
func noBrowser(t *testing.T, err error) {
	t.Helper()
	const howto = "install Chromium (Debian/Ubuntu: apt-get install -y chromium) " +
		"or set CHROME_PATH to a Chrome or Chromium binary"
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and no browser to run the API Keys page test: %v; %s", err, howto)
	}
	t.Skipf("\n\n"+
		"**********************************************************************\n"+
		"*** SKIPPING the real-browser test of the API Keys page:\n"+
		"*** %v\n"+
		"*** To run it, %s.\n"+
		"**********************************************************************\n",
		err, howto)
}

// startBrowser starts headless Chromium under ctx and returns the context
// of its first tab. The browser ends with the test.
func startBrowser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	path, err := findBrowser()
	if err != nil {
		noBrowser(t, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the test may run as root, in a container
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	start := time.Now()
	if err := chromedp.Do(tab); err != nil { // starts the browser
		noBrowser(t, fmt.Errorf("cannot start %s: %w", path, err))
	}
	t.Logf("browser %s started in %v", path, time.Since(start).Round(time.Millisecond))
	return tab
}

// run runs a on the tab within stepTimeout; an error fails the test,
// naming what was being done.
func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// do runs actions that return nothing, in order, within stepTimeout.
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	run(t, ctx, what, chromedp.Steps(actions...))
}

// load runs actions that make the tab load a page (a click on a link or a
// submit button, a key press), waits for the page, and fails the test
// unless it loaded with a status below 400 and without an error message
// (#error). It returns the page's response.
func load(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) *network.Response {
	t.Helper()
	lctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(lctx, actions...)
	if err != nil {
		t.Fatalf("%s: no page loaded: %v", what, err)
	}
	msg := pageError(t, ctx)
	if resp.Status >= 400 || msg != "" {
		t.Fatalf("%s: page %s answered %d %s; #error: %q", what, resp.URL, resp.Status, resp.StatusText, msg)
	}
	return resp
}

// open navigates the tab to url and checks it loaded like load does.
func open(t *testing.T, ctx context.Context, url string) *network.Response {
	t.Helper()
	return load(t, ctx, "opening "+url, chromedp.Navigate(url))
}

// pageError returns the text of the page's error message, #error, or "".
func pageError(t *testing.T, ctx context.Context) string {
	t.Helper()
	return strings.TrimSpace(run(t, ctx, "reading #error", chromedp.Evaluate[string](
		`(document.getElementById("error") || {}).textContent || ""`)))
}

// text returns the visible text of the first element matching the CSS
// selector, with its white space collapsed to single spaces.
func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s := run(t, ctx, "reading the text of "+css, chromedp.Text(chromedp.CSS(css), chromedp.NodeReady))
	return strings.Join(strings.Fields(s), " ")
}

// setChecked makes the checkbox matching the CSS selector checked or not by
// clicking it, as a person would, and checks that the click took.
func setChecked(t *testing.T, ctx context.Context, css string, want bool) {
	t.Helper()
	checked := func() bool {
		return run(t, ctx, "reading "+css+".checked",
			chromedp.JavascriptAttribute[bool](chromedp.CSS(css), "checked", chromedp.NodeReady))
	}
	if checked() == want {
		return
	}
	do(t, ctx, "clicking "+css, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
	if checked() != want {
		t.Fatalf("clicking %s did not make it checked=%v", css, want)
	}
}

// location returns the tab's URL.
func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	return run(t, ctx, "reading the location", chromedp.Location())
}

// html returns the outer HTML of the tab's document, as the page's
// JavaScript sees it. Not chromedp.OuterHTML: its node ids can lag a
// reload ("No node with given id found"), and it never sees a page
// restored from the back/forward cache.
func html(t *testing.T, ctx context.Context) string {
	t.Helper()
	return run(t, ctx, "reading the page's HTML", chromedp.Evaluate[string](`document.documentElement.outerHTML`))
}

// update rewrites the committed screenshots in testdata/; without it they
// go to a temporary directory, so that a test run leaves the tree as it
// was.
var update = flag.Bool("update", false, "rewrite the screenshots in testdata/")

// screenshot saves a full-page PNG of the tab, to testdata/name with
// -update, and returns its size.
func screenshot(t *testing.T, ctx context.Context, name string) int {
	t.Helper()
	png := run(t, ctx, "taking the screenshot "+name, chromedp.FullScreenshot(100)) // 100: PNG
	dir := "testdata"
	if !*update {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatalf("saving the screenshot: %v", err)
	}
	t.Logf("screenshot %s: %d bytes", filepath.Join(dir, name), len(png))
	return len(png)
}

// api calls the protected API with a key, as a client program would, and
// returns the status code. The secret goes in the request, never in a log.
func api(t *testing.T, ctx context.Context, base, method, secret string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+"/v1/things", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s /v1/things: %v", method, err) // names the URL, never the header
	}
	resp.Body.Close()
	return resp.StatusCode
}

// restored is what back says of a page Chrome restored from its
// back/forward cache.
const restored = "restored from the back/forward cache"

// back goes one entry back in the tab's history with chromedp.NavigateBack
// and says how the page came: "loaded", or restored, when Chrome took it
// from its back/forward cache. Such a page fires no load event, so
// NavigateBack alone would wait for one until its deadline.
func back(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	fromCache := make(chan struct{})
	navigations := chromedp.Events(ctx, page.FrameNavigated) // subscribed now, before going back
	go func() {
		for ev, err := range navigations {
			if err != nil {
				return // ctx is done
			}
			if ev.Frame.ParentID == "" && ev.Type == page.NavigationTypeBackForwardCacheRestore {
				close(fromCache)
				return
			}
		}
	}()
	backCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(backCtx, chromedp.NavigateBack()) }()
	select {
	case err := <-done:
		return "loaded", err
	case <-fromCache:
		stop() // no load event will come
		<-done
		return restored, nil
	}
}
