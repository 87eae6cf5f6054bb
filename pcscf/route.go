package pcscf

import (
	"context"
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pcscf/contacts"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/sipproxy"
)

func parseIP(h string) net.IP { return net.ParseIP(strings.Trim(h, "[]")) }

// hostRef is imsheader.HostRef.
var hostRef = imsheader.HostRef

// ueFacingURI is the Record-Route entry the UE sees: the protected
// server port when the contact uses IPsec, else the main address, or the
// advertised one (--advertise).
func (s *PCSCF) ueFacingURI(c *contacts.Contact, transport string) *sip.Uri {
	u := s.proxy.URI(transport)
	if c.SA != nil {
		u.Port = int(c.SA.PCSCF.PortS)
	} else if host, port, ok := s.advertisedTo(c); ok {
		u.Host, u.Port = host, port
	}
	return &u
}

// originating handles a request from a registered UE (TS 24.229 §5.2.6.3).
func (s *PCSCF) originating(ctx context.Context, t *sipproxy.Txn, c *contacts.Contact) {
	req := t.Request()
	initial := req.To() == nil || !req.To().Params.Has("tag")
	chargingFromUE(req, c, initial)
	if initial && !req.IsAck() {
		// Asserted identity from the preferred one when it belongs to
		// the registration set, else the default IMPU.
		id := imsheader.NameAddr{URI: c.IMPUs[0]}
		if pp, err := imsheader.GetPPreferredIdentity(req); err == nil {
			for _, p := range pp {
				if containsFold(c.IMPUs, p.URI) {
					id = imsheader.NameAddr{URI: p.URI, DisplayName: p.DisplayName}
					break
				}
			}
		}
		imsheader.RemoveHeaders(req, imsheader.HeaderPPreferredIdentity)
		imsheader.SetPAssertedIdentity(req, id)
		pcv := imsheader.NewPChargingVector(imsheader.NewICID(), hostRef(s.cfg.SIPHost))
		pcv.SetOrigIOI(s.cfg.Domain)
		imsheader.SetPChargingVector(req, pcv)
		// Preloaded route = Service-Route (§5.2.6.3.3: replace whatever
		// the UE put).
		for req.RemoveHeader("Route") {
		}
		var tg sipproxy.Target
		for _, r := range c.ServiceRoute {
			var u sip.Uri
			if err := sip.ParseUri(r, &u); err == nil {
				tg.Route = append(tg.Route, u)
			}
		}
		// Towards the home network (its only way on): a 503 with
		// Retry-After reaches the UE, which backs off (TS 24.229 §5.1.3.1).
		opts := sipproxy.ForwardOptions{PassOverload503: true}
		if req.Method != sip.MESSAGE && req.Method != sip.OPTIONS && req.Method != sip.PUBLISH {
			opts.RecordRoute = true
			opts.RecordRouteURI = s.ueFacingURI(c, "udp")
			if _, _, ok := s.advertisedTo(c); ok {
				// RFC 5658: the UE's entry below, the core's on top.
				req.PrependHeader(&sip.RecordRouteHeader{Address: *opts.RecordRouteURI})
				core := s.proxy.URI("udp")
				opts.RecordRouteURI = &core
			}
		}
		s.forward(ctx, t, c, opts, tg, true)
		return
	}
	imsheader.RemoveHeaders(req, imsheader.HeaderPPreferredIdentity)
	imsheader.RemoveHeaders(req, imsheader.HeaderPAssertedIdentity)
	s.forward(ctx, t, c, sipproxy.ForwardOptions{PassOverload503: true}, sipproxy.Target{}, true)
}

// terminating delivers a request from the core to the UE's stored flow
// (TS 24.229 §5.2.6.4).
func (s *PCSCF) terminating(ctx context.Context, t *sipproxy.Txn, c *contacts.Contact) {
	req := t.Request()
	initial := req.To() == nil || !req.To().Params.Has("tag")
	if initial && req.IsInvite() && c.SignallingLost != "" {
		// TS 23.228: after the PCRF reported the loss of the bearer
		// carrying the UE's signalling, new sessions towards it are
		// refused as "user not reachable" until it registers again.
		s.m.rejected.WithLabelValues("signalling_lost").Inc()
		s.log.Info("terminating INVITE refused: the UE's signalling bearer is lost", zap.String("aor", c.AOR), zap.String("specific-action", c.SignallingLost))
		_ = t.Respond(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", sip.NewHeader("Warning", `399 `+hostRef(s.cfg.SIPHost)+` "Rx: signalling bearer of the UE lost"`))
		return
	}
	chargingRes := s.chargingFromCore(req, c, initial)
	if terminatingPrivacy(req) {
		s.log.Debug("P-Asserted-Identity withheld from the UE (Privacy: id)", zap.String("call-id", req.CallID().Value()))
	}
	tg := s.ueTarget(c, req)
	opts := sipproxy.ForwardOptions{OnResponse: chargingRes}
	if host, port, ok := s.advertisedTo(c); ok {
		opts.SentBy = joinHostPort(host, port) // the UE answers there
	}
	if initial && req.Method != sip.MESSAGE && req.Method != sip.OPTIONS && !req.IsAck() {
		opts.RecordRoute = true
		opts.RecordRouteURI = s.ueFacingURI(c, tg.Transport)
		if opts.SentBy != "" {
			// RFC 5658: the core's entry below, the UE's on top.
			req.PrependHeader(&sip.RecordRouteHeader{Address: s.proxy.URI(tg.Transport)})
		}
	}
	s.forward(ctx, t, c, opts, tg, false)
}

// ueTarget is where a request to the UE goes: its flow, or over the SA
// from our port-c to its port-s. Large requests use TCP when possible
// (RFC 3261 §18.1.1): over the SA (the UE listens on TCP port-s, TS
// 33.203 §7.1) or on a TCP flow of the same UE.
func (s *PCSCF) ueTarget(c *contacts.Contact, req *sip.Request) sipproxy.Target {
	big := imsheader.WireSize(req) > UDPSizeLimit
	local := s.proxy.Addr("udp").IP.String()
	if c.SA != nil {
		tr := c.Flow.Transport
		if big {
			tr = "tcp"
		}
		hop := sip.Uri{Scheme: "sip", Host: c.SA.UE.IP.String(), Port: int(c.SA.UE.PortS)}
		// From the port-c of the UE's own SA set: over TCP, sipgo's
		// connection from that local address is this UE's alone.
		return sipproxy.Target{NextHop: &hop, Transport: tr, Laddr: joinHostPort(local, int(c.SA.PCSCF.PortC))}
	}
	flow := c.Flow
	if big && flow.Transport == "udp" {
		for _, o := range s.store.ByAOR(c.AOR) {
			if o.Flow.Transport == "tcp" && sameHost(o.Flow.Host, flow.Host) {
				flow = o.Flow
				s.log.Debug("request larger than UDP limit: using the UE's TCP flow", zap.Int("size", imsheader.WireSize(req)))
				break
			}
		}
	}
	hop := sip.Uri{Scheme: "sip", Host: flow.Host, Port: flow.Port}
	// No Laddr for TCP: sipgo re-uses the UE's connection (keyed by its
	// address); a TCP Laddr would dial a new one.
	return sipproxy.Target{NextHop: &hop, Transport: flow.Transport}
}

// forward proxies with Rx hooks and relays the result.
func (s *PCSCF) forward(ctx context.Context, t *sipproxy.Txn, c *contacts.Contact, opts sipproxy.ForwardOptions, tg sipproxy.Target, orig bool) {
	req := t.Request()
	initialInvite := req.IsInvite() && (req.To() == nil || !req.To().Params.Has("tag"))
	// The caller's edit of every response (charging) runs after the Rx hooks.
	edit := opts.OnResponse
	opts.OnResponse = nil
	fctx := ctx
	var key string
	var upd *mediaUpdate
	if s.rx != nil {
		var abort context.CancelFunc
		if initialInvite && s.cfg.RxPolicy == RxRequired {
			if !s.rx.Ready() {
				// --rx required and no PCRF: fail before anything is
				// set up downstream (TS 24.229 §5.2.7.2: 503).
				s.log.Warn("Rx required but the PCRF is not connected: INVITE rejected", zap.String("call-id", req.CallID().Value()))
				s.m.rejected.WithLabelValues("rx_required").Inc()
				_ = t.Respond(sip.StatusServiceUnavailable, "Service Unavailable", s.rxWarning("PCRF not connected"))
				return
			}
			var cancel context.CancelFunc
			fctx, cancel = context.WithCancel(ctx)
			defer cancel()
			abort = cancel
		}
		s.rxBefore(ctx, req, c, orig, abort)
		opts.OnResponse = func(_ sipproxy.Target, res *sip.Response) { s.rxOnResponse(req, res, c, orig) }
		if !initialInvite && (req.IsInvite() || req.Method == sip.UPDATE) {
			if upd = s.rxUpdateStart(req, c, orig); upd != nil {
				opts.OnResponse = func(_ sipproxy.Target, res *sip.Response) { s.rxUpdateOnResponse(upd, res) }
			}
		}
		key = callKey(req.CallID().Value(), orig)
	}
	var cl *call
	if key != "" && initialInvite {
		s.mu.Lock()
		cl = s.calls[key]
		s.mu.Unlock()
		if cl != nil && s.cfg.RxAARAtOffer {
			if reason := s.rxAtOffer(key, c); reason != "" {
				// --rx required: the PCRF refused the offer (or did
				// not answer); nothing was forwarded.
				s.m.rejected.WithLabelValues("rx_required").Inc()
				s.rxEnd(context.Background(), key)
				_ = t.Respond(sip.StatusServiceUnavailable, "Service Unavailable", s.rxWarning(reason))
				return
			}
		}
	}
	releaseOnAnswer(ctx, &opts)
	// Provisional responses are relayed by t.Forward after OnResponse, the
	// final one below.
	onRes := opts.OnResponse
	opts.OnResponse = func(tg sipproxy.Target, res *sip.Response) {
		if onRes != nil {
			onRes(tg, res)
		}
		if edit != nil {
			edit(tg, res)
		}
		if orig {
			chargingTowardsUE(res) // responses to the UE
			responsePrivacy(res)   // RFC 3325 §7: no PAI to the UE with Privacy: id
		}
	}
	// The request's only forward: sent without a copy (its Rx state
	// keeps a copy of its own, rxBefore).
	opts.Consume = true
	res, err := t.Forward(fctx, opts, tg)
	if req.IsAck() {
		return
	}
	if err != nil {
		s.log.Info("forward failed", zap.String("method", string(req.Method)), zap.Error(err))
	}
	if upd != nil {
		s.mu.Lock()
		failed := upd.failed
		s.mu.Unlock()
		if failed != "" {
			// --rx required and the AAR for the media change failed:
			// relay the answer, then release the call both ways (as for
			// a failed AAR on the initial 2xx).
			s.m.rejected.WithLabelValues("rx_required").Inc()
			if res != nil && !(req.IsInvite() && res.IsSuccess()) {
				_ = t.Relay(res)
			}
			if upd.cl.ok != nil {
				go s.releaseCall(upd.cl, "Rx required, AAR for the media change failed", "Rx: "+failed, true)
			} else {
				go s.rxEnd(context.Background(), callKey(upd.cl.callID, upd.cl.orig))
			}
			return
		}
	}
	failed := ""
	if cl != nil {
		s.mu.Lock()
		failed = cl.failed
		s.mu.Unlock()
	}
	if s.rx != nil && res != nil && res.StatusCode >= 300 && initialInvite {
		// Failed or CANCELed (487) initial INVITE: end its Rx session.
		s.rxEnd(context.Background(), key)
	}
	if failed != "" && res != nil {
		s.m.rejected.WithLabelValues("rx_required").Inc()
		if res.IsSuccess() {
			// The 2xx is relayed already (a proxy cannot turn it into a
			// failure): release the dialog both ways.
			go s.releaseCall(cl, "Rx required, AAR failed", "Rx: "+failed, true)
			return
		}
		if !t.Canceled() {
			_ = t.Respond(sip.StatusServiceUnavailable, "Service Unavailable", s.rxWarning(failed))
			return
		}
	}
	if res != nil {
		_ = t.Relay(res)
	}
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// advertised is Config.Advertise as sipproxy.Config.Advertised.
func advertised(a string) []string {
	if a == "" {
		return nil
	}
	return []string{a}
}

// advertisedTo returns the advertised host and port (--advertise) when UEs
// reach this P-CSCF there and c is such a UE's contact (not one over IPsec
// SAs, which address the P-CSCF's own IP).
func (s *PCSCF) advertisedTo(c *contacts.Contact) (string, int, bool) {
	if s.cfg.Advertise == "" || c.SA != nil {
		return "", 0, false
	}
	h, p, _ := net.SplitHostPort(s.cfg.Advertise)
	port, _ := strconv.Atoi(p)
	return h, port, true
}
