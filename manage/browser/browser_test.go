package browser_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/manage"
)

// settingsPath is where the API Keys page is served.
const settingsPath = "/settings/api-keys"

// testTimeout bounds the whole test, browser start included.
const testTimeout = 2 * time.Minute

// newServer serves, on 127.0.0.1, the API Keys page at settingsPath and a
// protected API behind the API-key middleware: GET /v1/things needs the
// scope read, POST /v1/things the scope write. The page and the middleware
// share one in-memory store, so what the page does is what the API sees.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	set, err := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{"read": nil, "write": nil})
	if err != nil {
		t.Fatal(err)
	}
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: set}
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	mw, err := apikey.New(apikey.Config{Keys: keys, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	page, err := manage.New(store, manage.Config{
		Keys: keys,
		Caller: func(*http.Request) (manage.Caller, error) {
			return manage.Caller{ID: "user_1", Owner: "acct_1"}, nil
		},
		Path:  settingsPath,
		Audit: manage.NewMemoryAudit(0),
	})
	if err != nil {
		t.Fatalf("manage.New: %v", err)
	}

	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	v1 := http.NewServeMux()
	v1.Handle("GET /v1/things", mw.Require("read")(ok))
	v1.Handle("POST /v1/things", mw.Require("write")(ok))

	mux := http.NewServeMux()
	mux.Handle("/v1/", mw.Handler(v1)) // only the API needs a key
	mux.Handle(settingsPath+"/", page)
	mux.Handle(settingsPath, page)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// session is the state the steps of TestAPIKeysPage share: one browser tab
// and the key the first step creates.
type session struct {
	tab  context.Context // the browser tab; its deadline is the test's
	base string          // the server's URL

	keyID       string // the key created in step 1
	secret      string // its secret, read once from the page; never logged
	secretEntry int64  // the history entry of the page that showed it
	detail      string // the URL of the key's page
	kbdSecret   string // the secret of the key step 8 creates; never logged
}

// list returns the URL of the list page.
func (s *session) list() string { return s.base + settingsPath + "/" }

// row returns the CSS selector of the list's row of the key id.
func row(id string) string { return fmt.Sprintf("#keys tr[data-key-id=%q]", id) }

// TestAPIKeysPage drives the API Keys page in headless Chromium as a person
// would, step by step, and checks after each step what the API accepts. A
// step cut short by t.Fatal ends the test: the later ones need its key.
func TestAPIKeysPage(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	srv := newServer(t)
	s := &session{tab: startBrowser(t, ctx), base: srv.URL}

	steps := []struct {
		name string
		run  func(*testing.T)
	}{
		{"1_create_key", s.createKey},
		{"2_secret_works_with_its_scopes", s.secretWorks},
		{"3_list_shows_key", s.listShowsKey},
		{"4_edit_adds_scope_at_once", s.editScopes},
		{"5_disable_and_enable", s.disableEnable},
		{"6_revoke", s.revoke},
		{"7_secret_never_shown_again", s.secretNeverAgain},
		{"8_keyboard_only", s.keyboardOnly},
		{"9_copy_button", s.copySecret},
	}
	for _, step := range steps {
		finished := false // false after a t.Fatal: the step is cut short
		t.Run(step.name, func(t *testing.T) {
			step.run(t)
			finished = true
		})
		if !finished {
			t.Fatalf("step %s stopped; the later steps need it", step.name)
		}
	}
}

// createKey: open the list, follow #new-key-link, name the key "ci key",
// check only the scope read, create it, and read the one-time secret.
func (s *session) createKey(t *testing.T) {
	open(t, s.tab, s.list())
	if !exists(t, s.tab, "#no-keys") {
		t.Errorf("the list of an account with no keys has no #no-keys")
	}
	load(t, s.tab, "clicking #new-key-link", chromedp.Click(chromedp.CSS("#new-key-link"), chromedp.NodeVisible))
	do(t, s.tab, "filling #name",
		chromedp.WaitVisible(chromedp.CSS("form#new-key")),
		chromedp.Clear(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "ci key"),
	)
	setChecked(t, s.tab, "#scope-read", true)
	setChecked(t, s.tab, "#scope-write", false)
	resp := load(t, s.tab, "clicking #create", chromedp.Click(chromedp.CSS("#create"), chromedp.NodeVisible))
	if cc := header(resp, "Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("the page with the secret has Cache-Control %q, want no-store", cc)
	}

	s.secret = text(t, s.tab, "#secret")
	s.keyID = text(t, s.tab, "#secret-key-id")
	if s.secret == "" || s.keyID == "" {
		t.Fatalf("the page after #create shows no secret (#secret) or no key id (#secret-key-id)")
	}
	t.Logf("created key %s", s.keyID)
	h := run(t, s.tab, "reading the history", chromedp.NavigationEntries())
	s.secretEntry = h.Entries[h.CurrentIndex].ID
	screenshot(t, s.tab, "secret.png")
}

// apiCall is one request to the protected API and the status it must get.
type apiCall struct {
	method string
	want   int
}

// expectAPI makes the calls with secret and reports each unexpected status;
// when says what state the key is in.
func (s *session) expectAPI(t *testing.T, when, secret string, calls ...apiCall) {
	t.Helper()
	for _, c := range calls {
		if got := api(t, s.tab, s.base, c.method, secret); got != c.want {
			t.Errorf("%s /v1/things with key %s %s: status %d, want %d", c.method, s.keyID, when, got, c.want)
		}
	}
}

// secretWorks: the new read-only secret reads and cannot write.
func (s *session) secretWorks(t *testing.T) {
	s.expectAPI(t, "(scope read)", s.secret,
		apiCall{http.MethodGet, http.StatusOK},
		apiCall{http.MethodPost, http.StatusForbidden},
	)
}

// listShowsKey: #done leads to the list, whose row for the key shows its
// name, its scope and an active state; it fits a 375-pixel-wide phone.
func (s *session) listShowsKey(t *testing.T) {
	load(t, s.tab, "clicking #done", chromedp.Click(chromedp.CSS("a#done"), chromedp.NodeVisible))
	s.noSecret(t, "the list after #done")
	r := row(s.keyID)
	for _, c := range []struct{ cell, want string }{
		{"td.name", "ci key"},
		{"td.scopes", "read"},
		{"td.state", "active"},
	} {
		if got := text(t, s.tab, r+" "+c.cell); !strings.EqualFold(got, c.want) {
			t.Errorf("the list's row for %s: %s is %q, want %q", s.keyID, c.cell, got, c.want)
		}
	}
	for _, cell := range []string{"td.hint", "td.environment", "td.created", "td.last-used", "td.expires"} {
		if !exists(t, s.tab, r+" "+cell) {
			t.Errorf("the list's row for %s has no %s", s.keyID, cell)
		}
	}
	for _, id := range []string{"#new-key-link", "#usage-live", "#usage-test"} {
		if !exists(t, s.tab, id) {
			t.Errorf("the list has no %s", id)
		}
	}
	screenshot(t, s.tab, "list.png")

	// A phone: mobile emulation honours <meta name=viewport>, so a page
	// without one, or wider than the screen, is laid out wider than 375
	// pixels (zoomed out to fit) and fails the first check.
	do(t, s.tab, "emulating a 375×812 phone",
		chromedp.EmulateViewport(375, 812, chromedp.EmulatePortrait, chromedp.EmulateMobile),
		chromedp.Reload(),
	)
	type widths struct {
		Scroll int `json:"scroll"` // document.documentElement.scrollWidth
		Inner  int `json:"inner"`  // window.innerWidth
	}
	w := run(t, s.tab, "measuring the page", chromedp.Evaluate[widths](
		`({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})`))
	if w.Inner != 375 {
		t.Errorf("on a 375-pixel-wide phone the list is laid out %d pixels wide: "+
			"content wider than the screen, or no <meta name=viewport content=\"width=device-width\">", w.Inner)
	}
	if w.Scroll > w.Inner {
		t.Errorf("on a 375-pixel-wide phone the list scrolls sideways: scrollWidth %d > innerWidth %d", w.Scroll, w.Inner)
	}
	screenshot(t, s.tab, "list-phone.png")
	do(t, s.tab, "leaving the phone", chromedp.ResetViewport(), chromedp.Reload())
}

// editScopes: the key's page (a.edit) adds the scope write; the same secret
// can write at once.
func (s *session) editScopes(t *testing.T) {
	load(t, s.tab, "clicking the key's a.edit", chromedp.Click(chromedp.CSS(row(s.keyID)+" a.edit"), chromedp.NodeVisible))
	s.detail = location(t, s.tab)
	if u, err := url.Parse(s.detail); err != nil || u.Path != settingsPath+"/keys/"+s.keyID {
		t.Errorf("a.edit leads to %s, want %s/keys/%s", s.detail, settingsPath, s.keyID)
	}
	do(t, s.tab, "waiting for form#edit-key", chromedp.WaitVisible(chromedp.CSS("form#edit-key")))
	s.noSecret(t, "the key's page")
	if !run(t, s.tab, "reading #scope-read", chromedp.JavascriptAttribute[bool](chromedp.CSS("#scope-read"), "checked")) {
		t.Errorf("the page of a key with the scope read does not show #scope-read checked")
	}
	setChecked(t, s.tab, "#scope-write", true)
	load(t, s.tab, "clicking #save", chromedp.Click(chromedp.CSS("#save"), chromedp.NodeVisible))
	s.expectAPI(t, "after adding the scope write", s.secret,
		apiCall{http.MethodPost, http.StatusOK},
		apiCall{http.MethodGet, http.StatusOK},
	)
}

// disableEnable: #disable shuts the key out at once, #enable lets it in.
func (s *session) disableEnable(t *testing.T) {
	steps := []struct {
		button, state string
		want          int
	}{
		{"#disable", "disabled", http.StatusUnauthorized},
		{"#enable", "active", http.StatusOK},
	}
	for _, st := range steps {
		open(t, s.tab, s.detail)
		load(t, s.tab, "clicking "+st.button, chromedp.Click(chromedp.CSS("button"+st.button), chromedp.NodeVisible))
		s.expectAPI(t, "after "+st.button, s.secret, apiCall{http.MethodGet, st.want})
		open(t, s.tab, s.list())
		if got := text(t, s.tab, row(s.keyID)+" td.state"); !strings.EqualFold(got, st.state) {
			t.Errorf("after %s the list shows the key %q, want %q", st.button, got, st.state)
		}
	}
}

// revoke: #revoke asks for a confirmation; #confirm-revoke revokes the key
// for ever and leads back to the list.
func (s *session) revoke(t *testing.T) {
	open(t, s.tab, s.detail)
	load(t, s.tab, "clicking #revoke", chromedp.Click(chromedp.CSS("#revoke-form #revoke"), chromedp.NodeVisible))
	s.noSecret(t, "the revocation's confirmation page")
	load(t, s.tab, "clicking #confirm-revoke", chromedp.Click(chromedp.CSS("#confirm-revoke"), chromedp.NodeVisible))
	if u, _ := url.Parse(location(t, s.tab)); u == nil || strings.TrimSuffix(u.Path, "/") != settingsPath {
		t.Errorf("#confirm-revoke leads to %s, want the list %s", location(t, s.tab), s.list())
	}
	s.expectAPI(t, "after #confirm-revoke", s.secret,
		apiCall{http.MethodGet, http.StatusUnauthorized},
		apiCall{http.MethodPost, http.StatusUnauthorized},
	)
}

// secretNeverAgain: neither a reload of the list and of the key's page nor
// going back through the history to the page that showed the secret shows
// it again.
func (s *session) secretNeverAgain(t *testing.T) {
	for _, u := range []string{s.list(), s.detail} {
		visit(t, s.tab, u)
		do(t, s.tab, "reloading "+u, chromedp.Reload())
		s.noSecret(t, u+", reloaded")
	}
	h := run(t, s.tab, "reading the history", chromedp.NavigationEntries())
	target := -1
	for i, e := range h.Entries {
		if e.ID == s.secretEntry {
			target = i
		}
	}
	if target < 0 {
		t.Fatalf("the history has no entry for the page that showed the secret")
	}
	for cur := int(h.CurrentIndex); cur > target; cur-- {
		where := fmt.Sprintf("history entry %d, %s", cur-1, h.Entries[cur-1].URL)
		how, err := back(s.tab)
		if err != nil {
			// The answer to a POST is not kept (no-store, and Chrome
			// does not keep POSTs to go back to): Chrome shows its
			// "Confirm Form Resubmission" page (ERR_CACHE_MISS).
			how = err.Error()
		}
		t.Logf("back to %s: %s", where, how)
		s.noSecret(t, where)
	}
}

// keyboardOnly: a key can be created with the keyboard alone: type the
// name, Tab to the first scope, Space to check it, Tab to #create, Enter.
func (s *session) keyboardOnly(t *testing.T) {
	open(t, s.tab, s.base+settingsPath+"/new")
	do(t, s.tab, "typing the name",
		chromedp.Focus(chromedp.CSS("#name"), chromedp.NodeVisible),
		chromedp.KeyEvent("kbd key"),
		chromedp.KeyEvent(kb.Tab),
	)
	if got := run(t, s.tab, "reading #name", chromedp.Value(chromedp.CSS("#name"))); got != "kbd key" {
		t.Errorf("typing into #name gave %q", got)
	}
	scope := run(t, s.tab, "reading the focus", chromedp.Evaluate[string](
		`document.activeElement === document.querySelector("input[name=scope]") ? document.activeElement.value : ""`))
	if scope == "" {
		t.Fatalf("Tab from #name does not reach the first scope checkbox; the focus is on %s", focused(t, s.tab))
	}
	do(t, s.tab, "pressing Space", chromedp.KeyEvent(" "))
	if !run(t, s.tab, "reading the checkbox", chromedp.Evaluate[bool](`document.activeElement.checked === true`)) {
		t.Fatalf("Space does not check the scope checkbox %q", scope)
	}
	for range 20 {
		if focused(t, s.tab) == "#create" {
			break
		}
		do(t, s.tab, "pressing Tab", chromedp.KeyEvent(kb.Tab))
	}
	if f := focused(t, s.tab); f != "#create" {
		t.Fatalf("20 presses of Tab from the scopes do not reach #create; the focus is on %s", f)
	}
	load(t, s.tab, "pressing Enter on #create", chromedp.KeyEvent(kb.Enter))
	secret := text(t, s.tab, "#secret")
	id := text(t, s.tab, "#secret-key-id")
	if secret == "" || id == "" {
		t.Fatalf("the keyboard's Enter did not create a key: no #secret or #secret-key-id")
	}
	t.Logf("created key %s with the keyboard (scope %s)", id, scope)
	check := apiCall{http.MethodGet, http.StatusOK}
	if scope == "write" {
		check = apiCall{http.MethodPost, http.StatusOK}
	}
	if got := api(t, s.tab, s.base, check.method, secret); got != check.want {
		t.Errorf("%s /v1/things with the key %s made with the keyboard (scope %s): status %d, want %d",
			check.method, id, scope, got, check.want)
	}

	s.kbdSecret = secret
}

// copySecret: on the page with the secret of step 8, #copy puts it on the
// clipboard and #copy-status says "Copied".
func (s *session) copySecret(t *testing.T) {
	secret := s.kbdSecret
	for _, name := range []string{"clipboard-write", "clipboard-read"} {
		_, err := chromedp.CallBrowser(s.tab, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name},
			Setting:    browser.PermissionSettingGranted,
			Origin:     s.base,
		})
		if err != nil {
			t.Logf("granting %s: %v", name, err)
		}
	}
	do(t, s.tab, "clicking #copy", chromedp.Click(chromedp.CSS("button#copy"), chromedp.NodeVisible))
	ctx, cancel := context.WithTimeout(s.tab, 5*time.Second)
	defer cancel()
	const status = `(document.getElementById("copy-status") || {}).textContent || ""`
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`/Copied/.test(`+status+`)`,
		chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		got := run(t, s.tab, "reading #copy-status", chromedp.Evaluate[string](status))
		t.Fatalf("after clicking #copy, #copy-status reads %q, want \"Copied\" (%v)", strings.TrimSpace(got), err)
	}
	clip, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`,
		func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }))
	switch {
	case err != nil:
		t.Logf("#copy-status says Copied; the clipboard could not be read back: %v", err)
	case clip != secret:
		t.Errorf("#copy-status says Copied but the clipboard does not hold the secret (%d characters, want %d)", len(clip), len(secret))
	default:
		t.Logf("the clipboard holds the secret")
	}
}

// noSecret fails the test if the tab's document holds the secret of step
// 1; where names the page.
func (s *session) noSecret(t *testing.T, where string) {
	t.Helper()
	if s.secret != "" && strings.Contains(html(t, s.tab), s.secret) {
		t.Errorf("%s shows the secret of %s again, after its one-time page", where, s.keyID)
	}
}

// visit navigates the tab to u without checking its status: a revoked key's
// page may well answer 404.
func visit(t *testing.T, ctx context.Context, u string) {
	t.Helper()
	do(t, ctx, "opening "+u, chromedp.Navigate(u))
}

// exists reports whether the tab's document has an element matching css.
func exists(t *testing.T, ctx context.Context, css string) bool {
	t.Helper()
	return run(t, ctx, "looking for "+css, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, css)))
}

// focused describes the element that has the focus: "#id", or its tag.
func focused(t *testing.T, ctx context.Context) string {
	t.Helper()
	return run(t, ctx, "reading the focus", chromedp.Evaluate[string](
		`(e => e ? (e.id ? "#" + e.id : e.tagName.toLowerCase()) : "nothing")(document.activeElement)`))
}

// header returns the response header name, whatever its case.
func header(resp *network.Response, name string) string {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}
