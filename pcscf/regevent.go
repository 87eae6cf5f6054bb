package pcscf

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pcscf/contacts"
	"github.com/imscore/imscore/pkg/intern"
	"github.com/imscore/imscore/pkg/reginfo"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// subscribeRegEvent subscribes to the reg event package (RFC 3680) of the
// contact's default IMPU at the S-CSCF (first Service-Route hop), TS
// 24.229 §5.2.3, and keeps the subscription refreshed (refreshRegSubs).
// Failures are logged only.
func (s *PCSCF) subscribeRegEvent(key string, c *contacts.Contact) {
	sub := s.newRegSub(key, c)
	if sub == nil {
		return
	}
	_, _ = s.store.Update(context.Background(), key, func(c *contacts.Contact) { c.RegSubscription = sub.callID })
	s.startRegSub(sub)
}

// newRegSub prepares the reg-event subscription of the contact under key
// (a new Call-ID and tag), nil when the contact has no Service-Route or
// no sip: default IMPU to subscribe to.
func (s *PCSCF) newRegSub(key string, c *contacts.Contact) *regSub {
	if len(c.ServiceRoute) == 0 || len(c.IMPUs) == 0 {
		return nil
	}
	var hop, target sip.Uri
	if err := sip.ParseUri(c.ServiceRoute[0], &hop); err != nil {
		return nil
	}
	if err := sip.ParseUri(c.IMPUs[0], &target); err != nil || target.Scheme != "sip" {
		return nil
	}
	sub := &regSub{version: -1, key: key, target: c.IMPUs[0], hop: c.ServiceRoute[0]}
	sub.callID = sip.GenerateTagN(16) + "@" + s.cfg.SIPHost
	sub.fromTag = sip.GenerateTagN(10)
	return sub
}

// startRegSub records sub (its NOTIFYs are accepted from now on) and
// sends its SUBSCRIBE; the contact holds its Call-ID already.
func (s *PCSCF) startRegSub(sub *regSub) {
	s.mu.Lock()
	sub.busy = true
	s.subs[sub.callID] = sub
	s.mu.Unlock()
	s.wg.Add(1)
	// A pooled goroutine (sip.GoPooled): sending the SUBSCRIBE grows a
	// new goroutine's stack.
	sip.GoPooled(func() {
		defer s.wg.Done()
		s.sendRegSubscribe(sub)
	})
}

// sendRegSubscribe sends the SUBSCRIBE of sub: the initial one, or a
// refresh in its dialog (RFC 6665 §4.1.2.1: same Call-ID and tags, next
// CSeq, to the notifier's Contact). A failed refresh (481: the S-CSCF no
// longer has it) is followed by a new subscription while the contact
// lasts.
func (s *PCSCF) sendRegSubscribe(sub *regSub) {
	s.mu.Lock()
	sub.cseq++
	refresh := sub.toTag != ""
	cseq, toTag, remote := sub.cseq, sub.toTag, sub.remote
	s.mu.Unlock()
	// newRegSub checked that target and hop parse; remote is the
	// notifier's Contact as parsed from its 200.
	var target, hop, ruri sip.Uri
	_ = sip.ParseUri(sub.target, &target)
	_ = sip.ParseUri(sub.hop, &hop)
	ruri = target
	if remote != "" {
		_ = sip.ParseUri(remote, &ruri)
	}
	tr := "udp"
	if v, ok := hop.UriParams.Get("transport"); ok {
		tr = strings.ToLower(v)
	}
	req := sip.NewRequest(sip.SUBSCRIBE, ruri)
	from := s.proxy.URI("udp")
	from.UriParams = sip.NewParams()
	from.User = regEventUser
	fp := sip.NewParams()
	fp.Add("tag", sub.fromTag)
	req.AppendHeader(&sip.FromHeader{Address: from, Params: fp})
	tp := sip.NewParams()
	if toTag != "" {
		tp.Add("tag", toTag)
	}
	req.AppendHeader(&sip.ToHeader{Address: target, Params: tp})
	cid := sip.CallIDHeader(sub.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.SUBSCRIBE})
	req.AppendHeader(&sip.ContactHeader{Address: from, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Event", "reg"))
	req.AppendHeader(sip.NewHeader("Accept", "application/reginfo+xml"))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(s.cfg.RegSubscribeExpires)))
	req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+from.String()+">"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nh := sip.Uri{Scheme: "sip", Host: hop.Host, Port: hop.Port}
	res, err := s.proxy.DoConsume(ctx, req, sipproxy.Target{NextHop: &nh, Transport: tr})
	switch {
	case err != nil && (errors.Is(err, sipproxy.ErrClosed) || s.closing.Load()):
		// Shutting down: the S-CSCF may have the subscription; keep
		// the record so that a restarted P-CSCF accepts its NOTIFYs.
	case err != nil || res.StatusCode >= 300:
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		s.log.Info("reg-event SUBSCRIBE failed (continuing without it)", zap.String("impu", sub.target), zap.Bool("refresh", refresh), zap.Int("status", status), zap.Error(err))
		s.untrackRegSubscription(sub.key, sub.callID)
		if refresh && !s.closing.Load() {
			if c := s.store.Get(sub.key); c != nil {
				s.subscribeRegEvent(sub.key, c)
			}
		}
	default:
		exp := s.cfg.RegSubscribeExpires
		if h := res.GetHeader("Expires"); h != nil {
			if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 {
				exp = n
			}
		}
		s.mu.Lock()
		if t := res.To(); t != nil {
			if tag, ok := t.Params.Get("tag"); ok {
				sub.toTag = strings.Clone(tag) // not the whole To header's value
			}
		}
		if ct := res.Contact(); ct != nil {
			sub.remote = intern.String(ct.Address.String())
		}
		// Refreshed once two thirds of the granted time have passed.
		sub.refreshAt = time.Now().Add(time.Duration(exp) * time.Second * 2 / 3)
		sub.busy = false
		s.mu.Unlock()
		what := "subscribed to reg event"
		if refresh {
			what = "reg event subscription refreshed"
		}
		s.log.Debug(what, zap.String("impu", sub.target), zap.Int("status", res.StatusCode), zap.Int("expires", exp))
	}
}

// refreshRegSubs refreshes the reg event subscriptions that are due
// (run by the timer). A subscription known only from a contact reloaded
// at start has no dialog to refresh: a new one replaces it (the old
// one's NOTIFYs get 481 after that, which ends it at the S-CSCF).
func (s *PCSCF) refreshRegSubs() {
	now := time.Now()
	var due []*regSub
	s.mu.Lock()
	for _, sub := range s.subs {
		if !sub.busy && !sub.refreshAt.IsZero() && now.After(sub.refreshAt) {
			sub.busy = true
			due = append(due, sub)
		}
	}
	s.mu.Unlock()
	for _, sub := range due {
		if sub.toTag == "" {
			s.mu.Lock()
			delete(s.subs, sub.callID)
			s.mu.Unlock()
			if c := s.store.Get(sub.key); c != nil {
				s.subscribeRegEvent(sub.key, c)
			}
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.sendRegSubscribe(sub)
		}()
	}
}

// regSub is the state of one reg-event subscription (by Call-ID).
type regSub struct {
	version int    // version of the last document applied; -1 before the first
	key     string // the contact it was made for
	// The dialog (RFC 6665 §4.1.2), what a refresh needs.
	callID, fromTag, toTag string
	// target is the subscribed IMPU (the contact's default IMPU), hop the
	// first Service-Route entry, remote the notifier's Contact ("" until
	// the 200): kept as text, parsed when a SUBSCRIBE is sent (once per
	// refresh period), since a parsed URI costs several hundred bytes
	// per registered contact.
	target, hop, remote string
	cseq                uint32
	refreshAt           time.Time // zero: not scheduled
	busy                bool      // a SUBSCRIBE is in flight
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

// trackRegSubscription remembers the subscription of a contact reloaded
// at start so its NOTIFYs are accepted; without its dialog it is
// replaced by a new one soon (within a minute, spread over the contacts,
// see refreshRegSubs).
func (s *PCSCF) trackRegSubscription(callID, key string) {
	s.mu.Lock()
	if s.subs[callID] == nil {
		var b [2]byte
		_, _ = rand.Read(b[:])
		s.subs[callID] = &regSub{version: -1, key: key, callID: callID,
			refreshAt: time.Now().Add(time.Duration(binary.BigEndian.Uint16(b[:])%60000) * time.Millisecond)}
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
	terminated, retry := false, false
	if st := req.GetHeader("Subscription-State"); st != nil && strings.HasPrefix(strings.ToLower(strings.TrimSpace(st.Value())), "terminated") {
		// The subscription is over, here and on the contact, so that a
		// new one can be made (RFC 6665 §4.1.3: at once after
		// "deactivated", "timeout" or no reason; after "rejected",
		// "noresource", "invariant" or "giveup" only at the next
		// registration). Before, the contact kept its Call-ID and never
		// subscribed again.
		terminated = true
		reason := ""
		for _, p := range strings.Split(strings.ToLower(st.Value()), ";")[1:] {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && k == "reason" {
				reason = strings.Trim(v, `" `)
			}
		}
		retry = reason == "" || reason == "deactivated" || reason == "timeout"
		s.untrackRegSubscription(sub.key, callID)
	}
	if doc != nil {
		s.applyRegNotify(ctx, sub, doc)
	}
	// Answered after the document is applied: once the notifier has the
	// 200, the P-CSCF no longer serves a terminated contact.
	_ = t.Respond(sip.StatusOK, "OK")
	if terminated && retry && sub.key != "" && !s.closing.Load() {
		if c := s.store.Get(sub.key); c != nil && c.RegSubscription == "" {
			s.subscribeRegEvent(sub.key, c)
		}
	}
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
