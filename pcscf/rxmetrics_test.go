package pcscf

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imscore/imscore/pkg/metrictest"
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
	var count float64
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if count, _ = metrictest.Value(t, g, "pcscf_rx_request_duration_seconds", map[string]string{"command": "AAR"}); count >= 1 {
			return
		}
	}
	t.Errorf("pcscf_rx_request_duration_seconds{command=\"AAR\"} has %v samples after the signalling AAR, want >= 1", count)
}
