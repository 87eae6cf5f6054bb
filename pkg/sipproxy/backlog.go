package sipproxy

// Receive-queue admission (ADR 0003, "Update: admission at the socket").
// A function that admits more than it can read does not queue the excess
// in its memory, where the latency-following limits see it, but in its
// sockets' receive queues, where nothing did: at 1.5× capacity the kernel
// dropped hundreds of datagrams per second (end-to-end ACKs and BYEs
// among them, which no transaction retransmits in time) and calls were
// left without answers. Here every new request read from a UDP socket
// whose queue holds more than Limits.Backlog of its buffer is
// answered 503 with Retry-After (RFC 3261 §21.5.4) on the read goroutine,
// statelessly, before sipgo parses it or a transaction exists: the
// cheapest answer there is, so that refusing the excess frees the reader
// for the work already admitted, and the queue drains.

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/imsheader"
)

// backlogger reports a socket's receive queue: the bytes held and the
// limit beyond which the kernel drops datagrams (rawsock.PacketConn).
type backlogger interface {
	Backlog() (queued, limit int, err error)
}

// statelessTagPrefix is the start of the To tags of this proxy's
// stateless answers: "sl" and 8 random hex digits, unique per process, so
// that the ACK of an INVITE answered statelessly here is recognised (and
// not the ACK of another element's stateless answer that this proxy
// relayed, which belongs to a transaction here).
func statelessTagPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "sl" + hex.EncodeToString(b[:])
}

// isStatelessTag reports whether m's To tag is one of this proxy's
// stateless answers.
func (p *Proxy) isStatelessTag(m *wireMsg) bool {
	f := m.first("to")
	if f == nil || f.canon == "" {
		return false
	}
	return strings.HasPrefix(headerTag(f.canon), p.slTag)
}

// headerTag is the tag parameter of a canonical From or To value ("" if
// none): the parameters after the name-addr's ">", or after the URI of an
// addr-spec, whose own ';' parameters are then the header's (RFC 3261
// §20.10).
func headerTag(v string) string {
	if i := strings.LastIndexByte(v, '>'); i >= 0 {
		v = v[i+1:]
	}
	for v != "" {
		i := strings.IndexByte(v, ';')
		if i < 0 {
			return ""
		}
		v = v[i+1:]
		param := v
		if j := strings.IndexByte(param, ';'); j >= 0 {
			param = param[:j]
		}
		name, value, _ := strings.Cut(param, "=")
		if strings.EqualFold(trimWS(name), "tag") {
			return trimWS(value)
		}
	}
	return ""
}

// isNewRequest reports whether m is new work: a request outside any
// dialog (no To tag) other than ACK and CANCEL, which end work already
// admitted.
func (m *wireMsg) isNewRequest() bool {
	if !m.request || m.method == "ACK" || m.method == "CANCEL" {
		return false
	}
	f := m.first("to")
	return f != nil && f.canon != "" && headerTag(f.canon) == ""
}

// spentWork weighs the work the network has already done for m, the
// request the backlog would refuse: its Via entries (each an element it
// passed), plus one for credentials answering a challenge (a Digest
// Authorization with a non-empty response, as pkg/digest parses it: a
// MAR and an HSS look-up were spent on the challenge; an IMS UE's first
// REGISTER carries response="", TS 24.229 §5.1.1.2.1).
func (m *wireMsg) spentWork() int {
	w := m.viaHops
	if f := m.first("authorization"); f != nil {
		if h, err := digest.Parse(f.value); err == nil && h.Response() != "" {
			w++
		}
	}
	return w
}

// backlogOver reads q's receive queue and reports whether it is over
// Limits.Backlog times the request's spent work (spentWork, at most
// maxBacklogHops): the more elements a request has passed, the more work
// refusing it wastes, so a request straight from a UA (one Via) is
// refused first, one from another proxy or answering a challenge only on
// a longer queue — a P-CSCF refuses its UEs' new calls before the calls
// the network brings to them, an S-CSCF its originating INVITEs before
// the terminating ones, an I-CSCF initial REGISTERs before challenge
// answers. An error reading the queue admits (the check is a safeguard,
// not a gate).
func (p *Proxy) backlogOver(q backlogger, m *wireMsg) (queued, limit int, over bool) {
	if p.limits.Backlog < 0 {
		return 0, 0, false
	}
	queued, limit, err := q.Backlog()
	if err != nil || limit <= 0 || float64(queued) <= p.limits.Backlog*float64(limit) {
		return queued, limit, false // the usual case: the weight is not needed
	}
	share := p.limits.Backlog * float64(min(max(m.spentWork(), 1), maxBacklogHops))
	return queued, limit, float64(queued) > min(share, max(p.limits.Backlog, maxBacklogShare))*float64(limit)
}

// maxBacklogHops caps the weight that raises a request's backlog limit,
// and maxBacklogShare the share it can raise it to (unless Limits.Backlog
// itself is higher): past half the buffer, what was admitted before the
// refusals began needs the rest.
const (
	maxBacklogHops  = 4
	maxBacklogShare = 0.5
)

// refuseOverload is the verdict on a new request read while the receive
// queue holds queued of limit bytes: 503 with Retry-After and, unless
// Config.HideWarnings, a Warning saying why.
func (p *Proxy) refuseOverload(m *wireMsg, src net.Addr, queued, limit int) verdict {
	v := verdict{act: actReject, request: true, code: 503, overload: true}
	extra := []string{"Retry-After: " + strconv.Itoa(p.limits.BacklogRetryAfter) + "\r\n"}
	if !p.cfg.HideWarnings {
		extra = append(extra, "Warning: 399 "+imsheader.HostRef(p.cfg.Host)+" "+
			imsheader.Quote("overload: receive queue "+strconv.Itoa(queued>>10)+" KiB of "+strconv.Itoa(limit>>10)+" KiB")+"\r\n")
	}
	v.resp, v.dest = m.rejection(503, "", p.slTag, src, extra...)
	p.backlog.note(m.method, queued, limit)
	return v
}

// backlogRefusals counts the requests refused for the receive queue
// (sip_overload_refused_total) and logs them at most once per interval.
type backlogRefusals struct {
	log      *zap.Logger
	interval time.Duration
	counter  *prometheus.CounterVec

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func newBacklogRefusals(log *zap.Logger, interval time.Duration, reg prometheus.Registerer) *backlogRefusals {
	return &backlogRefusals{log: log, interval: interval,
		counter: counterVec(reg, log, prometheus.CounterOpts{
			Name: "sip_overload_refused_total",
			Help: "New requests answered 503 where they were read because the socket's receive queue was over the backlog limit, by method.",
		}, "method")}
}

// note counts one refusal of a request of method (a string on the read
// buffer: not kept) and logs it unless one was logged less than an
// interval ago.
func (b *backlogRefusals) note(method string, queued, limit int) {
	label := "other"
	if m, ok := knownMethods[method]; ok {
		label = m
	}
	b.counter.WithLabelValues(label).Inc()
	now := time.Now()
	b.mu.Lock()
	if !b.last.IsZero() && now.Sub(b.last) < b.interval {
		b.suppressed++
		b.mu.Unlock()
		return
	}
	suppressed := b.suppressed
	b.last, b.suppressed = now, 0
	b.mu.Unlock()
	b.log.Warn("overload: new requests refused with 503, the receive queue is over its limit",
		zap.Int("queued_bytes", queued), zap.Int("buffer_bytes", limit),
		zap.String("method", label), zap.Int("suppressed", suppressed), zap.Duration("quiet_for", b.interval))
}

// knownMethods are the method labels of sip_overload_refused_total (any
// other: "other", so that senders cannot grow the label set).
var knownMethods = map[string]string{}

func init() {
	for _, m := range []string{"INVITE", "REGISTER", "SUBSCRIBE", "NOTIFY", "MESSAGE", "OPTIONS",
		"PUBLISH", "REFER", "INFO", "UPDATE", "PRACK", "BYE"} {
		knownMethods[m] = m
	}
}
