package sipproxy

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Errors returned by Forward together with a locally generated response.
var (
	ErrTimeout     = errors.New("sipproxy: no final response before timeout")       // response 408 (INVITE), 504 (other methods, RFC 4320 §4.1)
	ErrTransport   = errors.New("sipproxy: transport failure towards target")       // response 503 (500 when selected, RFC 3261 §16.7)
	ErrTooManyHops = errors.New("sipproxy: Max-Forwards is 0")                      // response 483
	ErrCanceled    = errors.New("sipproxy: request canceled")                       // response 487
	ErrConsumed    = errors.New("sipproxy: request already forwarded with Consume") // response 500
)

// Target is one destination of Forward (RFC 3261 §16.5/§16.6).
type Target struct {
	// RequestURI replaces the Request-URI (retargeting); nil keeps it.
	RequestURI *sip.Uri
	// Route entries pushed on top of the request's Route set, in order
	// (e.g. Service-Route, Path, an AS with the ODI).
	Route []sip.Uri
	// NextHop, if set, is where the request is sent (host, port, and
	// ;transport=), without touching Request-URI or Route (like Kamailio's
	// $du). Otherwise the next hop is the top Route, else the Request-URI.
	// Host names are resolved with DNS A/AAAA (then SRV, by sipgo).
	NextHop *sip.Uri
	// Transport "udp" or "tcp"; default: ;transport= of the next hop, else udp.
	Transport string
	// Laddr "ip:port" selects the local socket the request leaves from. For
	// UDP it must be one of the proxy's UDP listeners (default: the primary
	// one). For TCP it is the local address the connection is dialled from;
	// it must not be a TCP listening port (see package notes).
	Laddr string
}

// ForwardOptions tune one Forward call.
type ForwardOptions struct {
	// RecordRoute inserts a Record-Route with RecordRouteURI, or with
	// p.URI(outgoing transport) (host, port, ;transport=, ;lr).
	RecordRoute    bool
	RecordRouteURI *sip.Uri
	// Timeout overrides Config.TimerC (INVITE) / Config.NonInviteTimeout.
	Timeout time.Duration
	// OnResponse is called for every response received from a branch
	// (provisional and final, 100 excluded) before it is relayed or
	// returned; it may edit res. It runs on the branch goroutine.
	OnResponse func(t Target, res *sip.Response)
	// PassOverload503 passes a 503 that carries Retry-After on as it is,
	// instead of turning it into 500: for a proxy whose targets are its
	// only way on (a P-CSCF towards its home network), a downstream asking
	// for back-off means its next requests would get 503 as well, the case
	// in which RFC 3261 §21.5.4 lets a proxy forward a 503, and the UE
	// waits the Retry-After time (TS 24.229 §5.1.3.1, §5.1.2.2). A 503
	// without Retry-After still becomes 500.
	PassOverload503 bool
	// SentBy is the "host:port" written as sent-by in this proxy's Via
	// (one of Config.Advertised, for requests to clients that reach the
	// proxy through a NAT or a published port and answer to that port);
	// "" writes Config.Host and the port the request leaves from.
	SentBy string
	// Consume sends the request itself rather than a copy when Forward has
	// one target and the request is the handler's working copy (an INVITE
	// or another dialog-forming request; see needsWorkingCopy): one copy
	// of the message fewer. The handler promises to forward it no more: a
	// later Forward answers 500 (ErrConsumed). After Forward the request's
	// Via, Route, Record-Route, Max-Forwards and Request-URI are the
	// outgoing ones; its body and other header fields are unchanged.
	Consume bool
}

// Txn is one server transaction handed to the Handler: the received request
// and the means to answer it, forward it, or both. Its methods are safe for
// concurrent use.
type Txn struct {
	p      *Proxy
	origin *sip.Request // as received; owned by sipgo's server transaction
	req    *sip.Request // working copy after §16.4 pre-processing
	popped *sip.Uri     // own Route entry removed by §16.4 pre-processing
	stx    *sip.ServerTx
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	finalSent bool
	canceled  bool
	last      *sip.Response // last Forward result not yet relayed
	relayed   *sip.Response
	branches  []*branch
	consumed  bool // req was sent itself (ForwardOptions.Consume)
	dest      string
	laddr     string // the local address the request arrived on
}

// LocalAddr returns the local "ip:port" the request arrived on: the
// socket of a UDP request (as sipgo recorded it on the message), the
// connection's local end for TCP; "" when unknown. A P-CSCF tells by it
// whether a request came through a UE's IPsec SA (to the protected
// server port of that UE's SA set) or not.
func (t *Txn) LocalAddr() string { return t.laddr }

// localAddrOf is the socket req was read from: the one sipgo's UDP
// transport recorded (ReceivedOn, third_party/sipgo FORK.md), the
// connection's local end for TCP.
func localAddrOf(req *sip.Request, stx *sip.ServerTx) string {
	if strings.EqualFold(req.Transport(), "udp") {
		return req.ReceivedOn()
	}
	if c := stx.Connection(); c != nil {
		if la := c.LocalAddr(); la != nil {
			return la.String()
		}
	}
	return ""
}

// SetResponseDestination makes the responses to the request go to
// hostport ("ip:port") instead of where RFC 3261 §18.2.2 sends them (the
// source address with the Via port, or rport). Over UDP they still leave
// from the socket the request came in on. A P-CSCF answers a request that
// came over an IPsec SA to the UE's protected client port (TS 33.203
// §7.1), whatever the Via says.
//
// For an INVITE it sends the 100 Trying there at once (RFC 3261 §16.2):
// sipgo's own 100, sent when no provisional response has left 200 ms
// after the INVITE (Timer 1xx, §17.2.1), is addressed by the Via alone
// and would reach the UE's protected server port instead.
func (t *Txn) SetResponseDestination(hostport string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dest = hostport
	if t.origin.IsInvite() && !t.finalSent && !t.canceled {
		_ = t.relayLocked(t.NewResponse(sip.StatusTrying, "Trying"))
	}
}

// Request returns the request after pre-processing (own Route popped). The
// handler may modify it before Forward; each branch forwards a copy.
func (t *Txn) Request() *sip.Request { return t.req }

// RemovedRoute returns a copy of the Route entry addressing this proxy that
// RFC 3261 §16.4 pre-processing took off the request before the handler ran
// (user part and parameters as received, e.g. the "term" marker of a
// P-CSCF's Path entry <sip:term@pcscf;lr>), or nil when no Route was
// removed. When an upstream strict router put our Record-Route value in the
// Request-URI (§16.4 first step), that Request-URI is what was removed and
// is returned. The returned URI may be modified by the caller.
func (t *Txn) RemovedRoute() *sip.Uri {
	if t.popped == nil {
		return nil
	}
	return t.popped.Clone()
}

// Proxy returns the proxy that received the request.
func (t *Txn) Proxy() *Proxy { return t.p }

// Context is cancelled when the transaction ends or is CANCELed upstream.
func (t *Txn) Context() context.Context { return t.ctx }

// Canceled reports whether the upstream client CANCELed the INVITE (sipgo
// has then already answered 200 to the CANCEL and 487 to the INVITE).
func (t *Txn) Canceled() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.canceled
}

// NewResponse builds a response to the request (RFC 3261 §8.2.6) with extra
// headers, for Respond-like use with edits.
func (t *Txn) NewResponse(code int, reason string, hdrs ...sip.Header) *sip.Response {
	res := sip.NewResponseFromRequest(t.origin, code, reason, nil)
	res.SipVersion = "SIP/2.0"
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	return res
}

// Respond answers the request as a UAS with code, reason and extra headers.
func (t *Txn) Respond(code int, reason string, hdrs ...sip.Header) error {
	return t.Relay(t.NewResponse(code, reason, hdrs...))
}

// Relay sends res upstream over the server transaction: a response built by
// NewResponse, or one returned by Forward (its own Via is already removed).
// Relaying the same response twice is a no-op; after a final response only
// further 2xx to an INVITE are sent (forking, RFC 3261 §16.7 step 5).
func (t *Txn) Relay(res *sip.Response) error {
	if res == nil {
		return errors.New("sipproxy: nil response")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.relayLocked(res)
}

func (t *Txn) relayLocked(res *sip.Response) error {
	if res == t.relayed {
		return nil
	}
	if t.p.cfg.HideWarnings {
		for res.RemoveHeader("Warning") {
		}
	}
	invite2xx := t.origin.IsInvite() && res.IsSuccess()
	if t.finalSent && !invite2xx {
		if res.IsProvisional() {
			return nil
		}
		return fmt.Errorf("sipproxy: final response already sent, dropping %d", res.StatusCode)
	}
	if t.dest == "" {
		// What a response built from the request would carry (RFC 3261
		// §18.2.2), without building one: that was 7 % of the P-CSCF's
		// allocation at 300 calls/s.
		t.dest = t.origin.ResponseDestination()
	}
	res.SetDestination(t.dest)
	res.SetTransport(t.origin.Transport())
	if !res.IsProvisional() {
		// Counted before it leaves, so that whoever got it sees it counted.
		t.p.countAnswer(t.origin.Method, res.StatusCode)
	}
	var err error
	if t.canceled && invite2xx {
		// The server transaction is completed with 487; a 2xx from a
		// branch still has to reach the caller (RFC 3261 §16.7 step 5).
		err = t.stx.Connection().WriteMsg(res)
	} else {
		err = t.stx.Respond(res)
	}
	if !res.IsProvisional() {
		t.finalSent = true
		t.relayed = res
		t.last = nil
	}
	return err
}

// Forward proxies the request statefully to targets in parallel (RFC 3261
// §16.6; none given: by Route, else Request-URI) and returns the best final
// response (§16.7), Via removed, not yet relayed, except a 2xx to an INVITE
// which is relayed at once. The handler may edit it, forward again (next
// target), or Relay it; if it returns without a final response, the last
// result is relayed. Provisional responses (not 100) are relayed as they
// come. On 2xx or 6xx the INVITE branches still pending are CANCELed.
//
// err is nil when the response came from downstream; otherwise the response
// is local and err is ErrTimeout (408 to an INVITE; 504 Server Time-out to
// any other method, as RFC 4320 §4.1 forbids a 408 to a non-INVITE),
// ErrTransport (503/500),
// ErrTooManyHops (483) or ErrCanceled (487; ctx done or upstream CANCEL).
// An ACK is forwarded statelessly and Forward returns (nil, send error).
func (t *Txn) Forward(ctx context.Context, opts ForwardOptions, targets ...Target) (*sip.Response, error) {
	if len(targets) == 0 {
		targets = []Target{{}}
	}
	if t.origin.IsAck() {
		r, err := t.p.buildOutgoing(t.req, targets[0], &opts, ackBranch(t.req))
		if err != nil {
			return nil, err
		}
		return nil, t.p.tp.WriteMsg(r)
	}
	if t.Canceled() {
		return t.local(sip.StatusRequestTerminated, "Request Terminated"), ErrCanceled
	}
	if t.consumed {
		return t.local(sip.StatusInternalServerError, "Server Internal Error"), ErrConsumed
	}
	if mf := t.req.MaxForwards(); mf != nil && mf.Val() == 0 {
		return t.local(sip.StatusTooManyHops, "Too Many Hops"), ErrTooManyHops
	}
	inPlace := opts.Consume && len(targets) == 1 && t.req != t.origin
	if inPlace {
		t.consumed = true
	}
	invite := t.origin.IsInvite()
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = t.p.cfg.NonInviteTimeout
		if invite {
			timeout = t.p.cfg.TimerC
		}
	}
	results := make(chan branchResult, len(targets))
	var mine []*branch
	for _, tg := range targets {
		br, err := t.startBranch(tg, &opts, timeout, results, inPlace)
		if err != nil {
			t.p.log.Info("forward failed", zap.String("method", string(t.origin.Method)), zap.Error(err))
			results <- branchResult{res: t.local(sip.StatusServiceUnavailable, "Service Unavailable"), err: ErrTransport}
			continue
		}
		mine = append(mine, br)
	}
	cancelOthers := func() {
		for _, b := range mine {
			b.cancelBranch()
		}
	}
	var best branchResult
	for pending := len(targets); pending > 0; {
		select {
		case r := <-results:
			pending--
			if r.res.IsSuccess() {
				if invite {
					cancelOthers()
				}
				return t.result(r.res), nil
			}
			if r.res.StatusCode >= 600 {
				cancelOthers()
				return t.result(r.res), nil
			}
			if best.res == nil || r.res.StatusCode/100 < best.res.StatusCode/100 {
				best = r
			}
		case <-ctx.Done():
			cancelOthers()
			return t.local(sip.StatusRequestTerminated, "Request Terminated"), ErrCanceled
		case <-t.ctx.Done():
			cancelOthers()
			return t.local(sip.StatusRequestTerminated, "Request Terminated"), ErrCanceled
		}
	}
	if best.res.StatusCode == sip.StatusServiceUnavailable && !(opts.PassOverload503 && best.res.GetHeader("Retry-After") != nil) {
		best.res.StatusCode = sip.StatusInternalServerError
		best.res.Reason = "Server Internal Error"
	}
	return t.result(best.res), best.err
}

func (t *Txn) result(res *sip.Response) *sip.Response {
	t.mu.Lock()
	if res != t.relayed {
		t.last = res
	}
	t.mu.Unlock()
	return res
}

func (t *Txn) local(code int, reason string) *sip.Response {
	return t.result(sip.NewResponseFromRequest(t.origin, code, reason, nil))
}

type branchResult struct {
	res *sip.Response
	err error
}

type branch struct {
	t       *Txn
	target  Target
	req     *sip.Request
	tx      *sip.ClientTx
	invite  bool
	results chan<- branchResult

	mu          sync.Mutex
	provisional bool
	cancelWant  bool
	cancelSent  bool
	finished    bool
	accepted    bool // an INVITE branch that got a 2xx (its client transaction in Accepted, RFC 6026)
}

func (t *Txn) startBranch(tg Target, opts *ForwardOptions, timeout time.Duration, results chan<- branchResult, inPlace bool) (*branch, error) {
	build := t.p.buildOutgoing
	if inPlace {
		build = t.p.buildOutgoingInPlace
	}
	r, err := build(t.req, tg, opts, "")
	if err != nil {
		return nil, err
	}
	b := &branch{t: t, target: tg, req: r, invite: r.IsInvite(), results: results}
	cctx, cancel := requestContext(t.p.baseCtx, r)
	defer cancel()
	tx, err := t.p.txl.Request(cctx, r)
	if err != nil {
		return nil, err
	}
	b.tx = tx
	if b.invite {
		// 2xx retransmissions absorbed by the client transaction are
		// relayed upstream too (RFC 6026).
		tx.OnRetransmission(func(res *sip.Response) {
			if popOwnVia(t.p, res) {
				_ = t.Relay(res)
			}
		})
	}
	t.mu.Lock()
	t.branches = append(t.branches, b)
	t.mu.Unlock()
	t.p.wg.Add(1)
	// On a pooled goroutine (sipgo fork item 14): relaying a response
	// grows a new goroutine's stack by copying it, per branch.
	sip.GoPooled(func() { b.run(opts, timeout) })
	return b, nil
}

func (b *branch) run(opts *ForwardOptions, timeout time.Duration) {
	defer b.t.p.wg.Done()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	finish := func(res *sip.Response, err error) {
		b.mu.Lock()
		b.finished = true
		b.mu.Unlock()
		b.results <- branchResult{res: res, err: err}
	}
	for {
		select {
		case res := <-b.tx.Responses():
			if !popOwnVia(b.t.p, res) {
				continue
			}
			if res.IsProvisional() {
				if res.StatusCode == 100 {
					continue
				}
				b.mu.Lock()
				b.provisional = true
				sendCancel := b.cancelWant && !b.cancelSent
				if sendCancel {
					b.cancelSent = true
				}
				b.mu.Unlock()
				if sendCancel {
					b.sendCancel()
				}
				if b.invite {
					if !timer.Stop() {
						select {
						case <-timer.C:
						default:
						}
					}
					timer.Reset(timeout)
				}
				if opts.OnResponse != nil {
					opts.OnResponse(b.target, res)
				}
				_ = b.t.Relay(res)
				continue
			}
			if opts.OnResponse != nil {
				opts.OnResponse(b.target, res)
			}
			if b.invite && res.IsSuccess() {
				b.mu.Lock()
				b.accepted = true
				b.mu.Unlock()
				if err := b.t.Relay(res); err != nil {
					b.t.p.log.Warn("relaying 2xx failed", zap.Error(err))
				}
			}
			if !b.invite {
				// Not kept for Timer K (T4, 5 s over UDP: RFC 3261
				// §17.1.2.2) with the request copy and the response:
				// a retransmission of this final response, if one
				// comes, matches no transaction and is relayed
				// upstream statelessly (§16.7 step 2, handleStray-
				// Response), where the previous hop's client
				// transaction absorbs it.
				b.tx.Terminate()
			}
			finish(res, nil)
			return
		case <-b.tx.Done():
			err := b.tx.Err()
			if errors.Is(err, sip.ErrTransactionTimeout) {
				finish(b.t.timedOut(), ErrTimeout)
			} else {
				finish(b.t.localQuiet(sip.StatusServiceUnavailable, "Service Unavailable"), ErrTransport)
			}
			return
		case <-timer.C:
			b.mu.Lock()
			prov := b.provisional
			b.mu.Unlock()
			if b.invite && prov {
				// Timer C with a provisional: CANCEL and wait for the
				// 487 a little longer, then give up (RFC 3261 §16.8).
				b.cancelBranch()
				timer.Reset(sip.Timer_F)
				b.mu.Lock()
				b.provisional = false
				b.mu.Unlock()
				continue
			}
			b.tx.Terminate()
			finish(b.t.timedOut(), ErrTimeout)
			return
		}
	}
}

// timedOut is the local answer to a request whose branch got no final
// response in time: 408 to an INVITE (RFC 3261 §16.8, Timer C); 504
// Server Time-out to any other method: RFC 4320 §4.1 forbids a 408 to a
// non-INVITE, and TS 24.229 answers 504 where a CSCF's next hop stays
// silent. A
// proxy's default non-INVITE timeout is the client's Timer F, so the 504
// then comes as late as RFC 4320's silence; a shorter Forward timeout
// makes it an answer the client still gets.
func (t *Txn) timedOut() *sip.Response {
	if t.origin.IsInvite() {
		return t.localQuiet(sip.StatusRequestTimeout, "Request Timeout")
	}
	return t.localQuiet(sip.StatusGatewayTimeout, "Server Time-out")
}

func (t *Txn) localQuiet(code int, reason string) *sip.Response {
	return sip.NewResponseFromRequest(t.origin, code, reason, nil)
}

// cancelBranch CANCELs a pending INVITE branch now if it had a provisional,
// else as soon as one arrives (RFC 3261 §9.1).
func (b *branch) cancelBranch() {
	if !b.invite {
		return
	}
	b.mu.Lock()
	if b.finished || b.cancelSent {
		b.mu.Unlock()
		return
	}
	b.cancelWant = true
	send := b.provisional
	if send {
		b.cancelSent = true
	}
	b.mu.Unlock()
	if send {
		b.sendCancel()
	}
}

func (b *branch) sendCancel() {
	r := b.req
	c := sip.NewRequest(sip.CANCEL, *r.Recipient.Clone())
	c.AppendHeader(r.Via().Clone())
	for _, h := range r.GetHeaders("Route") {
		c.AppendHeader(sip.HeaderClone(h))
	}
	mf := sip.MaxForwardsHeader(DefaultMaxForwards)
	c.AppendHeader(&mf)
	if h := r.From(); h != nil {
		c.AppendHeader(sip.HeaderClone(h))
	}
	if h := r.To(); h != nil {
		c.AppendHeader(sip.HeaderClone(h))
	}
	if h := r.CallID(); h != nil {
		c.AppendHeader(sip.HeaderClone(h))
	}
	if h := r.CSeq(); h != nil {
		c.AppendHeader(&sip.CSeqHeader{SeqNo: h.SeqNo, MethodName: sip.CANCEL})
	}
	c.SetBody(nil)
	c.SetTransport(r.Transport())
	c.SetDestination(r.Destination())
	c.Laddr = r.Laddr
	p := b.t.p
	cctx, cancel := requestContext(p.baseCtx, c)
	tx, err := p.txl.Request(cctx, c)
	cancel()
	if err != nil {
		p.log.Info("sending CANCEL failed", zap.Error(err))
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer tx.Terminate()
		for {
			select {
			case res := <-tx.Responses():
				if !res.IsProvisional() {
					return
				}
			case <-tx.Done():
				return
			case <-p.baseCtx.Done(): // closing: Close waits for this goroutine
				return
			}
		}
	}()
}

// popOwnVia removes the top Via of a response if it is one this proxy added
// (sent-by host is ours, or an advertised address); reports whether the
// response may go on.
func popOwnVia(p *Proxy, res *sip.Response) bool {
	v := res.Via()
	if v == nil {
		return false
	}
	if !strings.EqualFold(v.Host, p.cfg.Host) && !p.isAdvertised(sip.Uri{Host: v.Host, Port: v.Port}) {
		return false
	}
	res.RemoveHeader("Via")
	return res.Via() != nil
}

// buildOutgoing makes the copy of req sent to target tg: Request-URI, Route,
// Record-Route, Max-Forwards and a new top Via; everything else untouched.
// branchID "" generates a random branch.
func (p *Proxy) buildOutgoing(req *sip.Request, tg Target, opts *ForwardOptions, branchID string) (*sip.Request, error) {
	return p.buildOutgoingInPlace(req.Clone(), tg, opts, branchID)
}

// buildOutgoingInPlace is buildOutgoing editing r itself (a copy of its
// own: ForwardOptions.Consume).
func (p *Proxy) buildOutgoingInPlace(r *sip.Request, tg Target, opts *ForwardOptions, branchID string) (*sip.Request, error) {
	req := r
	r.Method = wireMethod(r)
	if v := r.Via(); v != nil {
		// RFC 3581 §4 / RFC 3261 §18.2.1 on the upstream Via.
		if srcHost, srcPort, err := net.SplitHostPort(req.Source()); err == nil {
			if rp, ok := v.Params.Get("rport"); ok && rp == "" {
				v.Params.Add("rport", srcPort)
				v.Params.Add("received", srcHost)
			} else if v.Host != srcHost {
				v.Params.Add("received", srcHost)
			}
		}
	}
	if tg.RequestURI != nil {
		r.Recipient = *tg.RequestURI.Clone()
	}
	for i := len(tg.Route) - 1; i >= 0; i-- {
		// One at a time: PrependHeader(a, b) would make sipgo's Route()
		// return b.
		r.PrependHeader(&sip.RouteHeader{Address: *tg.Route[i].Clone()})
	}
	// Max-Forwards (RFC 3261 §16.6 step 3). sipgo's Clone shares the
	// MaxForwardsHeader pointer with the original: replace, never Dec().
	mfv := uint32(DefaultMaxForwards)
	if mf := r.MaxForwards(); mf != nil {
		mfv = mf.Val() - 1
		if mf.Val() == 0 {
			mfv = 0
		}
		nmf := sip.MaxForwardsHeader(mfv)
		r.ReplaceHeader(&nmf)
	} else {
		nmf := sip.MaxForwardsHeader(mfv)
		r.PrependHeader(&nmf)
	}

	hop := &r.Recipient
	if tg.NextHop != nil {
		hop = tg.NextHop
	} else if rt := r.Route(); rt != nil {
		hop = &rt.Address
	}
	transport := strings.ToLower(tg.Transport)
	if transport == "" {
		if tp, ok := hop.UriParams.Get("transport"); ok && tp != "" {
			transport = strings.ToLower(tp)
		} else {
			transport = "udp"
		}
	}
	if transport != "udp" && transport != "tcp" {
		return nil, fmt.Errorf("sipproxy: unsupported transport %q", transport)
	}
	if hop.Host == "" {
		return nil, errors.New("sipproxy: next hop has no host")
	}
	port := hop.Port
	if port == 0 {
		port = 5060
	}
	viaPort := p.listenPort(transport)
	var laddr sip.Addr
	switch {
	case tg.Laddr != "":
		host, lp, err := sip.ParseAddr(tg.Laddr)
		if err != nil {
			return nil, fmt.Errorf("sipproxy: bad Laddr %q: %w", tg.Laddr, err)
		}
		laddr = sip.Addr{IP: net.ParseIP(host), Port: lp, Hostname: host}
		if laddr.IP == nil {
			return nil, fmt.Errorf("sipproxy: Laddr %q must be an IP", tg.Laddr)
		}
		if transport == "udp" {
			viaPort = lp
		}
	case transport == "udp":
		if a := p.Addr("udp"); a != nil {
			laddr = sip.Addr{IP: a.IP, Port: a.Port, Hostname: a.IP.String()}
		}
	}
	if opts != nil && opts.RecordRoute {
		var u sip.Uri
		if opts.RecordRouteURI != nil {
			u = *opts.RecordRouteURI.Clone()
		} else {
			u = p.URI(transport)
		}
		r.PrependHeader(&sip.RecordRouteHeader{Address: u})
	}
	if branchID == "" {
		branchID = sip.GenerateBranchN(16)
	}
	viaHost := p.cfg.Host
	if opts != nil && opts.SentBy != "" {
		h, sp, err := net.SplitHostPort(opts.SentBy)
		n, perr := strconv.Atoi(sp)
		if err != nil || perr != nil {
			return nil, fmt.Errorf("sipproxy: bad SentBy %q: want host:port", opts.SentBy)
		}
		viaHost, viaPort = h, n
	}
	via := &sip.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       strings.ToUpper(transport),
		Host:            viaHost,
		Port:            viaPort,
		Params:          sip.NewParams(),
	}
	via.Params.Add("branch", branchID)
	r.PrependHeader(via)
	r.SetTransport(strings.ToUpper(transport))
	r.SetDestination(net.JoinHostPort(strings.Trim(hop.Host, "[]"), strconv.Itoa(port)))
	r.Laddr = laddr
	return r, nil
}

// requestContext is the context for handing r to a client transaction:
// it bounds a DNS look-up or a TCP dial, 10 s within parent. A UDP
// datagram to an IP address needs neither, nor a deadline's timer: it
// gets parent itself and a cancel that does nothing.
func requestContext(parent context.Context, r *sip.Request) (context.Context, context.CancelFunc) {
	if _, err := netip.ParseAddrPort(r.Destination()); err == nil && strings.EqualFold(r.Transport(), "udp") {
		return parent, func() {}
	}
	return context.WithTimeout(parent, 10*time.Second)
}

// ackBranch derives the branch of a statelessly forwarded ACK from the
// incoming one, so retransmissions keep the same branch (RFC 3261 §16.11).
func ackBranch(req *sip.Request) string {
	h := fnv.New64a()
	if v := req.Via(); v != nil {
		b, _ := v.Params.Get("branch")
		h.Write([]byte(b))
	}
	h.Write([]byte("ack"))
	return sip.RFC3261BranchMagicCookie + "sp" + strconv.FormatUint(h.Sum64(), 36)
}

// handleRequest is sipgo's transaction-layer callback for a new server
// transaction.
func (p *Proxy) handleRequest(req *sip.Request, stx *sip.ServerTx) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		if !req.IsAck() {
			p.countAnswer(req.Method, sip.StatusServiceUnavailable)
			_ = stx.Respond(sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, "Shutting Down", nil))
		}
		stx.Terminate()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	if p.answerRetransmission(req, stx) {
		return
	}

	ctx, cancel := context.WithCancel(p.baseCtx)
	defer cancel()
	t := &Txn{p: p, origin: req, stx: stx, ctx: ctx, cancel: cancel}
	stx.OnTerminate(func(string, error) { cancel() })
	if req.IsInvite() {
		stx.OnCancel(func(*sip.Request) {
			// Called under sipgo's FSM lock: do not block or take t.mu here.
			go func() {
				t.mu.Lock()
				t.canceled = true
				t.finalSent = true
				t.mu.Unlock()
				cancel()
			}()
		})
	}
	defer func() {
		if req.IsAck() {
			stx.Terminate()
		} else {
			stx.TerminateGracefully()
		}
	}()
	defer t.release() // runs before the above: keep only what retransmissions need

	if code, reason, hdrs := p.validate(req); code != 0 {
		p.log.Info("bad request", zap.String("reason", reason), zap.String("source", req.Source()))
		if !req.IsAck() {
			_ = t.Respond(code, reason, hdrs...)
		}
		return
	}
	t.laddr = localAddrOf(req, stx)
	t.req = req
	if needsWorkingCopy(req) {
		t.req = req.Clone()
	}
	t.popped = p.preprocessRoute(t.req)
	if req.IsCancel() {
		// A CANCEL matching a pending INVITE is absorbed by sipgo.
		_ = t.Respond(sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				p.log.Error("handler panic", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			}
		}()
		p.cfg.Handler(ctx, t)
	}()
	if req.IsAck() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.finalSent {
		return
	}
	res := t.last
	if res == nil {
		res = sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Internal Error", nil)
	}
	if err := t.relayLocked(res); err != nil {
		p.log.Info("sending final response failed", zap.Error(err))
	}
}

// needsWorkingCopy tells whether the handler must edit a copy of req
// rather than req itself. An INVITE's original must stay as received:
// sipgo's server transaction builds the 487 to a CANCEL from it, on its
// own goroutine, while the handler may still be editing (RFC 3261 §9.2).
// So must that of any other request that may create a dialog: a 2xx built
// here copies its Record-Route fields (§12.1.1), and the handler may have
// added ours. REGISTER, ACK and in-dialog requests (a To tag) but
// re-INVITEs are edited in place: sipgo reads only their method, and
// their answers copy only Via, From, To, Call-ID and CSeq, which a proxy
// does not change (§16.6). One clone fewer per such request.
func needsWorkingCopy(req *sip.Request) bool {
	switch {
	case req.IsInvite():
		return true
	case req.Method == sip.REGISTER || req.IsAck():
		return false
	}
	to := req.To()
	if to == nil || to.Params == nil {
		return true
	}
	tag, ok := to.Params.Get("tag")
	return !ok || tag == ""
}

// codeText holds the status codes' decimal text, so that counting an
// answer allocates nothing.
var codeText = func() (t [700]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return
}()

// countAnswer counts one final response sent upstream in sip_responses_total.
func (p *Proxy) countAnswer(m sip.RequestMethod, code int) {
	c := "other"
	if code >= 0 && code < len(codeText) {
		c = codeText[code]
	}
	p.answers.WithLabelValues(string(m), c).Inc()
}

// preprocessRoute implements RFC 3261 §16.4: a Request-URI that is our own
// Record-Route value (strict-routing upstream) is replaced by the last Route;
// then a top Route pointing at this proxy is removed, and the next one as
// well when it is ours too and one of the two is an advertised address (the
// proxy record-routed twice, RFC 5658: the advertised address towards a
// client behind a NAT, the listening one towards the other side). It
// returns the first removed own URI (the top Route, else the replaced
// Request-URI), or nil.
func (p *Proxy) preprocessRoute(r *sip.Request) *sip.Uri {
	var popped *sip.Uri
	if p.IsSelf(r.Recipient) && r.Recipient.UriParams.Has("lr") {
		routes := r.TypedHeaders("Route")
		if len(routes) > 0 {
			if last, ok := routes[len(routes)-1].(*sip.RouteHeader); ok {
				popped = r.Recipient.Clone()
				r.Recipient = *last.Address.Clone()
				removeLastRoute(r)
			}
		}
	}
	if rt := r.Route(); rt != nil && p.IsSelf(rt.Address) {
		popped = rt.Address.Clone()
		r.RemoveHeader("Route")
		if next := r.Route(); next != nil && p.IsSelf(next.Address) && (p.isAdvertised(*popped) || p.isAdvertised(next.Address)) {
			r.RemoveHeader("Route")
		}
	}
	return popped
}

// isAdvertised reports whether u's host and port (5060 if absent) are one
// of Config.Advertised.
func (p *Proxy) isAdvertised(u sip.Uri) bool {
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return p.advertised[strings.ToLower(net.JoinHostPort(strings.Trim(u.Host, "[]"), strconv.Itoa(port)))]
}

func removeLastRoute(r *sip.Request) {
	hs := r.Headers()
	idx := -1
	for i, h := range hs {
		if h.Name() == "Route" {
			idx = i
		}
	}
	if idx < 0 {
		return
	}
	keep := make([]sip.Header, 0, len(hs)-1)
	keep = append(keep, hs[:idx]...)
	keep = append(keep, hs[idx+1:]...)
	for range hs {
		if !r.RemoveHeader("Route") {
			break
		}
	}
	for _, h := range keep {
		if h.Name() == "Route" {
			// re-append preserves relative order of the other headers only
			// approximately; Route headers are rewritten anyway.
			r.AppendHeader(h)
		}
	}
}

// handleStrayResponse forwards statelessly a response matching no client
// transaction (e.g. a 2xx retransmission after the transaction ended) when
// its top Via is ours (RFC 3261 §16.7 / §16.11).
func (p *Proxy) handleStrayResponse(res *sip.Response) {
	if p.relayAccepted2xx(res) {
		return
	}
	if !popOwnVia(p, res) {
		return
	}
	v := res.Via()
	res.SetTransport(v.Transport)
	res.SetDestination("")
	res.SetDestination(res.Destination())
	if err := p.tp.WriteMsg(res); err != nil {
		p.log.Debug("stateless response relay failed", zap.Error(err))
	}
}
