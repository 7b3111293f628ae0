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

func TestPeriodBoundsSantiago(t *testing.T) {
	// 2024-09-08 00:00 did not exist in Santiago: the clocks went from
	// 23:59:59 to 01:00.
	now := time.Date(2024, 9, 8, 3, 30, 0, 0, time.UTC) // 2024-09-07 23:30 -04
	start, end := PeriodBounds("day", "America/Santiago", now)
	if got := end.Sub(now); got != 30*time.Minute {
		t.Fatalf("the day ends in %v, want 30m (start %s, end %s)", got, start, end)
	}
}
