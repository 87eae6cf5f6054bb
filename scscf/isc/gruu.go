package isc

// Requests to a GRUU (RFC 5627 §5.4, TS 24.229 §5.4.3.3 step 9): only the
// bindings of the instance the GRUU names are targets. A public GRUU
// names it in its "gr" parameter; a temporary GRUU (pkg/gruu) is opened
// with Config.GRUU to the IMPU and instance it was issued for, and is
// valid only while that instance's binding is the registration it was
// issued in (same Call-ID, same creation: RFC 5627 §3.2).

import (
	"context"
	"math"
	"net/url"
	"strings"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/gruu"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
)

// gruuInstance returns the instance URN of a public GRUU Request-URI (the
// value of its "gr" parameter) and true; false for any other URI,
// including a "gr" without value (a temporary GRUU).
func gruuInstance(u sip.Uri) (string, bool) {
	if u.UriParams == nil {
		return "", false
	}
	v, ok := u.UriParams.Get("gr")
	if !ok || v == "" {
		return "", false
	}
	if x, err := url.PathUnescape(v); err == nil {
		v = x // gr=urn%3Auuid%3A... as some UEs escape it
	}
	return v, true
}

// instanceContacts returns the contacts registered with +sip.instance
// instance (compared without angle brackets; URNs case-insensitively,
// RFC 8141 §3.1 is stricter but no UE varies the case).
func instanceContacts(cs []binding.Contact, instance string) []binding.Contact {
	var out []binding.Contact
	for _, c := range cs {
		if strings.EqualFold(strings.Trim(c.Instance, "<>"), instance) {
			out = append(out, c)
		}
	}
	return out
}

// openTempGRUU opens u when it is a temporary GRUU sealed with
// Config.GRUU; false for any other URI, a forged one, or without a codec.
func (s *Router) openTempGRUU(u sip.Uri) (gruu.Temp, bool) {
	if s.cfg.GRUU == nil || !gruu.IsTemp(u) {
		return gruu.Temp{}, false
	}
	t, err := s.cfg.GRUU.Parse(u)
	return t, err == nil
}

// tempGRUUContacts are the bindings of cs that temporary GRUU tg still
// reaches: its instance's, registered in the registration (Call-ID and
// creation time) it was issued in.
func tempGRUUContacts(cs []binding.Contact, tg gruu.Temp) []binding.Contact {
	var out []binding.Contact
	for _, c := range instanceContacts(cs, tg.Instance) {
		if tg.Of(c.CallID, c.Registered) {
			out = append(out, c)
		}
	}
	return out
}

// terminatingTempGRUU serves a terminating request whose Request-URI is a
// temporary GRUU (TS 24.229 §5.4.7A, RFC 5627 §5.4): the served user is
// the IMPU it was issued for, whose terminating iFCs run as for the IMPU
// itself; the request then reaches that instance only (deliver). Answers:
//   - 404 "unknown temporary GRUU": not sealed with this network's
//     secret (or no Config.GRUU);
//   - 480 "GRUU instance not registered": the IMPU or the instance has no
//     binding now;
//   - 404 "temporary GRUU no longer valid": the instance registered
//     again since (new Call-ID or new binding), which invalidates it;
//   - 404 "public identity barred" for a barred IMPU.
func (s *Router) terminatingTempGRUU(ctx context.Context, t *sipproxy.Txn) {
	tg, ok := s.openTempGRUU(t.Request().Recipient)
	if !ok {
		_ = t.Respond(404, "Not Found - unknown temporary GRUU")
		return
	}
	u, ok := s.reg.Served(tg.IMPU)
	if !ok || !u.Registered || len(instanceContacts(u.Contacts, tg.Instance)) == 0 {
		_ = t.Respond(480, "Temporarily Unavailable - GRUU instance not registered")
		return
	}
	if len(tempGRUUContacts(u.Contacts, tg)) == 0 {
		_ = t.Respond(404, "Not Found - temporary GRUU no longer valid")
		return
	}
	if u.Barred {
		_ = t.Respond(404, "Not Found - public identity barred")
		return
	}
	st := &iscState{served: u.IMPU, sescase: userdata.SessionCaseTerminatingRegistered, registered: true,
		ifcs: s.ifcsFor(u.Profile, u.IMPU), after: math.MinInt, charging: u.Charging}
	s.runISC(ctx, t, st)
}

// retargetGRUU translates the Request-URI of an in-dialog request
// routed through this S-CSCF when it is a GRUU issued here (the remote
// target of a UE that put its GRUU in Contact, RFC 5627 §4.2/§5.4): it
// becomes the contact URI of a binding the GRUU reaches and, when no
// Route is left, the binding's Path becomes the Route. Any other
// Request-URI, or a GRUU that reaches no binding now, is left as it is.
func (s *Router) retargetGRUU(req *sip.Request) {
	ru := req.Recipient
	var cs []binding.Contact
	if tg, ok := s.openTempGRUU(ru); ok {
		if u, ok := s.reg.Served(tg.IMPU); ok {
			cs = tempGRUUContacts(u.Contacts, tg)
		}
	} else if instance, ok := gruuInstance(ru); ok && s.isHome(ru) {
		if u, ok := s.reg.Served(ru.String()); ok {
			cs = instanceContacts(u.Contacts, instance)
		}
	}
	if len(cs) == 0 {
		return
	}
	c := cs[0]
	for _, o := range cs[1:] { // the binding refreshed last
		if o.Expires.After(c.Expires) {
			c = o
		}
	}
	var target sip.Uri
	if err := sip.ParseUri(strings.Trim(c.URI, "<>"), &target); err != nil {
		s.log.Warn("stored contact does not parse", zap.String("contact", c.URI), zap.Error(err))
		return
	}
	if req.Route() == nil {
		for _, p := range c.Path {
			entries, err := imsheader.ParsePath(p)
			if err != nil {
				continue
			}
			for _, n := range entries {
				if pu, err := n.SIPURI(); err == nil {
					req.AppendHeader(&sip.RouteHeader{Address: pu})
				}
			}
		}
	}
	req.Recipient = target
}

// gruuContacts returns the bindings of cs the Request-URI of t may reach
// (RFC 5627 §5.4): all of them for a URI that is no GRUU, the instance's
// for a public GRUU, the instance's still valid ones for a temporary
// GRUU. When none is left it answers t 480 and returns false.
func (s *Router) gruuContacts(t *sipproxy.Txn, cs []binding.Contact) ([]binding.Contact, bool) {
	ru := t.Request().Recipient
	if tg, ok := s.openTempGRUU(ru); ok {
		cs = tempGRUUContacts(cs, tg)
	} else if instance, ok := gruuInstance(ru); ok {
		cs = instanceContacts(cs, instance)
	} else {
		return cs, true
	}
	if len(cs) == 0 {
		_ = t.Respond(480, "Temporarily Unavailable - GRUU instance not registered")
		return nil, false
	}
	return cs, true
}
