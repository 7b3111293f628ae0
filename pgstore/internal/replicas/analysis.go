package replicas

import (
	"net/http"
	"slices"
	"time"
)

// revoked maps the index of a revoked key (in the key list the records
// refer to) to its revocation.
type revoked map[int]revocation

// latestAcceptance returns the latest start of a request accepted (200)
// with a revoked key after its revocation committed, relative to that
// commit, over every key; and how many such requests there were.
func latestAcceptance(recs []Record, rv revoked) (time.Duration, int) {
	var latest time.Duration
	n := 0
	for _, r := range recs {
		rev, ok := rv[r.Key]
		if !ok || r.Status != http.StatusOK || !r.Start.After(rev.commit) {
			continue
		}
		n++
		latest = max(latest, r.Start.Sub(rev.commit))
	}
	return latest, n
}

// wrongRejections counts the 401s a valid key got: a key never revoked,
// or a revoked one answered before its revocation was sent.
func wrongRejections(recs []Record, rv revoked) int64 {
	var n int64
	for _, r := range recs {
		if r.Status != http.StatusUnauthorized {
			continue
		}
		if rev, ok := rv[r.Key]; !ok || r.End.Before(rev.sent) {
			n++
		}
	}
	return n
}

// countStatus counts the records with the status.
func countStatus(recs []Record, status int) int64 {
	var n int64
	for _, r := range recs {
		if r.Status == status {
			n++
		}
	}
	return n
}

// quantile returns the q-quantile of ds (nearest rank), 0 for none.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// latencies returns the durations of the answered records.
func latencies(recs []Record) []time.Duration {
	out := make([]time.Duration, 0, len(recs))
	for _, r := range recs {
		if r.Status != 0 {
			out = append(out, r.End.Sub(r.Start))
		}
	}
	return out
}
