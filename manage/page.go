package manage

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/apikey"
)

//go:embed templates/*.html
var templateFS embed.FS

// pageNames are the pages, each a template of its own on the layout.
var pageNames = []string{"list", "new", "key", "secret", "confirm", "error"}

// parsePages parses every page with the layout.
func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout").ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if pages[name], err = t.ParseFS(templateFS, "templates/"+name+".html"); err != nil {
			return nil, err
		}
	}
	if len(assets) != 2 {
		return nil, errors.New("the embedded assets are missing")
	}
	return pages, nil
}

// pageData is what a page shows.
type pageData struct {
	Title, Heading string
	CSS, JS, Path  string
	Operator       bool
	Error          string

	// The list.
	Keys                 []keyRow
	UsageLive, UsageTest uint64
	Next                 string

	// A key and its forms.
	Key    keyRow
	Form   formValues
	Scopes []scopeOption
	Other  string // scopes the key holds that the page does not offer
	Grace  string // hours, as entered

	// The key's limits: effective ones with what remains (Config.Limits),
	// or its own.
	Limits          []limitRow
	LimitsEffective bool
	LimitsNote      string

	Secret string
}

// formValues are a form's fields as entered.
type formValues struct {
	Name, Environment, Expires, Owner string
	Limits                            string // a limit a line (parseLimits)
}

// limitRow is a limit as the page shows it.
type limitRow struct {
	Name, Kind, Text string
	Default          bool // the environment's, not the key's own
	Remaining        int64
	Reset, ResetISO  string
}

// limitRows returns k's limits as the page shows them, and whether they
// are the effective ones with what remains. A failing Config.Limits is
// logged, and the key's own limits are shown with note.
func (h *Handler) limitRows(r *http.Request, k *apikey.Key) (rows []limitRow, effective bool, note string) {
	kl, err := h.limitStates(r.Context(), k)
	if err != nil {
		h.logError(r, "manage: Config.Limits failed", err)
		kl, note = ownLimits(k), "What remains of these limits cannot be read now."
	}
	for _, s := range kl.Limits {
		row := limitRow{Name: s.Name, Kind: s.Kind, Text: limitText(s.limit), Default: s.Default, Reset: "Never"}
		if s.Remaining != nil {
			row.Remaining = *s.Remaining
		}
		if s.ResetAt != nil {
			row.Reset = s.ResetAt.UTC().Format("2006-01-02 15:04:05 UTC")
			row.ResetISO = s.ResetAt.UTC().Format(time.RFC3339)
		}
		rows = append(rows, row)
	}
	return rows, kl.Effective, note
}

// scopeOption is a scope's checkbox.
type scopeOption struct {
	Value   apikey.Scope
	Checked bool
}

// keyRow is a key as the page shows it.
type keyRow struct {
	ID, Name, Hint, Scopes, Environment, State, Owner string
	Created, CreatedISO                               string
	LastUsed, LastUsedISO                             string
	Expires, ExpiresISO                               string
	Requests                                          uint64
	Disabled, Editable                                bool
	RolledTo, RolledFrom                              string
}

// row returns k as the page shows it.
func (h *Handler) row(k *apikey.Key) keyRow {
	row := keyRow{
		ID: k.ID, Name: k.Name, Hint: k.Hint, Scopes: scopeList(k.Scopes), Environment: k.Environment.String(),
		State: k.State(h.clock()).String(), Owner: k.Owner, Requests: k.Requests, Disabled: k.Disabled,
		Editable: k.RevokedAt.IsZero() && k.RolledTo == "", RolledTo: k.RolledTo, RolledFrom: k.RolledFrom,
		Created: k.CreatedAt.UTC().Format("2006-01-02"), CreatedISO: k.CreatedAt.UTC().Format(time.RFC3339),
		LastUsed: "Never", Expires: "Never",
	}
	if !k.LastUsedAt.IsZero() {
		row.LastUsed = k.LastUsedAt.UTC().Format("2006-01-02 15:04 UTC")
		row.LastUsedISO = k.LastUsedAt.UTC().Format(time.RFC3339)
	}
	if !k.ExpiresAt.IsZero() {
		row.Expires = "End of " + lastDay(k.ExpiresAt)
		row.ExpiresISO = k.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return row
}

// lastDay is the last day (UTC) on which a key that expires at t works:
// the date the expiry field shows.
func lastDay(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Add(-time.Nanosecond).UTC().Format(time.DateOnly)
}

// parseDay reads the expiry field: the key stops working at the end of
// the day, UTC; "" is no expiry.
func parseDay(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, badInput("Enter the expiry date as YYYY-MM-DD, or leave it empty.")
	}
	return d.AddDate(0, 0, 1), nil
}

// data returns the fields every page has.
func (h *Handler) data(c Caller, heading string) *pageData {
	return &pageData{Title: h.title, Heading: heading, CSS: h.assetURL("manage.css"), JS: h.assetURL("manage.js"), Path: h.path, Operator: c.Operator}
}

// options returns the checkboxes of the offered scopes, checked for
// those in held, and the held scopes not offered.
func (h *Handler) options(held []apikey.Scope) ([]scopeOption, string) {
	opts := make([]scopeOption, len(h.offered))
	for i, s := range h.offered {
		opts[i] = scopeOption{Value: s, Checked: slices.Contains(held, s)}
	}
	var other []apikey.Scope
	for _, s := range held {
		if !h.offers(s) {
			other = append(other, s)
		}
	}
	if len(other) == 0 {
		return opts, ""
	}
	return opts, scopeList(other)
}

// render writes a page; a template that fails is a 500.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, d *pageData) {
	var buf bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&buf, "layout", d); err != nil {
		h.logError(r, "manage: rendering the "+page+" page", err)
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage answers status with a page saying msg.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	d := h.data(Caller{}, http.StatusText(status))
	d.Error = msg
	h.render(w, r, status, "error", d)
}

// pageFail answers an error of the store or of the input on a page that
// has no form to show it in.
func (h *Handler) pageFail(w http.ResponseWriter, r *http.Request, err error) {
	st, _, detail := status(err)
	switch st {
	case http.StatusNotFound:
		detail = "There is no such API key."
	case http.StatusInternalServerError:
		h.logError(r, "manage: the store failed", err)
		detail = "Something went wrong; please try again."
	}
	h.errorPage(w, r, st, detail)
}

// parseForm reads a form of at most 64 KiB.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &inputError{status: http.StatusRequestEntityTooLarge, detail: "The form is too large."}
		}
		return badInput("The form could not be read.")
	}
	return nil
}

// pageList: GET / lists the keys, a page at a time.
func (h *Handler) pageList(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, false)
	if !ok {
		return
	}
	f, err := h.listFilter(r, c)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	keys, next, err := h.page(r, f)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	t, err := h.usage(r, f.Owner)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	d := h.data(c, "")
	d.UsageLive, d.UsageTest = t.Live, t.Test
	for _, k := range keys {
		d.Keys = append(d.Keys, h.row(k))
	}
	if next != "" {
		q := r.URL.Query()
		q.Set("after", next)
		d.Next = h.path + "/?" + q.Encode()
	}
	h.render(w, r, http.StatusOK, "list", d)
}

// pageNew: GET /new, the form of a new key.
func (h *Handler) pageNew(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, false)
	if !ok {
		return
	}
	d := h.data(c, "New API key")
	d.Form.Environment = "live"
	d.Scopes, _ = h.options(nil)
	h.render(w, r, http.StatusOK, "new", d)
}

// formScopes reads the checked scopes, which must be offered.
func (h *Handler) formScopes(r *http.Request) ([]apikey.Scope, error) {
	var out []apikey.Scope
	for _, s := range r.PostForm["scope"] {
		if !h.offers(apikey.Scope(s)) {
			return nil, badInput("The scope %q is not one of those offered.", s)
		}
		if !slices.Contains(out, apikey.Scope(s)) {
			out = append(out, apikey.Scope(s))
		}
	}
	return out, nil
}

// formName reads and checks the name field.
func formName(r *http.Request) (string, error) {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	switch {
	case name == "":
		return "", badInput("Give the key a name.")
	case len(name) > 200:
		return "", badInput("The name is too long: at most 200 characters.")
	}
	return name, nil
}

// pageCreate: POST /keys creates a key and shows its secret, once.
func (h *Handler) pageCreate(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, false)
	if !ok {
		return
	}
	if err := parseForm(w, r); err != nil {
		h.pageFail(w, r, err)
		return
	}
	form := formValues{
		Name: r.PostForm.Get("name"), Environment: r.PostForm.Get("environment"),
		Expires: r.PostForm.Get("expires"), Owner: strings.TrimSpace(r.PostForm.Get("owner")),
	}
	spec, err := h.newSpec(r, c)
	if err == nil {
		var k *apikey.Key
		var secret apikey.Secret
		if k, secret, err = h.create(r, c, spec); err == nil {
			d := h.data(c, "API key created")
			d.Key, d.Secret = h.row(k), secret.Reveal()
			h.render(w, r, http.StatusOK, "secret", d)
			return
		}
	}
	st, _, detail := status(err)
	if st != http.StatusBadRequest {
		h.pageFail(w, r, err)
		return
	}
	d := h.data(c, "New API key")
	d.Form, d.Error = form, detail
	scopes, _ := h.formScopes(r)
	d.Scopes, _ = h.options(scopes)
	h.render(w, r, http.StatusBadRequest, "new", d)
}

// newSpec reads the form of a new key.
func (h *Handler) newSpec(r *http.Request, c Caller) (apikey.KeySpec, error) {
	var spec apikey.KeySpec
	var err error
	if spec.Name, err = formName(r); err != nil {
		return spec, err
	}
	switch r.PostForm.Get("environment") {
	case "", "live":
		spec.Environment = apikey.EnvLive
	case "test":
		spec.Environment = apikey.EnvTest
	default:
		return spec, badInput("Choose the live or the test environment.")
	}
	if spec.Scopes, err = h.formScopes(r); err != nil {
		return spec, err
	}
	if spec.ExpiresAt, err = parseDay(r.PostForm.Get("expires")); err != nil {
		return spec, err
	}
	if !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(h.clock()) {
		return spec, badInput("The expiry date is in the past.")
	}
	if c.Operator {
		spec.Owner = strings.TrimSpace(r.PostForm.Get("owner"))
	}
	return spec, nil
}

// keyPage renders a key's page with its forms filled as the key is, then
// as entered (nil: nothing entered), and msg in #error.
func (h *Handler) keyPage(w http.ResponseWriter, r *http.Request, c Caller, status int, k *apikey.Key, msg string, entered func(*pageData)) {
	d := h.data(c, k.Name)
	d.Key, d.Error = h.row(k), msg
	d.Form = formValues{Name: k.Name, Expires: lastDay(k.ExpiresAt), Limits: limitLines(k.Limits)}
	d.Scopes, d.Other = h.options(k.Scopes)
	d.Limits, d.LimitsEffective, d.LimitsNote = h.limitRows(r, k)
	d.Grace = strconv.FormatInt(int64(h.grace/time.Hour), 10)
	if entered != nil {
		entered(d)
	}
	h.render(w, r, status, "key", d)
}

// pageKey: GET /keys/{id}, a key and its forms.
func (h *Handler) pageKey(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, false)
	if !ok {
		return
	}
	k, err := h.get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	h.keyPage(w, r, c, http.StatusOK, k, "", nil)
}

// redirectToKey answers 303 to the key's page.
func (h *Handler) redirectToKey(w http.ResponseWriter, r *http.Request, id string) {
	http.Redirect(w, r, h.path+"/keys/"+url.PathEscape(id), http.StatusSeeOther)
}

// formFailed shows an error on the key's page: a 400 or 409 with the
// form as entered, else an error page.
func (h *Handler) formFailed(w http.ResponseWriter, r *http.Request, c Caller, err error, entered func(*pageData)) {
	st, _, detail := status(err)
	if st != http.StatusBadRequest && st != http.StatusConflict && st != http.StatusRequestEntityTooLarge {
		h.pageFail(w, r, err)
		return
	}
	k, gerr := h.get(r.Context(), c, r.PathValue("id"))
	if gerr != nil {
		h.pageFail(w, r, gerr)
		return
	}
	h.keyPage(w, r, c, st, k, detail, entered)
}

// pageSave: POST /keys/{id} saves the name, scopes and expiry.
func (h *Handler) pageSave(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, false)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if err := parseForm(w, r); err != nil {
		h.formFailed(w, r, c, err, nil)
		return
	}
	entered := func(d *pageData) {
		d.Form.Name, d.Form.Expires = r.PostForm.Get("name"), r.PostForm.Get("expires")
		checked, _ := h.formScopes(r)
		for i := range d.Scopes {
			d.Scopes[i].Checked = slices.Contains(checked, d.Scopes[i].Value)
		}
	}
	name, err := formName(r)
	var checked []apikey.Scope
	if err == nil {
		checked, err = h.formScopes(r)
	}
	expires := r.PostForm.Get("expires")
	var at time.Time
	if err == nil {
		at, err = parseDay(expires)
	}
	if err != nil {
		h.formFailed(w, r, c, err, entered)
		return
	}
	_, err = h.update(r, c, id, "update", func(k *apikey.Key) error {
		k.Name = name
		// The scopes the page does not offer are kept as they are.
		scopes := slices.Clone(checked)
		for _, s := range k.Scopes {
			if !h.offers(s) && !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
		k.Scopes = scopes
		if expires != lastDay(k.ExpiresAt) { // unchanged: kept to the second
			if !at.IsZero() && !at.After(h.clock()) {
				return badInput("The expiry date is in the past.")
			}
			k.ExpiresAt = at
		}
		return nil
	})
	if err != nil {
		h.formFailed(w, r, c, err, entered)
		return
	}
	h.redirectToKey(w, r, id)
}

// pageRoll: POST /keys/{id}/roll rolls the key and shows the successor's
// secret, once.
func (h *Handler) pageRoll(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, false)
	if !ok {
		return
	}
	if err := parseForm(w, r); err != nil {
		h.formFailed(w, r, c, err, nil)
		return
	}
	grace := h.grace
	if s := strings.TrimSpace(r.PostForm.Get("grace_hours")); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > int64(maxGrace/time.Hour) {
			h.formFailed(w, r, c, badInput("The grace period is a whole number of hours from 0 to %d.", int64(maxGrace/time.Hour)),
				func(d *pageData) { d.Grace = s })
			return
		}
		grace = time.Duration(n) * time.Hour
	}
	next, secret, _, err := h.roll(r, c, r.PathValue("id"), grace)
	if err != nil {
		h.formFailed(w, r, c, err, nil)
		return
	}
	d := h.data(c, "Key rolled")
	d.Key, d.Secret = h.row(next), secret.Reveal()
	h.render(w, r, http.StatusOK, "secret", d)
}

// pageRevoke: POST /keys/{id}/revoke asks for a confirmation, then
// revokes with confirm=yes.
func (h *Handler) pageRevoke(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, false)
	if !ok {
		return
	}
	if err := parseForm(w, r); err != nil {
		h.formFailed(w, r, c, err, nil)
		return
	}
	id := r.PathValue("id")
	if r.PostForm.Get("confirm") != "yes" {
		k, err := h.get(r.Context(), c, id)
		if err != nil {
			h.pageFail(w, r, err)
			return
		}
		d := h.data(c, fmt.Sprintf("Revoke %s", k.Name))
		d.Key = h.row(k)
		h.render(w, r, http.StatusOK, "confirm", d)
		return
	}
	if _, err := h.revoke(r, c, id); err != nil {
		h.formFailed(w, r, c, err, nil)
		return
	}
	http.Redirect(w, r, h.path+"/", http.StatusSeeOther)
}

// pageDisable: POST /keys/{id}/disable.
func (h *Handler) pageDisable(w http.ResponseWriter, r *http.Request) { h.pageSetDisabled(w, r, true) }

// pageEnable: POST /keys/{id}/enable.
func (h *Handler) pageEnable(w http.ResponseWriter, r *http.Request) { h.pageSetDisabled(w, r, false) }

func (h *Handler) pageSetDisabled(w http.ResponseWriter, r *http.Request, disabled bool) {
	c, ok := h.who(w, r, false)
	if !ok {
		return
	}
	if _, err := h.setDisabled(r, c, r.PathValue("id"), disabled); err != nil {
		h.formFailed(w, r, c, err, nil)
		return
	}
	h.redirectToKey(w, r, r.PathValue("id"))
}

// pageLimits: POST /keys/{id}/limits sets the key's own limits, a line
// each; operators only.
func (h *Handler) pageLimits(w http.ResponseWriter, r *http.Request) {
	c, ok := h.who(w, r, false)
	if !ok {
		return
	}
	if err := parseForm(w, r); err != nil {
		h.formFailed(w, r, c, err, nil)
		return
	}
	text := r.PostForm.Get("limits")
	_, err := h.update(r, c, r.PathValue("id"), "update", func(k *apikey.Key) error {
		if !c.Operator {
			return errOperatorOnly
		}
		list, err := parseLimits(text)
		if err != nil {
			return err
		}
		k.Limits = list
		return nil
	})
	if err != nil {
		h.formFailed(w, r, c, err, func(d *pageData) { d.Form.Limits = text })
		return
	}
	h.redirectToKey(w, r, r.PathValue("id"))
}
