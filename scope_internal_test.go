package apikey

import "testing"

// commonMethodIndex and commonMethods must agree.
func TestCommonMethodIndex(t *testing.T) {
	for i, m := range commonMethods {
		if got := commonMethodIndex(m); got != i {
			t.Errorf("commonMethodIndex(%q) = %d, want %d", m, got, i)
		}
	}
	if commonMethodIndex("TRACE") != -1 || commonMethodIndex("get") != -1 {
		t.Error("only the exact common methods have an index")
	}
}
