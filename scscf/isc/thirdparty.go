package isc

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/ifc"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
)

// Content types of third-party REGISTER bodies (TS 24.229 §5.4.1.7,
// §7.6 and Annex D).
const (
	ContentType3GPPIMSXML = "application/3gpp-ims+xml"
	ContentTypeMessageSIP = "message/sip"
)

// ThirdPartyConfig tunes third-party registration.
type ThirdPartyConfig struct {
	// Timeout bounds one third-party REGISTER transaction; no final
	// response within it counts as a failed AS. Default 10s.
	Timeout time.Duration
}

// ThirdPartyRegistrar sends third-party REGISTER requests to the
// application servers whose iFCs match a registration, re-registration or
// de-registration (TS 24.229 §5.4.1.7, TS 29.228 Annex B.2.2/C, TS 23.218
// §6.3).
//
// For each change it takes the service profile of the IMPU (the To of the
// REGISTER, else the set's AOR), evaluates its iFCs with Method REGISTER,
// session case ORIGINATING, Registered true and RegistrationType
// INITIAL_REGISTRATION / RE-REGISTRATION / DE-REGISTRATION, and sends one
// REGISTER per matching AS (the first iFC of each ServerName):
// Request-URI the AS ServerName, To the IMPU, From and Contact the
// S-CSCF's Server-Name, Expires the registration's (0 for
// de-registration), P-Charging-Vector (icid of the UE's REGISTER, else a
// new one; orig-ioi the home domain), and as body the ServiceInfo in
// application/3gpp-ims+xml and, when the iFC asks, the incoming REGISTER
// and/or its 200 as message/sip (multipart/mixed when several).
//
// A REGISTER that times out, cannot be sent or gets 408 or 5xx, for a
// registration or re-registration with DefaultHandling
// SESSION_TERMINATED, calls the deregister callback (network-initiated
// de-registration, TS 24.229 §5.4.1.7 last steps); SESSION_CONTINUED
// only logs.
type ThirdPartyRegistrar struct {
	s          *Router
	cfg        ThirdPartyConfig
	log        *zap.Logger
	deregister func(impu, reason string)
	eval       *ifc.Evaluator

	mu      sync.Mutex
	dialogs map[string]*tpDialog // AS + "\x00" + IMPU -> Call-ID/CSeq

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once

	sent *prometheus.CounterVec
}

type tpDialog struct {
	callID string
	cseq   uint32
}

// NewThirdPartyRegistrar builds the third-party registrar of the S-CSCF
// whose session router is s: it reads the profiles through s's
// Registrar, evaluates the iFCs with s's shared iFC sets and sends from
// s's Sender. deregister (may be nil) is called, on a goroutine of the
// registrar, when an AS with DefaultHandling SESSION_TERMINATED fails;
// pass the S-CSCF's NetworkDeregister. It registers
// scscf_third_party_registers_total{type,result} with s's Registry.
func NewThirdPartyRegistrar(s *Router, cfg ThirdPartyConfig, deregister func(impu, reason string)) (*ThirdPartyRegistrar, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	tp := &ThirdPartyRegistrar{s: s, cfg: cfg, log: s.log.Named("third-party"), deregister: deregister, dialogs: map[string]*tpDialog{}}
	tp.eval = ifc.NewEvaluator(func(err error) { tp.log.Warn("iFC evaluation", zap.Error(err)) })
	tp.sent = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scscf_third_party_registers_total",
		Help: "Third-party REGISTERs sent, by registration type (initial, re, de) and result (ok, error_response, no_answer)."},
		[]string{"type", "result"})
	if err := s.cfg.Registry.Register(tp.sent); err != nil {
		return nil, err
	}
	tp.ctx, tp.cancel = context.WithCancel(context.Background())
	return tp, nil
}

// Close cancels the REGISTERs in flight and waits for them.
func (tp *ThirdPartyRegistrar) Close() {
	tp.closed.Do(func() {
		tp.cancel()
		tp.wg.Wait()
	})
}

// AfterRegister is called by the registrar after it answered a REGISTER
// with 200 (req the REGISTER as received, res the 200 sent; both may be
// nil) and emitted ev: registered → INITIAL_REGISTRATION, refreshed →
// RE-REGISTRATION, deregistered → DE-REGISTRATION when no binding is
// left (removing one of several bindings leaves the IMPU registered and
// sends nothing). Other kinds are ignored. It does not block.
func (tp *ThirdPartyRegistrar) AfterRegister(ev binding.Event, req *sip.Request, res *sip.Response) {
	var rt userdata.RegistrationType
	switch ev.Kind {
	case binding.EventRegistered:
		rt = userdata.RegistrationInitial
	case binding.EventRefreshed:
		rt = userdata.RegistrationReRegistration
	case binding.EventDeregistered:
		if len(ev.After.Contacts) > 0 {
			return
		}
		rt = userdata.RegistrationDeRegistration
	default:
		return
	}
	impu := ev.After.AOR
	if req != nil && req.To() != nil {
		impu = binding.CanonURI(req.To().Address.String())
	}
	tp.dispatch(ev, impu, rt, req, res)
}

// OnRegistrationChange handles the network-side de-registrations: expiry
// of the last binding (TS 24.229 §5.4.1.4 is not involved; the S-CSCF
// de-registers on expiry and informs the ASes) and RTR or an S-CSCF
// initiated de-registration (binding.EventTerminated, TS 24.229 §5.4.1.5), with a
// DE-REGISTRATION third-party REGISTER (Expires 0). UE-initiated changes
// come through AfterRegister. It does not block.
func (tp *ThirdPartyRegistrar) OnRegistrationChange(ev binding.Event) {
	if (ev.Kind != binding.EventExpired && ev.Kind != binding.EventTerminated) || len(ev.After.Contacts) > 0 {
		return
	}
	tp.dispatch(ev, ev.After.AOR, userdata.RegistrationDeRegistration, nil, nil)
}

// tpSend is one third-party REGISTER to send.
type tpSend struct {
	as      userdata.ApplicationServer
	impu    string
	rt      userdata.RegistrationType
	expires int
	pcv     string
	req     *sip.Request
	res     *sip.Response
}

func (tp *ThirdPartyRegistrar) dispatch(ev binding.Event, impu string, rt userdata.RegistrationType, req *sip.Request, res *sip.Response) {
	prof := ev.Profile // parsed by the registrar: no second XML parse per REGISTER
	if prof == nil && len(ev.After.UserData) > 0 {
		p, err := userdata.Parse(ev.After.UserData)
		if err != nil {
			tp.log.Warn("User-Data of the registration does not parse; no third-party REGISTER", zap.String("impu", impu), zap.Error(err))
			return
		}
		prof = p
	} else if p, ok := tp.s.reg.Profile(impu); ok {
		prof = p
	}
	if prof == nil {
		return
	}
	sp, _ := prof.ProfileFor(impu)
	if sp == nil {
		sp, _ = prof.ProfileFor(ev.After.AOR)
	}
	ifcs := tp.s.profileIFCs(sp, impu) // the profile's own and its shared iFC sets
	if len(ifcs) == 0 {
		return // nothing can match: skip building the request to match
	}
	ireq := ifc.Request{Method: string(sip.REGISTER), RequestURI: "sip:" + tp.s.cfg.Domain}
	if req != nil {
		ireq = ifc.FromSIP(req, userdata.SessionCaseOriginating)
	}
	ireq.SessionCase = userdata.SessionCaseOriginating
	ireq.RegistrationType = rt
	ireq.Registered = true

	expires := 0
	if rt != userdata.RegistrationDeRegistration {
		expires = registrationExpires(ev)
	}
	pcv := ""
	if req != nil {
		pcv = strings.Join(imsheader.Values(req, imsheader.HeaderPChargingVector), ", ")
	}
	for _, cs := range [][]binding.Contact{ev.Changed, ev.After.Contacts} {
		for i := 0; i < len(cs) && pcv == ""; i++ {
			pcv = cs[i].ChargingVector
		}
	}
	seen := map[string]bool{}
	for f := range tp.eval.All(ifcs, ireq, math.MinInt) {
		as := f.ApplicationServer
		k := binding.CanonURI(as.ServerName)
		if seen[k] {
			continue
		}
		seen[k] = true
		job := tpSend{as: as, impu: impu, rt: rt, expires: expires, pcv: pcv, req: req, res: res}
		tp.wg.Add(1)
		go func() {
			defer tp.wg.Done()
			tp.send(job)
		}()
	}
}

// registrationExpires is the lifetime reported to the ASes: the longest
// remaining expiry of the bindings the REGISTER touched that are still
// bound, else of any binding of the set, in seconds.
func registrationExpires(ev binding.Event) int {
	now := time.Now()
	bound := map[string]time.Time{}
	for _, c := range ev.After.Contacts {
		bound[c.Key()] = c.Expires
	}
	best := time.Duration(0)
	for _, c := range ev.Changed {
		if e, ok := bound[c.Key()]; ok && e.Sub(now) > best {
			best = e.Sub(now)
		}
	}
	if best == 0 {
		for _, e := range bound {
			if e.Sub(now) > best {
				best = e.Sub(now)
			}
		}
	}
	return int(best.Round(time.Second) / time.Second)
}

func rtLabel(rt userdata.RegistrationType) string {
	switch rt {
	case userdata.RegistrationInitial:
		return "initial"
	case userdata.RegistrationReRegistration:
		return "re"
	default:
		return "de"
	}
}

func (tp *ThirdPartyRegistrar) send(j tpSend) {
	req, err := tp.build(j)
	if err != nil {
		tp.log.Warn("third-party REGISTER not built", zap.String("as", j.as.ServerName), zap.String("impu", j.impu), zap.Error(err))
		return
	}
	p := tp.s.sender.SIPProxy()
	if p == nil {
		tp.log.Warn("third-party REGISTER before the SIP layer started; dropped", zap.String("as", j.as.ServerName))
		return
	}
	ctx, cancel := context.WithTimeout(tp.ctx, tp.cfg.Timeout)
	defer cancel()
	res, err := p.DoConsume(ctx, req, sipproxy.Target{})
	failure := ""
	switch {
	case err != nil:
		tp.sent.WithLabelValues(rtLabel(j.rt), "no_answer").Inc()
		failure = "no answer: " + err.Error()
	case res.StatusCode == 408 || res.StatusCode >= 500:
		tp.sent.WithLabelValues(rtLabel(j.rt), "error_response").Inc()
		failure = fmt.Sprintf("answered %d %s", res.StatusCode, res.Reason)
	case res.StatusCode >= 300:
		tp.sent.WithLabelValues(rtLabel(j.rt), "error_response").Inc()
		tp.log.Info("third-party REGISTER refused", zap.String("as", j.as.ServerName), zap.String("impu", j.impu), zap.Int("status", res.StatusCode))
		return
	default:
		tp.sent.WithLabelValues(rtLabel(j.rt), "ok").Inc()
		tp.log.Debug("third-party REGISTER accepted", zap.String("as", j.as.ServerName), zap.String("impu", j.impu), zap.Int("status", res.StatusCode))
		return
	}
	if tp.ctx.Err() != nil {
		return // shutting down
	}
	if j.as.Handling() == userdata.SessionTerminated && j.rt != userdata.RegistrationDeRegistration {
		reason := "third-party REGISTER to " + j.as.ServerName + " failed (" + failure + ")"
		tp.log.Info("AS with SESSION_TERMINATED failed: de-registering", zap.String("as", j.as.ServerName), zap.String("impu", j.impu), zap.String("failure", failure))
		if tp.deregister != nil {
			tp.deregister(j.impu, reason)
		}
		return
	}
	tp.log.Info("third-party REGISTER failed", zap.String("default-handling", j.as.Handling().String()), zap.String("type", rtLabel(j.rt)), zap.String("as", j.as.ServerName), zap.String("impu", j.impu), zap.String("failure", failure))
}

// build makes the third-party REGISTER of j.
func (tp *ThirdPartyRegistrar) build(j tpSend) (*sip.Request, error) {
	var asURI, self, to sip.Uri
	if err := sip.ParseUri(strings.TrimSpace(j.as.ServerName), &asURI); err != nil {
		return nil, fmt.Errorf("AS ServerName %q: %w", j.as.ServerName, err)
	}
	if err := sip.ParseUri(tp.s.cfg.ServerName, &self); err != nil {
		return nil, fmt.Errorf("Server-Name %q: %w", tp.s.cfg.ServerName, err)
	}
	if err := sip.ParseUri(j.impu, &to); err != nil {
		return nil, fmt.Errorf("IMPU %q: %w", j.impu, err)
	}
	req := sip.NewRequest(sip.REGISTER, asURI)
	fp := sip.NewParams()
	fp.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(&sip.FromHeader{Address: self, Params: fp})
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	callID, cseq := tp.next(binding.CanonURI(j.as.ServerName), binding.CanonURI(j.impu))
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
	req.AppendHeader(&sip.ContactHeader{Address: self, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(j.expires)))

	pcv := imsheader.NewPChargingVector(imsheader.NewICID(), tp.s.cfg.SIPHost)
	if j.pcv != "" {
		if in, err := imsheader.ParsePChargingVector(j.pcv); err == nil && in.ICID() != "" {
			pcv = imsheader.NewPChargingVector(in.ICID(), in.ICIDGeneratedAt())
		}
	}
	pcv.SetOrigIOI(tp.s.cfg.Domain)
	imsheader.SetPChargingVector(req, pcv)

	var parts []bodyPart
	if si := strings.TrimSpace(j.as.ServiceInfo); si != "" {
		parts = append(parts, bodyPart{ContentType3GPPIMSXML, serviceInfoXML(j.as.ServiceInfo)})
	}
	if bool(j.as.IncludeRegisterRequest) && j.req != nil {
		parts = append(parts, bodyPart{ContentTypeMessageSIP, []byte(j.req.String())})
	}
	if bool(j.as.IncludeRegisterResponse) && j.res != nil {
		parts = append(parts, bodyPart{ContentTypeMessageSIP, []byte(j.res.String())})
	}
	switch len(parts) {
	case 0:
	case 1:
		ct := sip.ContentTypeHeader(parts[0].contentType)
		req.AppendHeader(&ct)
		req.SetBody(parts[0].body)
	default:
		boundary := "tpreg-" + sip.GenerateTagN(16)
		ct := sip.ContentTypeHeader("multipart/mixed;boundary=" + boundary)
		req.AppendHeader(&ct)
		req.SetBody(multipartMixed(boundary, parts))
	}
	return req, nil
}

// next returns the Call-ID and CSeq of the next REGISTER from this
// S-CSCF to as for impu: one Call-ID per pair, CSeq increasing (RFC 3261
// §10.2.4 for the AS's registrar).
func (tp *ThirdPartyRegistrar) next(as, impu string) (string, uint32) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	k := as + "\x00" + impu
	d := tp.dialogs[k]
	if d == nil {
		d = &tpDialog{callID: sip.GenerateTagN(20) + "@" + tp.s.cfg.SIPHost}
		tp.dialogs[k] = d
	}
	d.cseq++
	return d.callID, d.cseq
}

type bodyPart struct {
	contentType string
	body        []byte
}

// serviceInfoXML wraps ServiceInfo in the 3GPP IM CN subsystem XML body
// (TS 24.229 Annex D / §7.6):
// <ims-3gpp version="1"><service-info>…</service-info></ims-3gpp>.
func serviceInfoXML(info string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<ims-3gpp version="1"><service-info>`)
	_ = xml.EscapeText(&b, []byte(info))
	b.WriteString(`</service-info></ims-3gpp>`)
	return b.Bytes()
}

// multipartMixed encodes parts as a multipart/mixed body (RFC 2046 §5.1)
// with CRLF line ends and a Content-Type per part.
func multipartMixed(boundary string, parts []bodyPart) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		b.WriteString("--" + boundary + "\r\n")
		b.WriteString("Content-Type: " + p.contentType + "\r\n\r\n")
		b.Write(p.body)
		b.WriteString("\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.Bytes()
}
