package limits

import (
	"testing"
	"time"
)

// Where daylight saving starts at midnight, a day starts at the
// transition, and every instant lies in its own period.
func TestPeriodBoundsAcrossMidnightTransitions(t *testing.T) {
	for _, zone := range []string{"America/Santiago", "America/Asuncion", "America/Havana", "Atlantic/Azores", "America/Scoresbysund", "Europe/Paris", "UTC", "Asia/Kathmandu"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		for now := time.Date(2020, 1, 1, 0, 30, 0, 0, time.UTC); now.Year() < 2031; now = now.Add(30 * time.Minute) {
			for _, period := range []string{"day", "month"} {
				start, end := PeriodBounds(period, zone, now)
				if now.Before(start) || !now.Before(end) {
					t.Fatalf("%s %s at %s: [%s, %s) does not hold it", zone, period, now.In(loc), start.In(loc), end.In(loc))
				}
			}
		}
	}
}

// Period answers what PeriodBounds answers, at every instant, the
// midnight transitions included, whether time goes forward or jumps back.
func TestPeriodRemembersBounds(t *testing.T) {
	for _, zone := range []string{"America/Santiago", "America/Havana", "Europe/Paris", "Asia/Kathmandu"} {
		for _, period := range []string{"day", "month"} {
			var p Period
			check := func(now time.Time) {
				start, end := p.Bounds(period, zone, now.UnixNano())
				ws, we := PeriodBounds(period, zone, now)
				if start != ws.UnixNano() || end != we.UnixNano() {
					t.Fatalf("%s %s at %s: [%d, %d), want [%s, %s)", zone, period, now, start, end, ws, we)
				}
			}
			for now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC); now.Year() < 2026; now = now.Add(17 * time.Minute) {
				check(now)
				check(now.Add(-40 * 24 * time.Hour)) // back, and forward again next
			}
		}
	}
}

func TestPeriodBoundsSantiago(t *testing.T) {
	// 2024-09-08 00:00 did not exist in Santiago: the clocks went from
	// 23:59:59 to 01:00.
	now := time.Date(2024, 9, 8, 3, 30, 0, 0, time.UTC) // 2024-09-07 23:30 -04
	start, end := PeriodBounds("day", "America/Santiago", now)
	if got := end.Sub(now); got != 30*time.Minute {
		t.Fatalf("the day ends in %v, want 30m (start %s, end %s)", got, start, end)
	}
}
