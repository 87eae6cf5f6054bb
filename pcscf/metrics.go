package pcscf

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	contacts prometheus.Gauge
	impus    prometheus.Gauge
	sas      prometheus.Gauge
	expired  prometheus.Counter
	rejected *prometheus.CounterVec
	rx       *prometheus.CounterVec
	rxTime   *prometheus.HistogramVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		contacts: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pcscf_registered_contacts", Help: "Contacts in the P-CSCF contact store."}),
		impus:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "pcscf_registered_impus", Help: "Distinct IMPUs of the stored contacts."}),
		sas:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "pcscf_ipsec_sa_sets", Help: "IPsec SA sets (4 SAs each) installed, pending ones included."}),
		expired:  prometheus.NewCounter(prometheus.CounterOpts{Name: "pcscf_expired_contacts_total", Help: "Contacts removed by the expiry timer."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pcscf_rejected_requests_total", Help: "Requests refused by the P-CSCF, by reason."}, []string{"reason"}),
		rx:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pcscf_rx_requests_total", Help: "Rx requests sent and their results."}, []string{"command", "result"}),
		rxTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pcscf_rx_request_duration_seconds",
			Help:    "Time from sending an AAR or STR to the PCRF to its answer or failure.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"command"}),
	}
	for _, c := range []prometheus.Collector{m.contacts, m.impus, m.sas, m.expired, m.rejected, m.rx, m.rxTime} {
		_ = r.Register(c)
	}
	return m
}

// rxResult counts one Rx exchange (command AAR/STR/ASR, result "2001",
// "error"...).
func (m *metrics) rxResult(command, result string) { m.rx.WithLabelValues(command, result).Inc() }

// rxLatency observes one AAR's or STR's time to its answer.
func (m *metrics) rxLatency(command string, d time.Duration) {
	m.rxTime.WithLabelValues(command).Observe(d.Seconds())
}
