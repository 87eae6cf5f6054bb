package logging

import "testing"

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		format, level string
		ok            bool
	}{
		{"json", "info", true},
		{"console", "DEBUG", true},
		{"json", "loud", false},
		{"xml", "info", false},
	} {
		log, err := New(tc.format, tc.level)
		if (err == nil) != tc.ok {
			t.Errorf("New(%q, %q) error = %v, want ok=%v", tc.format, tc.level, err, tc.ok)
		}
		if err == nil {
			_ = log.Sync()
		}
	}
}
