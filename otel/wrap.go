package apikeyotel

import (
	"net/http"
	"time"

	"github.com/keygate/apikey"
)

// epoch makes monotonic cheap: time.Since of a time with a monotonic
// reading reads the monotonic clock only.
var epoch = time.Now()

// monotonic is the monotonic clock, as a duration since epoch.
func monotonic() time.Duration { return time.Since(epoch) }

// Wrap is mw.Handler(next), timed: apikey.verification.duration records,
// for each request timed (every one unless Config.DurationEvery says
// otherwise), the time the middleware spent on it and nothing of next's: from Wrap's entry to next's start for a request let through
// (outcome accepted, or anonymous), to the end of the rejection's response
// for one refused (rejected), or to the middleware's return for a request
// whose client went away while the store was asked (canceled).
//
// It adds two readings of the monotonic clock and one histogram record
// per request timed (Config.DurationEvery), and no allocation: the
// per-request state is pooled.
// next gets the ResponseWriter Wrap was given and the request the
// middleware made: Flusher, Hijacker and the rest work as without Wrap.
func (in *Instrumentation) Wrap(mw *apikey.Middleware, next http.Handler) http.Handler {
	if mw == nil || next == nil {
		panic("apikeyotel: Wrap: nil middleware or next handler")
	}
	return &outerHandler{in: in, mw: mw.Handler(&innerHandler{in: in, next: next})}
}

// timedWriter carries a request's start from outerHandler to innerHandler
// through the middleware, which hands next the writer it was given. It is
// pooled: nothing keeps it once outerHandler returns, since innerHandler
// gives next the writer underneath.
type timedWriter struct {
	http.ResponseWriter
	in      *Instrumentation
	start   time.Duration
	reached bool // innerHandler ran
	wrote   bool // the middleware wrote a response
}

func (w *timedWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *timedWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *timedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// outerHandler starts the clock and calls the middleware; it records the
// requests the middleware did not let through.
type outerHandler struct {
	in *Instrumentation
	mw http.Handler
}

func (h *outerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in := h.in
	if !in.sampled() {
		h.mw.ServeHTTP(w, r) // innerHandler passes it through
		return
	}
	tw := in.pool.Get().(*timedWriter)
	tw.ResponseWriter, tw.reached, tw.wrote = w, false, false
	tw.start = monotonic()
	h.mw.ServeHTTP(tw, r)
	if !tw.reached {
		d := monotonic() - tw.start
		out := outRejected
		if !tw.wrote {
			out = outCanceled
		}
		in.duration.Record(r.Context(), d.Seconds(), in.durationOpts[out]...)
	}
	tw.ResponseWriter = nil
	in.pool.Put(tw)
}

// innerHandler stops the clock for a request the middleware let through
// and calls next with the writer underneath.
type innerHandler struct {
	in   *Instrumentation
	next http.Handler
}

func (h *innerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tw, ok := w.(*timedWriter); ok && tw.in == h.in && !tw.reached {
		d := monotonic() - tw.start
		tw.reached = true
		out := outAccepted
		if !authenticated(r.Context()) {
			out = outAnonymous
		}
		h.in.duration.Record(r.Context(), d.Seconds(), h.in.durationOpts[out]...)
		w = tw.ResponseWriter
	}
	h.next.ServeHTTP(w, r)
}
