// Package browser holds the real-browser test of package manage, the API
// Keys page: it serves the page and a protected API on a local server,
// drives headless Chromium through chromedp, and checks that what a person
// does on the page (create, edit, disable, enable, revoke a key) changes
// what the API accepts at once, that a secret is shown once and never again,
// and that the page works with the keyboard and on a phone-sized screen.
//
// It is a module of its own so that the root module keeps no dependency on
// chromedp. It needs Chromium (Debian: apt-get install chromium) or Chrome;
// CHROME_PATH names the binary when it is not on PATH. Without one the test
// skips, unless CI=true, where it fails. It writes the screenshots
// testdata/secret.png, testdata/list.png and testdata/list-phone.png
// (rewritten with go test -update).
//
// This package has no code: everything is in its tests.
package browser
