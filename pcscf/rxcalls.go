package pcscf

import (
	"context"
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
	ok      *sip.Response
	sid     string
	icid    string
}

func (s *PCSCF) rxBefore(ctx context.Context, req *sip.Request, c *contacts.Contact, orig bool) {
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
		s.calls[req.CallID().Value()] = &call{callID: req.CallID().Value(), orig: orig, contact: c, invite: req.Clone(), offer: sdp, icid: icid}
		s.mu.Unlock()
	case req.Method == sip.BYE:
		s.rxEnd(ctx, req.CallID().Value())
	}
}

func (s *PCSCF) rxOnResponse(req *sip.Request, res *sip.Response, c *contacts.Contact, orig bool) {
	if !req.IsInvite() || res.StatusCode < 200 || res.StatusCode >= 300 {
		return
	}
	s.mu.Lock()
	cl := s.calls[req.CallID().Value()]
	if cl == nil || cl.sid != "" {
		s.mu.Unlock()
		return
	}
	cl.ok = res.Clone()
	s.mu.Unlock()
	ans, err := rx.ParseSDP(res.Body())
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sid, err := s.rx.AAR(ctx, rx.Session{
		ICID: cl.icid, IMPU: c.IMPUs[0], UEIP: parseIP(c.Flow.Host),
		Offer: cl.offer, Answer: ans, UEOffered: orig,
	})
	if err != nil {
		s.log.Warn("Rx AAR failed", zap.String("call-id", cl.callID), zap.Error(err))
		if sid == "" {
			return
		}
	}
	s.mu.Lock()
	cl.sid = sid
	s.mu.Unlock()
	_, _ = s.store.Update(ctx, c.Key(), func(x *contacts.Contact) { x.RxSessions = append(x.RxSessions, sid) })
}

// rxEnd sends STR for the call's Rx session and forgets the call.
func (s *PCSCF) rxEnd(ctx context.Context, callID string) {
	s.mu.Lock()
	cl := s.calls[callID]
	delete(s.calls, callID)
	s.mu.Unlock()
	if cl == nil || cl.sid == "" {
		return
	}
	if err := s.rx.STR(ctx, cl.sid); err != nil {
		s.log.Warn("Rx STR failed", zap.Error(err))
	}
	_, _ = s.store.Update(ctx, cl.contact.Key(), func(x *contacts.Contact) {
		for i, v := range x.RxSessions {
			if v == cl.sid {
				x.RxSessions = append(x.RxSessions[:i], x.RxSessions[i+1:]...)
				break
			}
		}
	})
}

// onAbort handles an ASR: BYE towards the UE and towards the network,
// then STR (TS 29.214 §4.4.6, TS 24.229 §5.2.8).
func (s *PCSCF) onAbort(sid string) {
	s.mu.Lock()
	var cl *call
	for _, c := range s.calls {
		if c.sid == sid {
			cl = c
		}
	}
	s.mu.Unlock()
	if cl == nil || cl.ok == nil {
		s.log.Info("ASR for an unknown Rx session", zap.String("session-id", sid))
		return
	}
	s.log.Info("ASR: releasing the call", zap.String("call-id", cl.callID))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv, ok := cl.invite, cl.ok
	callerContact := inv.Contact()
	calleeContact := ok.Contact()
	rr := ok.GetHeaders("Record-Route")
	var rrURIs []sip.Uri
	for _, h := range rr {
		if r, ok := h.(*sip.RecordRouteHeader); ok {
			rrURIs = append(rrURIs, r.Address)
		}
	}
	self := -1
	for i, u := range rrURIs {
		if s.proxy.IsSelf(u) || (u.Port == s.cfg.PortS && sameHost(u.Host, s.cfg.SIPHost)) {
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
		b.AppendHeader(sip.NewHeader("Reason", `Q.850;cause=47;text="Rx session aborted"`))
		return b
	}
	fromTag, _ := inv.From().Params.Get("tag")
	toTag, _ := ok.To().Params.Get("tag")
	if callerContact == nil || calleeContact == nil {
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
		if res, err := s.proxy.Do(ctx, r, tg); err != nil {
			s.log.Info("BYE after ASR failed", zap.Error(err))
		} else {
			s.log.Info("BYE after ASR answered", zap.Int("status", res.StatusCode), zap.String("to", r.Recipient.String()))
		}
	}
	if cl.orig {
		send(toCallerReq, true)
		send(toCalleeReq, false)
	} else {
		send(toCallerReq, false)
		send(toCalleeReq, true)
	}
	s.rxEnd(ctx, cl.callID)
}
