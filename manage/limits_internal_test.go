package manage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/internal/limits"
)

// TestLimitText: the page writes each kind of limit in one line, and
// reads the line back as the same limit.
func TestLimitText(t *testing.T) {
	for _, c := range []struct {
		text  string
		limit apikey.Limit
	}{
		{"100 per minute, burst 200", apikey.Limit{Count: 100, Per: time.Minute, Burst: 200}},
		{"5 per second", apikey.Limit{Count: 5, Per: time.Second}},
		{"10 per 10s", apikey.Limit{Count: 10, Per: 10 * time.Second}},
		{"10 per 1m30s", apikey.Limit{Count: 10, Per: 90 * time.Second}},
		{"10 per 2h", apikey.Limit{Count: 10, Per: 2 * time.Hour}},
		{"10 per 10m", apikey.Limit{Count: 10, Per: 10 * time.Minute}},
		{"10 per 1h10m", apikey.Limit{Count: 10, Per: 70 * time.Minute}},
		{"10 per 250ms", apikey.Limit{Count: 10, Per: 250 * time.Millisecond}},
		{"10000 per month in America/New_York", apikey.Limit{Count: 10000, Period: "month", Zone: "America/New_York"}},
		{"5000 per day, shared by owner", apikey.Limit{Count: 5000, Period: "day", Owner: true}},
		{"500 credits", apikey.Limit{Count: 500, Credits: true}},
		{"500 credits per month in Europe/Paris", apikey.Limit{Count: 500, Credits: true, Period: "month", Zone: "Europe/Paris"}},
		{"unlimited", apikey.Limit{Count: -1}},
	} {
		t.Run(c.text, func(t *testing.T) {
			c.limit.Name = "x"
			assert.Equal(t, c.text, limitText(c.limit))
			got, err := parseLimits("x: " + c.text)
			require.NoError(t, err)
			assert.Equal(t, []apikey.Limit{c.limit}, got)
		})
	}
}

// TestParseLimits: several lines, blank ones and CRLF as a form sends
// them; lines that cannot be read name their number.
func TestParseLimits(t *testing.T) {
	got, err := parseLimits("requests: 100 per minute\r\n\r\n  monthly : 9 per month owner \r\n")
	require.NoError(t, err)
	assert.Equal(t, []apikey.Limit{
		{Name: "requests", Count: 100, Per: time.Minute},
		{Name: "monthly", Count: 9, Period: "month", Owner: true},
	}, got)
	got, err = parseLimits(" \n")
	require.NoError(t, err)
	assert.Empty(t, got)

	for _, line := range []string{
		"requests 100 per minute", // no colon
		"requests:",
		"requests: many per minute",
		"requests: -5 per minute",
		"requests: 100",               // no kind
		"requests: 100 per fortnight", // not a duration
		"requests: 100 per",
		"requests: 100 per minute burst",
		"requests: 100 per minute, burst lots",
		"requests: 100 per day in",
		"requests: 100 per minute and more",
		"requests: shared by owner",
		"requests: owner",
	} {
		_, err := parseLimits("ok: 1 per second\n" + line)
		assert.ErrorContains(t, err, "line 2", line)
	}
}

// FuzzParseLimits: whatever the page is sent, parseLimits does not panic,
// and a valid limit it reads is written back as a line that reads the
// same: the form shows what was saved.
func FuzzParseLimits(f *testing.F) {
	for _, s := range []string{"a: 100 per minute, burst 200", "b: 9 per month in Europe/Paris, shared by owner", "c: 5 credits per day", "d: unlimited", "e: 1 per 1h30m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		list, err := parseLimits(text)
		if err != nil {
			return
		}
		specs := make([]limits.Spec, len(list))
		for i, l := range list {
			specs[i] = limits.Spec(l)
		}
		if limits.CheckAll(specs) != nil {
			return
		}
		again, err := parseLimits(limitLines(list))
		require.NoError(t, err, limitLines(list))
		assert.Equal(t, list, again)
	})
}
