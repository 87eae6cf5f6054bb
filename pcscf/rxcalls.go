package pcscf

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pcscf/contacts"
	"github.com/imscore/imscore/pcscf/rx"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// call is one INVITE dialog with an Rx session.
type call struct {
	callID  string
	orig    bool // the UE of this P-CSCF is the caller
	contact *contacts.Contact
	invite  *sip.Request
	offer   *rx.SDP
	// answer and ueOffered: the offer/answer in force (initial, then
	// each completed re-INVITE/UPDATE exchange); ueOffered: the UE sent
	// offer.
	answer    *rx.SDP
	ueOffered bool
	ok        *sip.Response
	sid       string
	aarSent   bool // an AAR for this call's answer is out or done
	// prelim: sid is from the AAR at the offer (--rx-aar-at-offer); the
	// AAR at the answer updates that session.
	prelim bool
	icid   string
	// --rx required: abort cancels the forwarding of the initial INVITE
	// (CANCEL downstream); failed is the Warning text once the AAR failed.
	abort  context.CancelFunc
	failed string
}

// rxWarning is the Warning header of a call failed by Rx (RFC 3261
// §20.43, code 399 "miscellaneous warning"; text names Rx and the reason).
func (s *PCSCF) rxWarning(reason string) sip.Header {
	return sip.NewHeader("Warning", fmt.Sprintf(`399 %s "Rx: %s"`, hostRef(s.cfg.SIPHost), strings.ReplaceAll(reason, `"`, `'`)))
}

// rxFailReason describes an AAR failure for logs and Warning headers.
func rxFailReason(err error) string {
	var rej *rx.RejectedError
	if errors.As(err, &rej) {
		return fmt.Sprintf("PCRF rejected the service information (AAA %d)", rej.Code)
	}
	return "PCRF unreachable (no AAA)"
}

// callKey keys s.calls: the Call-ID and the side of the UE, since both
// the caller and the callee may be registered at this P-CSCF.
func callKey(callID string, orig bool) string {
	if orig {
		return callID + "|orig"
	}
	return callID + "|term"
}

// rxBefore remembers the SDP offer of an initial INVITE, and ends the Rx
// sessions of a dialog on BYE.
func (s *PCSCF) rxBefore(ctx context.Context, req *sip.Request, c *contacts.Contact, orig bool, abort context.CancelFunc) {
	switch {
	case req.IsInvite() && (req.To() == nil || !req.To().Params.Has("tag")):
		sdp, err := rx.ParseSDP(req.Body())
		if err != nil {
			return
		}
		icid := ""
		if p, err := imsheader.GetPChargingVector(req); err == nil && p != nil {
			icid = p.ICID()
		}
		s.mu.Lock()
		s.addCallLocked(callKey(req.CallID().Value(), orig), &call{callID: req.CallID().Value(), orig: orig, contact: c, invite: req.Clone(), offer: sdp, icid: icid, abort: abort})
		s.mu.Unlock()
	case req.Method == sip.BYE:
		s.rxEnd(ctx, callKey(req.CallID().Value(), true))
		s.rxEnd(ctx, callKey(req.CallID().Value(), false))
	}
}

// rxOnResponse sends the AAR when the SDP answer arrives: in the first
// reliable provisional or 2xx response to the initial INVITE that carries
// SDP (TS 24.229 §5.2.7.2/§5.2.7.3, TS 29.214 §4.4.1), and keeps the 2xx
// for a release on ASR.
func (s *PCSCF) rxOnResponse(req *sip.Request, res *sip.Response, c *contacts.Contact, orig bool) {
	if !req.IsInvite() || res.StatusCode <= 100 || res.StatusCode >= 300 {
		return
	}
	key := callKey(req.CallID().Value(), orig)
	s.mu.Lock()
	cl := s.calls[key]
	if cl == nil {
		s.mu.Unlock()
		return
	}
	if res.IsSuccess() && cl.ok == nil {
		cl.ok = res.Clone()
	}
	if cl.aarSent {
		s.mu.Unlock()
		return
	}
	ans, err := rx.ParseSDP(res.Body())
	if err != nil {
		s.mu.Unlock()
		return
	}
	cl.aarSent = true
	cl.answer, cl.ueOffered = ans, orig
	prelim := ""
	if cl.prelim {
		prelim = cl.sid
	}
	s.mu.Unlock()
	if !s.rx.Ready() && s.cfg.RxPolicy != RxRequired {
		// best-effort: no AAR while the PCRF is away (it would hold the
		// response for the Diameter timeout).
		s.log.Warn("Rx: PCRF not connected, no AAR (best-effort)", zap.String("call-id", cl.callID))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess := rx.Session{
		ICID: cl.icid, IMPU: c.IMPUs[0], UEIP: parseIP(c.Flow.Host),
		Offer: cl.offer, Answer: ans, UEOffered: orig,
	}
	var sid string
	if prelim != "" {
		// The final service information on the session opened at the
		// offer (TS 29.214 §4.4.1).
		sid, err = prelim, s.rx.AARUpdate(ctx, prelim, sess)
	} else {
		sid, err = s.rx.AAR(ctx, sess)
	}
	if err != nil {
		// A rejected initial AAR opens no session at the PCRF: nothing to
		// STR. A rejected update leaves the session of the offer open;
		// it ends with the call (STR).
		reason := rxFailReason(err)
		s.log.Warn("Rx AAR failed", zap.String("call-id", cl.callID), zap.String("policy", s.cfg.RxPolicy), zap.String("reason", reason), zap.Bool("at-offer-session", prelim != ""), zap.Error(err))
		if s.cfg.RxPolicy == RxRequired {
			s.mu.Lock()
			cl.failed = reason
			s.mu.Unlock()
			if cl.abort != nil && !res.IsSuccess() {
				cl.abort() // CANCEL downstream; forward answers the UE 503
			}
		}
		return
	}
	if prelim != "" {
		return // the session and its record are those of the offer
	}
	s.rxOpened(ctx, key, cl, c, sid, false)
}

// rxOpened records sid, the Rx session just opened for call cl (under
// key) of contact c, on the call and the contact (prelim: opened at the
// offer). When the call failed or ended while the AAR was out, the
// session is ended at once (STR).
func (s *PCSCF) rxOpened(ctx context.Context, key string, cl *call, c *contacts.Contact, sid string, prelim bool) {
	s.mu.Lock()
	cl.sid, cl.prelim = sid, prelim
	ended := s.calls[key] != cl // the call failed or ended while the AAR was out
	if !ended {
		s.callBySID[sid] = cl
	}
	s.mu.Unlock()
	if ended {
		if err := s.rx.STR(ctx, sid); err != nil {
			s.log.Warn("Rx STR failed", zap.Error(err))
		}
		return
	}
	_, _ = s.store.Update(ctx, c.Key(), func(x *contacts.Contact) { x.RxSessions = append(x.RxSessions, sid) })
}

// rxAtOffer sends the AAR with preliminary service information for the
// SDP offer of the initial INVITE of the call under key (--rx-aar-at-offer;
// TS 29.214 §4.4.1: the AF may provide service information at the offer
// and update it at the answer), before the INVITE is forwarded. It returns
// why the INVITE must be refused (--rx required and the PCRF rejected the
// offer or did not answer), "" otherwise; under best-effort a failure is
// logged and the AAR at the answer opens the session as without the
// setting.
func (s *PCSCF) rxAtOffer(key string, c *contacts.Contact) string {
	s.mu.Lock()
	cl := s.calls[key]
	s.mu.Unlock()
	if cl == nil {
		return "" // no SDP offer in the INVITE
	}
	if !s.rx.Ready() {
		// required has answered 503 already (forward).
		s.log.Warn("Rx: PCRF not connected, no AAR at the offer (best-effort)", zap.String("call-id", cl.callID))
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sid, err := s.rx.AAR(ctx, rx.Session{
		ICID: cl.icid, IMPU: c.IMPUs[0], UEIP: parseIP(c.Flow.Host),
		Offer: cl.offer, UEOffered: cl.orig,
	})
	if err != nil {
		reason := rxFailReason(err)
		s.log.Warn("Rx AAR at the offer failed", zap.String("call-id", cl.callID), zap.String("policy", s.cfg.RxPolicy), zap.String("reason", reason), zap.Error(err))
		if s.cfg.RxPolicy == RxRequired {
			return reason
		}
		return ""
	}
	s.rxOpened(ctx, key, cl, c, sid, true)
	return ""
}

// addCallLocked records cl under key (see callKey) and in its contact's
// list; s.mu held.
func (s *PCSCF) addCallLocked(key string, cl *call) {
	s.removeCallLocked(key)
	s.calls[key] = cl
	ck := cl.contact.Key()
	if s.callsOf[ck] == nil {
		s.callsOf[ck] = map[string]struct{}{}
	}
	s.callsOf[ck][key] = struct{}{}
}

// removeCallLocked forgets the call under key and returns it (nil when
// none); s.mu held.
func (s *PCSCF) removeCallLocked(key string) *call {
	cl := s.calls[key]
	if cl == nil {
		return nil
	}
	delete(s.calls, key)
	if cl.sid != "" && s.callBySID[cl.sid] == cl {
		delete(s.callBySID, cl.sid)
	}
	ck := cl.contact.Key()
	delete(s.callsOf[ck], key)
	if len(s.callsOf[ck]) == 0 {
		delete(s.callsOf, ck)
	}
	return cl
}

// rxEnd sends STR for the Rx session of the call under key (see callKey)
// and forgets the call.
func (s *PCSCF) rxEnd(ctx context.Context, key string) {
	s.mu.Lock()
	cl := s.removeCallLocked(key)
	s.mu.Unlock()
	if cl == nil || cl.sid == "" {
		return
	}
	_, _ = s.store.Update(ctx, cl.contact.Key(), func(x *contacts.Contact) {
		for i, v := range x.RxSessions {
			if v == cl.sid {
				x.RxSessions = append(x.RxSessions[:i], x.RxSessions[i+1:]...)
				break
			}
		}
	})
	if err := s.rx.STR(ctx, cl.sid); err != nil {
		s.log.Warn("Rx STR failed", zap.Error(err))
	}
}

// onAbort handles an ASR: BYE towards the UE and towards the network,
// then STR (TS 29.214 §4.4.6, TS 24.229 §5.2.8).
func (s *PCSCF) onAbort(sid string) {
	s.releaseBySession(sid, "ASR", "Rx session aborted")
}

// callOfSession returns the call whose Rx session is sid, nil when none.
func (s *PCSCF) callOfSession(sid string) *call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.callBySID[sid]
}

// signallingOf keeps the contacts of cs whose signalling session is sid.
func signallingOf(cs []*contacts.Contact, sid string) []*contacts.Contact {
	return slices.DeleteFunc(cs, func(c *contacts.Contact) bool { return c.RxSignalling != sid })
}

// releaseBySession releases the call of Rx session sid (why: ASR, RAR
// loss of bearer...; text goes in the Reason header).
func (s *PCSCF) releaseBySession(sid, why, text string) {
	cl := s.callOfSession(sid)
	if cl == nil {
		if s.releaseSignalling(sid, why) || s.endRestoredCallSession(sid, why) {
			return
		}
		s.log.Info(why+" for an unknown Rx session", zap.String("session-id", sid))
		return
	}
	if cl.ok == nil {
		// Early dialog: no 2xx yet to build BYEs from; end the session.
		s.log.Info(why+" before the call was answered: Rx session ended, call left to its timers", zap.String("call-id", cl.callID))
		s.rxEnd(context.Background(), callKey(cl.callID, cl.orig))
		return
	}
	s.releaseCall(cl, why, text, true)
}

// releaseCall sends BYE to the network side of an answered call and, when
// toUE, to the UE (dialog from the INVITE and its 2xx, Reason Q.850 cause
// 47 with text), then ends its Rx session (STR when there is one).
func (s *PCSCF) releaseCall(cl *call, why, text string, toUE bool) {
	s.log.Info(why+": releasing the call", zap.String("call-id", cl.callID))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv, ok := cl.invite, cl.ok
	callerContact := inv.Contact()
	calleeContact := ok.Contact()
	rrURIs := recordRouteURIs(ok)
	self := -1
	for i, u := range rrURIs {
		if s.proxy.IsSelf(u) || (s.ownsPortS(u.Port) && sameHost(u.Host, s.cfg.SIPHost)) {
			self = i
		}
	}
	// Route towards the caller: RR after ours (top→bottom); towards the
	// callee: RR before ours, reversed.
	var toCaller, toCallee []sip.Uri
	if self >= 0 {
		toCaller = append(toCaller, rrURIs[self+1:]...)
		for i := self - 1; i >= 0; i-- {
			toCallee = append(toCallee, rrURIs[i])
		}
	}
	cseq := uint32(1)
	if h := inv.CSeq(); h != nil {
		cseq = h.SeqNo
	}
	mk := func(target sip.Uri, from, to sip.Uri, fromTag, toTag string, route []sip.Uri) *sip.Request {
		b := sip.NewRequest(sip.BYE, target)
		fp := sip.NewParams()
		fp.Add("tag", fromTag)
		b.AppendHeader(&sip.FromHeader{Address: from, Params: fp})
		tp := sip.NewParams()
		tp.Add("tag", toTag)
		b.AppendHeader(&sip.ToHeader{Address: to, Params: tp})
		cid := sip.CallIDHeader(cl.callID)
		b.AppendHeader(&cid)
		b.AppendHeader(&sip.CSeqHeader{SeqNo: cseq + 1000, MethodName: sip.BYE})
		for _, r := range route {
			b.AppendHeader(&sip.RouteHeader{Address: r})
		}
		b.AppendHeader(sip.NewHeader("Reason", fmt.Sprintf(`Q.850;cause=47;text="%s"`, strings.ReplaceAll(text, `"`, `'`))))
		return b
	}
	fromTag, _ := inv.From().Params.Get("tag")
	toTag, _ := ok.To().Params.Get("tag")
	if callerContact == nil || calleeContact == nil {
		s.rxEnd(ctx, callKey(cl.callID, cl.orig))
		return
	}
	// BYE to the caller as if from the callee, and vice versa.
	toCallerReq := mk(callerContact.Address, ok.To().Address, inv.From().Address, toTag, fromTag, toCaller)
	toCalleeReq := mk(calleeContact.Address, inv.From().Address, ok.To().Address, fromTag, toTag, toCallee)
	send := func(r *sip.Request, toUE bool) {
		var tg sipproxy.Target
		if toUE {
			tg = s.ueTarget(cl.contact, r)
		}
		if res, err := s.proxy.DoConsume(ctx, r, tg); err != nil {
			s.log.Info("BYE after "+why+" failed", zap.Error(err))
		} else {
			s.log.Info("BYE after "+why+" answered", zap.Int("status", res.StatusCode), zap.String("to", r.Recipient.String()))
		}
	}
	ueReq, netReq := toCallerReq, toCalleeReq
	if !cl.orig {
		ueReq, netReq = toCalleeReq, toCallerReq
	}
	if toUE {
		send(ueReq, true)
	}
	send(netReq, false)
	s.rxEnd(ctx, callKey(cl.callID, cl.orig))
}

// rxRegister sends the AAR for the signalling flows of the contact under
// key after a successful registration (TS 29.214 §4.4.5a) and stores its
// Session-Id with the contact. It never affects the registration: a
// failure (any --rx policy) is logged. The session ends with STR when the
// contact is removed (de-registration, expiry: dropContactState).
func (s *PCSCF) rxRegister(key string) {
	c := s.store.Get(key)
	if c == nil || c.RxSignalling != "" || len(c.IMPUs) == 0 {
		return
	}
	if !s.rx.Ready() {
		s.log.Warn("Rx: PCRF not connected, no AAR for the signalling flows", zap.String("aor", c.AOR))
		return
	}
	local := s.proxy.Addr("udp").IP.String()
	var flows []rx.SignallingFlow
	if c.SA != nil {
		// Over an SA set the UE and the P-CSCF use UDP and TCP alike: a
		// request above 1,300 bytes goes over TCP (RFC 3261 §18.1.1,
		// TS 24.229 §4.2A), and a re-REGISTER may switch transport
		// through the same SA set, keeping this session. So the four
		// port pairs are named for both protocols.
		ue := c.SA.UE.IP.String()
		for _, tr := range []string{"udp", "tcp"} {
			flows = append(flows,
				rx.SignallingFlow{UEIP: ue, UEPort: int(c.SA.UE.PortC), PCSCFIP: local, PCSCFPort: int(c.SA.PCSCF.PortS), Transport: tr},
				rx.SignallingFlow{UEIP: ue, UEPort: int(c.SA.UE.PortS), PCSCFIP: local, PCSCFPort: int(c.SA.PCSCF.PortC), Transport: tr})
		}
	} else {
		port := s.proxy.Addr("udp").Port
		flows = append(flows, rx.SignallingFlow{UEIP: strings.Trim(c.Flow.Host, "[]"), UEPort: c.Flow.Port, PCSCFIP: local, PCSCFPort: port, Transport: c.Flow.Transport})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sid, err := s.rx.AARSignalling(ctx, rx.SignallingSession{IMPU: c.IMPUs[0], UEIP: parseIP(c.Flow.Host), Flows: flows})
	if err != nil {
		s.log.Warn("Rx AAR for the signalling flows failed; registration kept", zap.String("aor", c.AOR), zap.String("reason", rxFailReason(err)), zap.Error(err))
		return
	}
	found, _ := s.store.Update(ctx, key, func(x *contacts.Contact) {
		x.RxSignalling = sid
		x.RxSessions = append(x.RxSessions, sid)
	})
	if !found { // de-registered while the AAR was out
		_ = s.rx.STR(ctx, sid)
	}
}

// releaseSignalling handles an ASR (or a release decided on RAR) for the
// signalling session of a contact: the registration is removed (contact,
// SAs; STR for its Rx sessions), TS 29.214 §4.4.6 / TS 24.229 §5.2.8.
// It reports whether sid was a signalling session.
func (s *PCSCF) releaseSignalling(sid, why string) bool {
	cs := signallingOf(s.store.BySession(sid), sid)
	if len(cs) == 0 {
		return false
	}
	for _, c := range cs {
		s.log.Info(why+" for the signalling session: registration removed", zap.String("aor", c.AOR), zap.Stringer("flow", c.Flow))
		s.deregister(context.Background(), c.Key())
	}
	return true
}

// endRestoredCallSession ends the Rx session sid of a call set up before
// a restart (reloaded with its contact; the call's dialog was not kept,
// so there is nothing to send BYEs on): it is removed from the contact
// and ended with STR (TS 29.214 §4.4.4). False when no contact has sid.
func (s *PCSCF) endRestoredCallSession(sid, why string) bool {
	cs := slices.DeleteFunc(s.store.BySession(sid), func(c *contacts.Contact) bool { return !slices.Contains(c.RxSessions, sid) })
	if len(cs) == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range cs {
		_, _ = s.store.Update(ctx, c.Key(), func(x *contacts.Contact) {
			x.RxSessions = slices.DeleteFunc(x.RxSessions, func(v string) bool { return v == sid })
		})
	}
	s.log.Info(why+" for a call from before the restart: Rx session ended (the call's dialog was not kept)", zap.String("session-id", sid))
	if err := s.rx.STR(ctx, sid); err != nil {
		s.log.Warn("Rx STR failed", zap.Error(err))
	}
	return true
}

// onReAuth handles a RAR (answered 2001 by the client). Its
// Specific-Actions and access network information (IP-CAN_CHANGE:
// IP-CAN-Type, RAT-Type; ACCESS_NETWORK_INFO_REPORT: 3GPP-User-Location-
// Info, 3GPP-MS-TimeZone, 3GPP-SGSN-MCC-MNC) are logged. Then:
//   - INDICATION_OF_LOSS_OF_BEARER or INDICATION_OF_RELEASE_OF_BEARER for
//     a call's session releases the call as on ASR (TS 29.214 §4.4.6.2:
//     the AF may end the session; TS 24.229 §5.2.8);
//   - the same for a contact's signalling session means the UE cannot be
//     reached over SIP any more (TS 23.228, loss of the bearer carrying
//     IMS signalling): see signallingLost;
//   - INDICATION_OF_RECOVERY_OF_BEARER for a signalling session whose
//     bearer was reported lost (not released) undoes that.
func (s *PCSCF) onReAuth(r rx.ReAuth) {
	names := r.ActionNames()
	lost := r.Has(rx.ActionIndicationOfLossOfBearer) || r.Has(rx.ActionIndicationOfReleaseOfBearer)
	cl := s.callOfSession(r.SessionID)
	fields := []zap.Field{zap.String("session-id", r.SessionID), zap.Strings("specific-action", names), zap.Bool("call", cl != nil)}
	if len(r.Flows) > 0 {
		fields = append(fields, zap.Uint32s("flows", r.Flows))
	}
	if r.IPCANType >= 0 {
		fields = append(fields, zap.Int64("ip-can-type", r.IPCANType))
	}
	if r.RATType >= 0 {
		fields = append(fields, zap.Int64("rat-type", r.RATType))
	}
	if r.UserLocationInfo != nil {
		fields = append(fields, zap.String("user-location-info", hex.EncodeToString(r.UserLocationInfo)))
	}
	if r.MSTimeZone != nil {
		fields = append(fields, zap.String("ms-timezone", hex.EncodeToString(r.MSTimeZone)))
	}
	if r.SGSNMCCMNC != "" {
		fields = append(fields, zap.String("sgsn-mcc-mnc", r.SGSNMCCMNC))
	}
	s.log.Info("Rx RAR", fields...)
	switch {
	case cl != nil:
		if lost {
			s.releaseBySession(r.SessionID, "RAR "+strings.Join(names, ","), "Rx: bearer lost")
		}
	case lost:
		action := rx.ActionName(rx.ActionIndicationOfReleaseOfBearer)
		if !r.Has(rx.ActionIndicationOfReleaseOfBearer) {
			action = rx.ActionName(rx.ActionIndicationOfLossOfBearer)
		}
		s.signallingLost(r.SessionID, action)
	case r.Has(rx.ActionIndicationOfRecoveryBearer):
		s.signallingRecovered(r.SessionID)
	}
}

// signallingLost handles the loss or release (action) of the bearer of
// the signalling flows of the contacts whose signalling session is sid.
// As TS 23.228 has it for the loss of the IP-CAN bearer carrying IMS
// signalling, the registration is kept (the S-CSCF keeps it too), but:
//   - the contact's calls are released towards the network (BYE with
//     Reason Q.850 cause 47 "Rx: signalling bearer lost", STR); no BYE
//     goes to the UE, which cannot be reached;
//   - terminating INVITEs to the contact are answered 480 until its next
//     successful REGISTER (or its removal): see terminating.
func (s *PCSCF) signallingLost(sid, action string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range signallingOf(s.store.BySession(sid), sid) {
		_, _ = s.store.Update(ctx, c.Key(), func(x *contacts.Contact) { x.SignallingLost = action })
		s.log.Info("Rx: signalling bearer of the UE lost: its calls are released, terminating INVITEs refused until it registers again",
			zap.String("aor", c.AOR), zap.Stringer("flow", c.Flow), zap.String("specific-action", action))
		s.mu.Lock()
		var calls []*call
		for key := range s.callsOf[c.Key()] {
			calls = append(calls, s.calls[key])
		}
		s.mu.Unlock()
		for _, cl := range calls {
			if cl.ok == nil {
				s.rxEnd(ctx, callKey(cl.callID, cl.orig))
				continue
			}
			s.releaseCall(cl, "RAR "+action+" (signalling)", "Rx: signalling bearer lost", false)
		}
	}
}

// signallingRecovered clears the mark of a contact whose signalling
// bearer was reported lost (INDICATION_OF_LOSS_OF_BEARER, not released)
// when the PCRF reports its recovery.
func (s *PCSCF) signallingRecovered(sid string) {
	loss := rx.ActionName(rx.ActionIndicationOfLossOfBearer)
	for _, c := range signallingOf(s.store.BySession(sid), sid) {
		if c.SignallingLost != loss {
			continue
		}
		_, _ = s.store.Update(context.Background(), c.Key(), func(x *contacts.Contact) {
			if x.SignallingLost == loss {
				x.SignallingLost = ""
			}
		})
		s.log.Info("Rx: signalling bearer of the UE recovered", zap.String("aor", c.AOR), zap.Stringer("flow", c.Flow))
	}
}

// mediaUpdate is a re-INVITE or UPDATE with an SDP offer in the dialog of
// a call with an Rx session (TS 24.229 §5.2.7.4, TS 29.214 §4.4.1).
type mediaUpdate struct {
	cl        *call
	offer     *rx.SDP
	ueOffered bool // the request comes from the UE
	method    string
	// under s.mu:
	sent                  bool // an AAR went out for this exchange's answer
	prevOffer, prevAnswer *rx.SDP
	prevUEOffered         bool
	failed                string // --rx required: the update AAR failed
}

// rxUpdateStart returns the media update of req, an INVITE or UPDATE
// within a dialog from (fromUE) or to the UE of contact c, when it
// carries an SDP offer and the dialog's call has an Rx session; nil
// otherwise. (An offer in the 2xx with the answer in the ACK is not
// followed.)
func (s *PCSCF) rxUpdateStart(req *sip.Request, c *contacts.Contact, fromUE bool) *mediaUpdate {
	offer, err := rx.ParseSDP(req.Body())
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, orig := range []bool{true, false} {
		cl := s.calls[callKey(req.CallID().Value(), orig)]
		if cl != nil && cl.sid != "" && cl.contact.Key() == c.Key() {
			return &mediaUpdate{cl: cl, offer: offer, ueOffered: fromUE, method: string(req.Method)}
		}
	}
	return nil
}

// rxUpdateOnResponse sends the AAR on the call's existing Rx session when
// the answer to u's offer arrives (first 18x or 2xx with SDP; TS 29.214
// §4.4.1: modified service information, same Session-Id). A failure
// final response after an AAR sent for an 18x answer restores the
// previous offer/answer with another AAR (RFC 6141 §3.4: a failed
// re-INVITE leaves the session as it was); one without answer sends
// nothing.
func (s *PCSCF) rxUpdateOnResponse(u *mediaUpdate, res *sip.Response) {
	cl := u.cl
	if res.StatusCode >= 300 {
		s.mu.Lock()
		revert := u.sent && s.calls[callKey(cl.callID, cl.orig)] == cl
		if revert {
			cl.offer, cl.answer, cl.ueOffered = u.prevOffer, u.prevAnswer, u.prevUEOffered
		}
		sess := s.rxSession(cl)
		s.mu.Unlock()
		if revert {
			s.rxUpdateSend(u, sess, "restored after "+strconv.Itoa(res.StatusCode))
		}
		return
	}
	if res.StatusCode <= 100 {
		return
	}
	ans, err := rx.ParseSDP(res.Body())
	if err != nil {
		return
	}
	s.mu.Lock()
	if u.sent || s.calls[callKey(cl.callID, cl.orig)] != cl {
		s.mu.Unlock()
		return
	}
	u.sent = true
	u.prevOffer, u.prevAnswer, u.prevUEOffered = cl.offer, cl.answer, cl.ueOffered
	cl.offer, cl.answer, cl.ueOffered = u.offer, ans, u.ueOffered
	sess := s.rxSession(cl)
	s.mu.Unlock()
	s.rxUpdateSend(u, sess, u.method)
}

// rxSession is the service information of cl (s.mu held).
func (s *PCSCF) rxSession(cl *call) rx.Session {
	return rx.Session{
		ICID: cl.icid, IMPU: cl.contact.IMPUs[0], UEIP: parseIP(cl.contact.Flow.Host),
		Offer: cl.offer, Answer: cl.answer, UEOffered: cl.ueOffered,
	}
}

// rxUpdateSend sends the update AAR; a failure is logged and, under --rx
// required, recorded in u.failed (forward then releases the call).
func (s *PCSCF) rxUpdateSend(u *mediaUpdate, sess rx.Session, why string) {
	cl := u.cl
	if !s.rx.Ready() && s.cfg.RxPolicy != RxRequired {
		s.log.Warn("Rx: PCRF not connected, no AAR for the media change (best-effort)", zap.String("call-id", cl.callID))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.rx.AARUpdate(ctx, cl.sid, sess)
	if err == nil {
		s.log.Debug("Rx AAR for a media change", zap.String("call-id", cl.callID), zap.String("why", why), zap.String("session-id", cl.sid))
		return
	}
	reason := rxFailReason(err)
	s.log.Warn("Rx AAR for a media change failed", zap.String("call-id", cl.callID), zap.String("why", why), zap.String("policy", s.cfg.RxPolicy), zap.String("reason", reason), zap.Error(err))
	if s.cfg.RxPolicy == RxRequired {
		s.mu.Lock()
		u.failed = reason
		s.mu.Unlock()
	}
}

// recordRouteURIs returns the URIs of msg's Record-Route fields, top to
// bottom, typed (built here) or generic (read from the wire: the proxies'
// parser leaves them unparsed) alike; nil when one does not parse (no
// route set to trust: the BYEs go to the Contact).
func recordRouteURIs(msg sip.Message) []sip.Uri {
	list, err := imsheader.GetNameAddrList(msg, "Record-Route")
	if err != nil {
		return nil
	}
	out := make([]sip.Uri, 0, len(list))
	for _, e := range list {
		var u sip.Uri
		if sip.ParseUri(e.URI, &u) != nil {
			return nil
		}
		out = append(out, u)
	}
	return out
}
