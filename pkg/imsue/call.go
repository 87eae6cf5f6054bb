package imsue

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
)

// Call is one call (INVITE dialog, RFC 3261 §12-§15) of the UE, placed
// with Call or received.
type Call struct {
	u        *UE
	ID       string // Call-ID
	Peer     string // the other party's URI (To of an outgoing call, From of an incoming one)
	Incoming bool
	// InviteSize is the size in bytes of the INVITE as sent or received,
	// and InviteTransport its transport ("udp" or "tcp").
	InviteSize      int
	InviteTransport string

	mu           sync.Mutex
	local        sip.FromHeader // our side (From of our requests)
	remote       sip.ToHeader   // their side
	remoteTarget sip.Uri
	routeSet     []sip.Uri
	cseq         uint32
	acked        chan struct{}
	done         chan struct{}
	ended        bool
}

// CallOptions tune Call.
type CallOptions struct {
	// MinSize pads the INVITE to at least this many bytes with SDP
	// attribute lines, as VoLTE INVITEs with preconditions and several
	// codecs are (above 1,300 bytes they go over TCP, RFC 3261 §18.1.1).
	MinSize int
}

// AnswerPolicy says what the UE does with incoming INVITEs.
type AnswerPolicy struct {
	// Reject, when not 0, is the final status sent (e.g. 486).
	Reject int
	// Delay between 180 Ringing and 200 OK.
	Delay time.Duration
}

// SetAnswer sets how incoming calls are answered (default: 180, then 200
// at once).
func (u *UE) SetAnswer(p AnswerPolicy) {
	u.mu.Lock()
	u.answer = p
	u.mu.Unlock()
}

// Incoming delivers the calls the UE answered.
func (u *UE) Incoming() <-chan *Call { return u.incoming }

// Done is closed when the call ends (BYE sent or received).
func (c *Call) Done() <-chan struct{} { return c.done }

// Call places a call to target (a sip: or tel: URI) over the SA in use
// (TS 24.229 §5.1.3): INVITE with an SDP offer, 180, 200, ACK. It returns
// once the ACK is sent.
func (u *UE) Call(ctx context.Context, target string, o CallOptions) (*Call, error) {
	var to sip.Uri
	if err := sip.ParseUri(target, &to); err != nil {
		return nil, fmt.Errorf("%w: call target %q: %v", ErrConfig, target, err)
	}
	if !u.Registered() {
		return nil, fmt.Errorf("%w: calls need a registration", ErrNotReg)
	}
	sa := u.SA()
	req := u.initialRequest(sip.INVITE, to, sa)
	req.AppendHeader(sip.NewHeader("Supported", "timer, sec-agree"))
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, MESSAGE, NOTIFY, OPTIONS, UPDATE"))
	req.AppendHeader(sip.NewHeader("Accept-Contact", `*;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel"`))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	body := sdpOffer(u.ip.String())
	req.SetBody(body)
	if o.MinSize > 0 {
		for n := 0; imsheader.WireSize(req) < o.MinSize; n++ {
			body = append(body, []byte(fmt.Sprintf("a=imsue-pad:%03d %s\r\n", n, strings.Repeat("x", 60)))...)
			req.SetBody(body)
		}
	}
	c := &Call{u: u, ID: req.CallID().Value(), Peer: target, acked: make(chan struct{}), done: make(chan struct{})}
	c.local = *req.From()
	c.remote = *req.To()
	c.cseq = 1
	u.mu.Lock()
	u.calls[c.ID] = c
	u.mu.Unlock()
	start := time.Now()
	res, err := u.do(ctx, req, sa, func(p *sip.Response) {
		u.step("call-progress", start, p, nil, map[string]any{"call_id": c.ID})
	})
	c.InviteSize, c.InviteTransport = imsheader.WireSize(req), strings.ToLower(req.Transport())
	detail := map[string]any{"call_id": c.ID, "to": target, "invite_bytes": c.InviteSize, "transport": c.InviteTransport}
	u.step("call", start, res, err, detail)
	if err != nil {
		u.forget(c)
		return nil, err
	}
	if !res.IsSuccess() {
		u.forget(c)
		return nil, statusError("INVITE", res)
	}
	c.mu.Lock()
	if t := res.To(); t != nil {
		c.remote = *t
	}
	if ct := res.Contact(); ct != nil {
		c.remoteTarget = ct.Address
	}
	// UAC route set: Record-Route of the 2xx, reversed (RFC 3261 §12.1.2).
	rr := res.GetHeaders("Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		if h, ok := rr[i].(*sip.RecordRouteHeader); ok {
			c.routeSet = append(c.routeSet, h.Address)
		}
	}
	c.mu.Unlock()
	ack := c.inDialog(sip.ACK, 1)
	if err := u.send(ctx, ack, sa); err != nil {
		return c, fmt.Errorf("%w: ACK: %v", ErrTransport, err)
	}
	close(c.acked)
	u.emit(Event{Step: "call-established", Detail: map[string]any{"call_id": c.ID}})
	return c, nil
}

// inDialog builds a request of the dialog (Request-URI the remote
// target, Route the route set); cseq 0 takes the next number.
func (c *Call) inDialog(method sip.RequestMethod, cseq uint32) *sip.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cseq == 0 {
		c.cseq++
		cseq = c.cseq
	}
	req := sip.NewRequest(method, c.remoteTarget)
	from := sip.FromHeader{Address: c.local.Address, Params: c.local.Params.Clone()}
	to := sip.ToHeader{Address: c.remote.Address, Params: c.remote.Params.Clone()}
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	cid := sip.CallIDHeader(c.ID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	for _, r := range c.routeSet {
		req.AppendHeader(&sip.RouteHeader{Address: r})
	}
	req.SetBody(nil)
	return req
}

// Hangup ends the call with BYE over the SA in use.
func (c *Call) Hangup(ctx context.Context) error {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	bye := c.inDialog(sip.BYE, 0)
	start := time.Now()
	res, err := c.u.do(ctx, bye, c.u.SA(), nil)
	c.u.step("hangup", start, res, err, map[string]any{"call_id": c.ID})
	c.end()
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return statusError("BYE", res)
	}
	return nil
}

func (c *Call) end() {
	c.mu.Lock()
	if !c.ended {
		c.ended = true
		close(c.done)
	}
	c.mu.Unlock()
	c.u.forget(c)
}

func (u *UE) forget(c *Call) {
	u.mu.Lock()
	delete(u.calls, c.ID)
	u.mu.Unlock()
}

func (u *UE) call(id string) *Call {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[id]
}

// onInvite answers an incoming INVITE per the answer policy: 180, then
// 200 with an SDP answer, retransmitted until the ACK (RFC 3261
// §13.3.1.4).
func (u *UE) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.To() != nil && req.To().Params.Has("tag") {
		// Re-INVITE: accept without a new SDP negotiation.
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", sdpOffer(u.ip.String()))
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.AppendHeader(&sip.ContactHeader{Address: u.contactURI(strings.ToLower(req.Transport())), Params: sip.NewParams()})
		_ = tx.Respond(res)
		return
	}
	u.mu.Lock()
	pol := u.answer
	u.mu.Unlock()
	c := &Call{u: u, ID: req.CallID().Value(), Incoming: true, acked: make(chan struct{}), done: make(chan struct{}),
		InviteSize: imsheader.WireSize(req), InviteTransport: strings.ToLower(req.Transport())}
	if f := req.From(); f != nil {
		c.Peer = f.Address.String()
		c.remote = sip.ToHeader{Address: f.Address, Params: f.Params.Clone()}
	}
	if ct := req.Contact(); ct != nil {
		c.remoteTarget = ct.Address
	}
	for _, h := range req.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			c.routeSet = append(c.routeSet, rr.Address)
		}
	}
	detail := map[string]any{"call_id": c.ID, "from": c.Peer, "invite_bytes": c.InviteSize, "transport": c.InviteTransport}
	if pai, err := imsheader.GetPAssertedIdentity(req); err == nil && len(pai) > 0 {
		detail["asserted"] = pai[0].URI
	}
	u.emit(Event{Step: "incoming-call", Detail: detail})
	if pol.Reject != 0 {
		_ = tx.Respond(sip.NewResponseFromRequest(req, pol.Reject, "Rejected", nil))
		return
	}
	contact := &sip.ContactHeader{Address: u.contactURI(c.InviteTransport), Params: sip.NewParams()}
	ringing := sip.NewResponseFromRequest(req, sip.StatusRinging, "Ringing", nil)
	ringing.AppendHeader(contact)
	if err := tx.Respond(ringing); err != nil {
		u.emit(Event{Step: "answer", Error: err.Error(), Detail: map[string]any{"call_id": c.ID}})
		return
	}
	// The same To tag on the 200 as on the 180.
	to := ringing.To()
	c.local = sip.FromHeader{Address: to.Address, Params: to.Params.Clone()}
	u.mu.Lock()
	u.calls[c.ID] = c
	u.mu.Unlock()
	if pol.Delay > 0 {
		select {
		case <-time.After(pol.Delay):
		case <-u.ctx.Done():
			return
		}
	}
	ok := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", sdpOffer(u.ip.String()))
	ok.ReplaceHeader(sip.HeaderClone(to))
	ok.AppendHeader(contact)
	ok.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	if err := tx.Respond(ok); err != nil {
		u.emit(Event{Step: "answer", Error: err.Error(), Detail: map[string]any{"call_id": c.ID}})
		return
	}
	u.emit(Event{Step: "answered", Status: 200, Detail: map[string]any{"call_id": c.ID}})
	select {
	case u.incoming <- c:
	default:
	}
	// 2xx retransmissions until the ACK (T1 doubling to T2, 64*T1).
	u.bg.Add(1)
	go func() {
		defer u.bg.Done()
		wait := sip.T1
		deadline := time.After(64 * sip.T1)
		for {
			select {
			case <-c.acked:
				u.emit(Event{Step: "call-established", Detail: map[string]any{"call_id": c.ID}})
				return
			case <-c.done:
				return
			case <-u.ctx.Done():
				return
			case <-deadline:
				u.emit(Event{Step: "call-established", Error: "no ACK for the 200 within 64*T1", Detail: map[string]any{"call_id": c.ID}})
				return
			case <-time.After(wait):
				_ = u.srv.WriteResponse(ok)
				if wait *= 2; wait > sip.T2 {
					wait = sip.T2
				}
			}
		}
	}()
}

func (u *UE) onAck(req *sip.Request, _ sip.ServerTransaction) {
	if c := u.call(req.CallID().Value()); c != nil {
		c.mu.Lock()
		select {
		case <-c.acked:
		default:
			close(c.acked)
		}
		c.mu.Unlock()
	}
}

func (u *UE) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := u.call(req.CallID().Value())
	if c == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call Does Not Exist", nil))
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	u.emit(Event{Step: "call-ended", Detail: map[string]any{"call_id": c.ID, "by": "peer"}})
	c.end()
}

// sdpOffer is an audio offer as VoLTE phones make (AMR-WB, AMR,
// telephone-event), used for the answer too.
func sdpOffer(ip string) []byte {
	id := time.Now().UnixNano() % 1000000000
	return []byte(fmt.Sprintf("v=0\r\no=imsue %d 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nb=AS:41\r\nt=0 0\r\n"+
		"m=audio 40000 RTP/AVP 116 107 118 111 110\r\nb=AS:41\r\nb=RS:0\r\nb=RR:1000\r\n"+
		"a=rtpmap:116 AMR-WB/16000/1\r\na=fmtp:116 mode-change-capability=2;max-red=0\r\n"+
		"a=rtpmap:107 AMR-WB/16000/1\r\na=fmtp:107 octet-align=1;mode-change-capability=2;max-red=0\r\n"+
		"a=rtpmap:118 AMR/8000/1\r\na=fmtp:118 mode-change-capability=2;max-red=0\r\n"+
		"a=rtpmap:111 telephone-event/16000\r\na=fmtp:111 0-15\r\na=rtpmap:110 telephone-event/8000\r\na=fmtp:110 0-15\r\n"+
		"a=ptime:20\r\na=maxptime:240\r\na=sendrecv\r\n", id, ip, ip))
}
