package icscf

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	cxResults   *prometheus.CounterVec   // command, result
	cxDuration  *prometheus.HistogramVec // command
	sipResults  *prometheus.CounterVec   // method, code
	sipDuration *prometheus.HistogramVec // method
	failovers   prometheus.Counter
	concealed   *prometheus.CounterVec // answer

	overloadRejections *prometheus.CounterVec // kind
	pendingRegister    prometheus.GaugeFunc
	admissionLimit     prometheus.GaugeFunc
}

// newMetrics builds the collectors; pendingRegister reads the number of
// REGISTER transactions in progress, admissionLimit their limit now.
func newMetrics(reg prometheus.Registerer, pendingRegister, admissionLimit func() float64) *metrics {
	m := &metrics{
		cxResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "icscf_cx_answers_total",
			Help: "Cx answers by command (UAR, LIR) and result: Result-Code, e<Experimental-Result-Code>, timeout or unreachable.",
		}, []string{"command", "result"}),
		cxDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "icscf_cx_request_duration_seconds",
			Help:    "Time from sending a UAR/LIR to its answer or failure.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"command"}),
		sipResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "icscf_sip_responses_total",
			Help: "Final SIP responses sent upstream by method and status code.",
		}, []string{"method", "code"}),
		sipDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "icscf_sip_request_duration_seconds",
			Help:    "Time from receiving a request to sending its final response.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "icscf_scscf_failovers_total",
			Help: "S-CSCFs given up on (timeout, transport failure or 5xx) before trying another (TS 24.229 §5.3.1.3).",
		}),
		concealed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "icscf_concealed_answers_total",
			Help: "REGISTERs of identities the HSS does not know answered like a known user's (conceal.go), by answer: 401 decoy challenge, 403 failed decoy, throttled (403 with Retry-After).",
		}, []string{"answer"}),
		overloadRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "icscf_overload_rejections_total",
			Help: "REGISTERs answered 503 at once because too many REGISTER transactions were pending (icscf_register_admission_limit), by kind: initial, or challenge_answer (an Authorization with a response, or a de-registration).",
		}, []string{"kind"}),
		pendingRegister: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "icscf_pending_register",
			Help: "REGISTER transactions in progress: admitted and without final response sent yet.",
		}, pendingRegister),
		admissionLimit: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "icscf_register_admission_limit",
			Help: "REGISTER transactions in progress from which an initial REGISTER is answered 503 (challenge answers: twice as many); it follows their latency with --register-admission adaptive; 0: no limit.",
		}, admissionLimit),
	}
	// Both kinds exist from the start, so a rate() over them works before
	// the first rejection.
	m.overloadRejections.WithLabelValues(kindInitial)
	m.overloadRejections.WithLabelValues(kindChallengeAnswer)
	if reg != nil {
		reg.MustRegister(m.cxResults, m.cxDuration, m.sipResults, m.sipDuration, m.failovers, m.concealed,
			m.overloadRejections, m.pendingRegister, m.admissionLimit)
	}
	return m
}

var knownMethods = map[string]bool{
	"REGISTER": true, "INVITE": true, "MESSAGE": true, "SUBSCRIBE": true, "NOTIFY": true,
	"OPTIONS": true, "BYE": true, "UPDATE": true, "PRACK": true, "INFO": true, "REFER": true,
	"PUBLISH": true, "CANCEL": true, "ACK": true,
}

func methodLabel(m string) string {
	if knownMethods[m] {
		return m
	}
	return "other"
}

func codeLabel(c int) string { return strconv.Itoa(c) }
