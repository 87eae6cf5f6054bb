package pcscf

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRxLatencyMetric: the signalling AAR after a registration is timed in
// pcscf_rx_request_duration_seconds{command="AAR"}.
func TestRxLatencyMetric(t *testing.T) {
	pcrf := newTestPCRF(t)
	p, _, _ := startRxPCSCF(t, pcrf)
	g, ok := p.cfg.Registerer.(prometheus.Gatherer)
	if !ok {
		t.Fatalf("registerer %T cannot be gathered", p.cfg.Registerer)
	}
	var count uint64
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		fams, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() != "pcscf_rx_request_duration_seconds" {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "command" && l.GetValue() == "AAR" {
						count = m.GetHistogram().GetSampleCount()
					}
				}
			}
		}
		if count >= 1 {
			return
		}
	}
	t.Errorf("pcscf_rx_request_duration_seconds{command=\"AAR\"} has %d samples after the signalling AAR, want >= 1", count)
}
