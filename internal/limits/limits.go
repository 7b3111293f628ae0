// Package limits holds what the root package, package limit and package
// redislimit share about a key's limits: the checks of a limit's fields,
// calendar periods, the merge of a key's limits over its environment's
// defaults, and the RateLimit header fields.
package limits

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Spec mirrors apikey.Limit field for field, so that one converts to the
// other (apikey.Limit(s), limits.Spec(l)).
type Spec struct {
	Name    string
	Count   int64
	Per     time.Duration
	Burst   int64
	Period  string
	Zone    string
	Credits bool
	Owner   bool
}

// Bounds of a limit's fields.
const (
	MaxNameLength = 64
	MaxCount      = 1 << 40 // far above any real allowance, far below overflow of Count×cost sums
	MinPer        = time.Millisecond
	MaxPer        = 400 * 24 * time.Hour
	MaxPerKey     = 16 // limits on one key
)

// Kind is what a Spec counts.
type Kind uint8

// The kinds.
const (
	Unlimited Kind = iota // Count < 0: lifts a default of the same name
	Rate                  // Count per Per, refilled continuously, Burst at once
	Quota                 // Count per calendar Period
	Credits               // a balance of Count, refilled each Period if set
)

// Kind says what s counts; it assumes Check passed.
func (s *Spec) Kind() Kind {
	switch {
	case s.Count < 0:
		return Unlimited
	case s.Credits:
		return Credits
	case s.Per > 0:
		return Rate
	}
	return Quota
}

// BurstOrCount is a rate's burst: Burst, or Count when Burst is 0.
func (s *Spec) BurstOrCount() int64 {
	if s.Burst > 0 {
		return s.Burst
	}
	return s.Count
}

// maxTolerance bounds a rate's Burst×Interval, in nanoseconds (ten
// years), so that GCRA's sums stay far from overflow.
const maxTolerance = 10 * 365 * 24 * float64(time.Hour)

// Interval is a rate's emission interval, Per/Count rounded up to the
// nanosecond: rounding up can only admit less, never more.
func (s *Spec) Interval() time.Duration {
	if s.Count <= 0 {
		return 0
	}
	return (s.Per + time.Duration(s.Count) - 1) / time.Duration(s.Count)
}

// Check reports what is wrong with s, naming the field; nil when nothing.
// The error does not wrap ErrInvalid (this package cannot name it): the
// caller wraps it.
func (s *Spec) Check() error {
	if err := checkName(s.Name); err != nil {
		return err
	}
	if s.Count < 0 {
		if s.Per != 0 || s.Burst != 0 || s.Period != "" || s.Zone != "" || s.Credits {
			return fmt.Errorf("limit %q: Count < 0 lifts the limit of that name; leave the other fields zero", s.Name)
		}
		return nil
	}
	if s.Count > MaxCount {
		return fmt.Errorf("limit %q: Count %d is more than %d", s.Name, s.Count, int64(MaxCount))
	}
	if s.Burst < 0 || s.Burst > MaxCount {
		return fmt.Errorf("limit %q: Burst %d is out of range", s.Name, s.Burst)
	}
	switch {
	case s.Per != 0 && (s.Period != "" || s.Credits):
		return fmt.Errorf("limit %q: set Per (a rate) or Period/Credits (a quota, credits), not both", s.Name)
	case s.Per != 0 && (s.Per < MinPer || s.Per > MaxPer):
		return fmt.Errorf("limit %q: Per %v is outside %v to %v", s.Name, s.Per, MinPer, MaxPer)
	case s.Per != 0 && s.Count == 0:
		return fmt.Errorf("limit %q: a rate needs a Count of at least 1", s.Name)
	case s.Per != 0 && float64(s.BurstOrCount())*float64(s.Interval()) > maxTolerance:
		return fmt.Errorf("limit %q: Burst %d takes more than ten years to refill", s.Name, s.BurstOrCount())
	case s.Per == 0 && s.Burst != 0:
		return fmt.Errorf("limit %q: Burst applies to a rate (Per) only", s.Name)
	case s.Per == 0 && s.Period == "" && !s.Credits:
		return fmt.Errorf("limit %q: set Per (a rate), Period (a quota) or Credits", s.Name)
	case s.Period != "" && s.Period != "day" && s.Period != "month":
		return fmt.Errorf("limit %q: Period %q is neither \"day\" nor \"month\"", s.Name, s.Period)
	case s.Zone != "" && s.Period == "":
		return fmt.Errorf("limit %q: Zone applies to a Period only", s.Name)
	}
	if s.Zone == "Local" {
		return fmt.Errorf("limit %q: Zone \"Local\" differs from host to host; name the zone", s.Name)
	}
	if s.Zone != "" {
		if _, err := Location(s.Zone); err != nil {
			return fmt.Errorf("limit %q: Zone: %w", s.Name, err)
		}
	}
	return nil
}

// checkName allows 1 to 64 of a-z, 0-9, '_', '-' and '.': safe as an
// HTTP structured-field string, a Redis key part and a log value.
func checkName(n string) error {
	if n == "" || len(n) > MaxNameLength {
		return fmt.Errorf("limit name %q: want 1 to %d characters", n, MaxNameLength)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("limit name %q: only a-z, 0-9, '_', '-' and '.'", n)
		}
	}
	return nil
}

// CheckDefaults checks a limiter's default limits: CheckAll's checks, and
// a Count for each (Count < 0 only lifts a default, from a key's own).
func CheckDefaults(list []Spec) error {
	for i := range list {
		if list[i].Count < 0 {
			return fmt.Errorf("limit %q: Count < 0 lifts a default; a default needs a Count", list[i].Name)
		}
	}
	return CheckAll(list)
}

// Capacity is what s holds when whole: a rate's burst, else Count.
func (s *Spec) Capacity() int64 {
	if s.Kind() == Rate {
		return s.BurstOrCount()
	}
	return s.Count
}

// LessLeft reports whether r1 of c1 is a smaller share than r2 of c2: the
// limit the RateLimit field names when a request is allowed.
func LessLeft(r1, c1, r2, c2 int64) bool {
	return float64(r1)*float64(c2) < float64(r2)*float64(c1)
}

// CheckAll checks each limit and that no name repeats.
func CheckAll(list []Spec) error {
	if len(list) > MaxPerKey {
		return fmt.Errorf("%d limits; at most %d", len(list), MaxPerKey)
	}
	for i := range list {
		if err := list[i].Check(); err != nil {
			return err
		}
		for j := range i {
			if list[j].Name == list[i].Name {
				return fmt.Errorf("limit %q appears twice", list[i].Name)
			}
		}
	}
	return nil
}

var zones sync.Map // zone name -> *time.Location

// Location loads an IANA time zone once ("" and "UTC": UTC).
func Location(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, l)
	return l, nil
}

// PeriodBounds returns the calendar period ("day" or "month", in zone) that
// holds now: its start and the next one's. A zone that fails to load (it
// passed Check) counts in UTC.
func PeriodBounds(period, zone string, now time.Time) (start, end time.Time) {
	loc, err := Location(zone)
	if err != nil {
		loc = time.UTC
	}
	t := now.In(loc)
	y, m, d := t.Date()
	if period == "month" {
		return midnight(y, m, 1, loc), midnight(y, m+1, 1, loc)
	}
	return midnight(y, m, d, loc), midnight(y, m, d+1, loc)
}

// Period remembers the last calendar period of one quota, so that a
// decision works it out once a period rather than once a request
// (PeriodBounds converts to the zone and builds two dates). Safe for
// concurrent use; the zero value is ready.
type Period struct{ last atomic.Pointer[span] }

type span struct{ start, end int64 }

// Bounds is PeriodBounds in Unix nanoseconds, from the last period when t
// falls in it (a period is the same for every instant it holds).
func (p *Period) Bounds(period, zone string, t int64) (start, end int64) {
	if c := p.last.Load(); c != nil && c.start <= t && t < c.end {
		return c.start, c.end
	}
	s, e := PeriodBounds(period, zone, time.Unix(0, t))
	c := &span{s.UnixNano(), e.UnixNano()}
	p.last.Store(c)
	return c.start, c.end
}

// midnight is the first instant of a day in loc. Where daylight saving
// starts at midnight (America/Santiago, Asuncion, Havana…) 00:00 does not
// exist and time.Date answers an hour of the day before: the day then
// starts at the transition.
func midnight(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	want := time.Date(y, m, d, 12, 0, 0, 0, time.UTC) // the date, normalized
	if ty, tm, td := t.Date(); ty != want.Year() || tm != want.Month() || td != want.Day() {
		_, t = t.ZoneBounds()
	}
	return t
}

// Merge returns defaults with own laid over them: a limit of own replaces
// the default of its name, one with Count < 0 lifts it, the others are
// added. It returns defaults itself when own is empty.
func Merge(defaults []Spec, own []Spec) []Spec {
	if len(own) == 0 {
		return defaults
	}
	out := make([]Spec, 0, len(defaults)+len(own))
	for _, d := range defaults {
		if !named(own, d.Name) {
			out = append(out, d)
		}
	}
	for _, o := range own {
		if o.Count >= 0 {
			out = append(out, o)
		}
	}
	return out
}

func named(list []Spec, name string) bool {
	for i := range list {
		if list[i].Name == name {
			return true
		}
	}
	return false
}

// The header fields of draft-ietf-httpapi-ratelimit-headers (-10 and
// -11): RateLimit-Policy lists the policies, RateLimit the current state
// of one; both are Structured Field lists of strings with parameters.
const (
	HeaderPolicy     = "Ratelimit-Policy" // canonical form of RateLimit-Policy
	HeaderRateLimit  = "Ratelimit"        // canonical form of RateLimit
	HeaderRetryAfter = "Retry-After"
)

// AppendPolicy appends the RateLimit-Policy item of s: "name";q=Count,
// with ;w= the window in seconds for a rate (Per, rounded up) and a
// daily quota; a monthly quota and credits have no fixed window.
func AppendPolicy(b []byte, s *Spec) []byte {
	b = append(b, '"')
	b = append(b, s.Name...)
	b = append(b, `";q=`...)
	b = strconv.AppendInt(b, s.Count, 10)
	switch {
	case s.Per > 0:
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, CeilSeconds(s.Per), 10)
	case s.Period == "day" && !s.Credits:
		b = append(b, ";w=86400"...)
	}
	return b
}

// AppendState appends the RateLimit item of a limit: "name";r=remaining,
// with ;t= the seconds until it is whole again when reset >= 0.
func AppendState(b []byte, name string, remaining int64, reset time.Duration) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, max(remaining, 0), 10)
	if reset >= 0 {
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, CeilSeconds(reset), 10)
	}
	return b
}

// CeilSeconds is d in whole seconds, rounded up; 0 for d <= 0.
func CeilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// RetryAfter is the Retry-After value for a wait of d: whole seconds,
// rounded up, at least 1.
func RetryAfter(d time.Duration) string {
	return strconv.FormatInt(max(CeilSeconds(d), 1), 10)
}
