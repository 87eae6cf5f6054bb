package pcscf

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pcscf/contacts"
	"github.com/imscore/imscore/pkg/reginfo"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// subscribeRegEvent subscribes to the reg event package (RFC 3680) of the
// contact's default IMPU at the S-CSCF (first Service-Route hop), TS
// 24.229 §5.2.3. Failures are logged only.
func (s *PCSCF) subscribeRegEvent(key string, c *contacts.Contact) {
	if len(c.ServiceRoute) == 0 {
		return
	}
	var hop, target sip.Uri
	if err := sip.ParseUri(c.ServiceRoute[0], &hop); err != nil {
		return
	}
	if err := sip.ParseUri(c.IMPUs[0], &target); err != nil || target.Scheme != "sip" {
		return
	}
	callID := sip.GenerateTagN(16) + "@" + s.cfg.SIPHost
	_, _ = s.store.Update(context.Background(), key, func(c *contacts.Contact) { c.RegSubscription = callID })
	s.trackRegSubscription(callID)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		req := sip.NewRequest(sip.SUBSCRIBE, target)
		from := s.proxy.URI("udp")
		from.UriParams = sip.NewParams()
		from.User = regEventUser
		fp := sip.NewParams()
		fp.Add("tag", sip.GenerateTagN(10))
		req.AppendHeader(&sip.FromHeader{Address: from, Params: fp})
		req.AppendHeader(&sip.ToHeader{Address: target, Params: sip.NewParams()})
		cid := sip.CallIDHeader(callID)
		req.AppendHeader(&cid)
		req.AppendHeader(&sip.ContactHeader{Address: from, Params: sip.NewParams()})
		req.AppendHeader(sip.NewHeader("Event", "reg"))
		req.AppendHeader(sip.NewHeader("Accept", "application/reginfo+xml"))
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(s.cfg.RegSubscribeExpires)))
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+from.String()+">"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr := "udp"
		if v, ok := hop.UriParams.Get("transport"); ok {
			tr = strings.ToLower(v)
		}
		nh := sip.Uri{Scheme: "sip", Host: hop.Host, Port: hop.Port}
		res, err := s.proxy.Do(ctx, req, sipproxy.Target{NextHop: &nh, Transport: tr})
		switch {
		case err != nil && (errors.Is(err, sipproxy.ErrClosed) || s.closing.Load()):
			// Shutting down: the S-CSCF may have the subscription; keep
			// the record so that a restarted P-CSCF accepts its NOTIFYs.
		case err != nil:
			s.log.Info("reg-event SUBSCRIBE failed (continuing without it)", zap.String("impu", target.String()), zap.Error(err))
			s.untrackRegSubscription(key, callID)
		case res.StatusCode >= 300:
			s.log.Info("reg-event SUBSCRIBE refused (continuing without it)", zap.String("impu", target.String()), zap.Int("status", res.StatusCode))
			s.untrackRegSubscription(key, callID)
		default:
			s.log.Info("subscribed to reg event", zap.String("impu", target.String()), zap.Int("status", res.StatusCode))
		}
	}()
}

// regSub is the state of one reg-event subscription (by Call-ID).
type regSub struct {
	version int // version of the last document applied; -1 before the first
}

// untrackRegSubscription forgets a SUBSCRIBE that failed, here and on
// the contact under key, so that nothing is kept for a subscription that
// does not exist (a late NOTIFY for it then gets 481).
func (s *PCSCF) untrackRegSubscription(key, callID string) {
	s.mu.Lock()
	delete(s.subs, callID)
	s.mu.Unlock()
	_, _ = s.store.Update(context.Background(), key, func(c *contacts.Contact) {
		if c.RegSubscription == callID {
			c.RegSubscription = ""
		}
	})
}

// trackRegSubscription remembers a SUBSCRIBE dialog so its NOTIFYs are
// accepted.
func (s *PCSCF) trackRegSubscription(callID string) {
	s.mu.Lock()
	if s.subs[callID] == nil {
		s.subs[callID] = &regSub{version: -1}
	}
	s.mu.Unlock()
}

// regSubscription returns the subscription of a NOTIFY's Call-ID: one this
// P-CSCF sent, or one recorded with a contact reloaded at start (tracked
// then by reload); nil when unknown. A map look-up: a NOTIFY with a
// made-up Call-ID costs no scan of the contacts.
func (s *PCSCF) regSubscription(callID string) *regSub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs[callID]
}

// handleRegNotify serves a NOTIFY of the reg event package (RFC 3680,
// TS 24.229 §5.2.3): 481 for a Call-ID that is none of our
// subscriptions, 489 for another event package, 415 for a body that is
// not application/reginfo+xml, 400 for a reginfo document that does not
// parse; otherwise the document is applied (see applyReginfo; a version
// not above the last one applied in the subscription is ignored, RFC 3680
// §4.4) and 200 sent. "Subscription-State: terminated" ends the
// subscription.
func (s *PCSCF) handleRegNotify(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	callID := ""
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	sub := s.regSubscription(callID)
	if sub == nil {
		s.m.rejected.WithLabelValues("unknown_subscription").Inc()
		_ = t.Respond(sip.StatusCallTransactionDoesNotExists, "Subscription Does Not Exist")
		return
	}
	if ev := req.GetHeader("Event"); ev == nil || !strings.EqualFold(strings.TrimSpace(strings.SplitN(ev.Value(), ";", 2)[0]), "reg") {
		_ = t.Respond(489, "Bad Event")
		return
	}
	var doc *reginfo.Reginfo
	if len(req.Body()) > 0 {
		if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(strings.SplitN(ct.Value(), ";", 2)[0]), reginfo.ContentType) {
			_ = t.Respond(sip.StatusUnsupportedMediaType, "Unsupported Media Type", sip.NewHeader("Accept", reginfo.ContentType))
			return
		}
		var err error
		if doc, err = reginfo.Parse(req.Body()); err != nil {
			s.log.Info("reg-event NOTIFY body not understood", zap.String("call-id", callID), zap.Error(err))
			_ = t.Respond(sip.StatusBadRequest, "Bad Request - reginfo not understood")
			return
		}
	}
	if st := req.GetHeader("Subscription-State"); st != nil && strings.HasPrefix(strings.ToLower(strings.TrimSpace(st.Value())), "terminated") {
		s.mu.Lock()
		delete(s.subs, callID)
		s.mu.Unlock()
	}
	if doc != nil {
		s.applyRegNotify(ctx, sub, doc)
	}
	// Answered after the document is applied: once the notifier has the
	// 200, the P-CSCF no longer serves a terminated contact.
	_ = t.Respond(sip.StatusOK, "OK")
}

func (s *PCSCF) applyRegNotify(ctx context.Context, sub *regSub, doc *reginfo.Reginfo) {
	s.mu.Lock()
	last := sub.version
	stale := last >= 0 && doc.Version <= last
	if !stale {
		sub.version = doc.Version
	}
	s.mu.Unlock()
	if stale {
		// RFC 3680 §4.4 (subscriber): an older or repeated document is
		// discarded.
		s.log.Info("reg-event NOTIFY with an old version ignored", zap.Int("version", doc.Version), zap.Int("last", last))
		return
	}
	if doc.State == reginfo.StatePartial && last >= 0 && doc.Version > last+1 {
		s.log.Warn("reg-event: partial state after a version gap (documents lost); applying it", zap.Int("version", doc.Version), zap.Int("last", last))
	}
	s.applyReginfo(ctx, doc)
}

// applyReginfo updates the contact store from a reginfo document (TS 24.229
// §5.2.3), per registration element (an IMPU) and each stored contact that
// has that IMPU:
//   - registration "terminated" (or "init": no binding): the IMPU is
//     removed from the contact;
//   - in an active registration, a contact element whose URI is the stored
//     contact, in state "terminated" (event deactivated, unregistered,
//     expired, rejected, probation): the binding of the UE's contact (shared
//     by its implicit registration set) is gone, the contact is
//     de-registered;
//   - full state only: an active registration that does not list the stored
//     contact as active no longer binds it, the IMPU is removed.
//
// A contact left without IMPUs is de-registered, which removes its SAs and
// ends its Rx sessions. Partial state only changes what it lists.
func (s *PCSCF) applyReginfo(ctx context.Context, doc *reginfo.Reginfo) {
	full := doc.State == reginfo.StateFull
	for _, r := range doc.Registrations {
		for _, c := range s.store.ByIMPU(r.AOR) {
			drop := r.State == reginfo.RegTerminated || r.State == reginfo.RegInit
			listedActive := false
			for _, ct := range r.Contacts {
				if !sameContactURI(ct.URI, c.AOR) {
					continue
				}
				if ct.State == reginfo.ContactTerminated && !drop {
					s.log.Info("reg-event: contact terminated", zap.String("aor", c.AOR), zap.String("impu", r.AOR), zap.String("event", string(ct.Event)))
					s.deregister(ctx, c.Key())
					drop = false
					listedActive = false
					c = nil
					break
				}
				listedActive = true
			}
			if c == nil {
				continue
			}
			if full && r.State == reginfo.RegActive && !listedActive {
				drop = true
			}
			if drop {
				s.dropIMPU(ctx, c, r.AOR)
			}
		}
	}
	s.updateGauges()
}

// dropIMPU removes impu from contact c, de-registering c when it was the
// last one.
func (s *PCSCF) dropIMPU(ctx context.Context, c *contacts.Contact, impu string) {
	left := 0
	_, err := s.store.Update(ctx, c.Key(), func(x *contacts.Contact) {
		keep := x.IMPUs[:0]
		for _, i := range x.IMPUs {
			if !strings.EqualFold(i, impu) {
				keep = append(keep, i)
			}
		}
		x.IMPUs = keep
		left = len(keep)
	})
	if err != nil {
		s.log.Warn("update contact", zap.Error(err))
	}
	s.log.Info("reg-event: public identity de-registered", zap.String("aor", c.AOR), zap.String("impu", impu), zap.Int("impus-left", left))
	if left == 0 {
		s.deregister(ctx, c.Key())
	}
}

// sameContactURI compares a reginfo contact URI with a stored Contact URI:
// scheme, user, host and port (5060 when absent); parameters are ignored.
func sameContactURI(a, b string) bool {
	if strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b)) {
		return true
	}
	var ua, ub sip.Uri
	if sip.ParseUri(strings.TrimSpace(a), &ua) != nil || sip.ParseUri(strings.TrimSpace(b), &ub) != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && ua.User == ub.User && sameHost(ua.Host, ub.Host) && portOr(ua.Port) == portOr(ub.Port)
}
