package sipproxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Do sends req as a UAC (NOTIFY, third-party REGISTER, OPTIONS, ...) to tg
// through a client transaction and returns the final response, with this
// proxy's Via removed. req must carry From (with tag) and may omit To
// (taken from the Request-URI), Call-ID, CSeq (1), Max-Forwards (70) and
// Content-Length, which are added. A Via is added; req must not have one.
// Provisional responses are skipped. The wait is bounded by ctx and by
// Config.TimerC (INVITE) / Config.NonInviteTimeout; on timeout the error is
// ErrTimeout. For an INVITE the caller sends the 2xx ACK with Send.
func (p *Proxy) Do(ctx context.Context, req *sip.Request, tg Target) (*sip.Response, error) {
	return p.do(ctx, req, tg, false)
}

// DoConsume is Do sending req itself rather than a copy of it, for a
// request built for this one call (a reg-event SUBSCRIBE or NOTIFY, a
// third-party REGISTER): one copy of the message fewer. req belongs to
// the client transaction from the call on: the caller may read it (it
// then carries the outgoing Via, Max-Forwards, Route and Request-URI) but
// must neither edit it nor send it again. Errors and the wait as for Do.
func (p *Proxy) DoConsume(ctx context.Context, req *sip.Request, tg Target) (*sip.Response, error) {
	return p.do(ctx, req, tg, true)
}

func (p *Proxy) do(ctx context.Context, req *sip.Request, tg Target, consume bool) (*sip.Response, error) {
	if req.IsAck() {
		return nil, errors.New("sipproxy: use Send for ACK")
	}
	if err := p.completeRequest(req); err != nil {
		return nil, err
	}
	var r *sip.Request
	var err error
	if consume {
		r, err = p.buildOutgoingInPlace(req, tg, nil, "")
	} else {
		r, err = p.buildOutgoing(req, tg, nil, "")
	}
	if err != nil {
		return nil, err
	}
	cctx, cancel := requestContext(ctx, r)
	tx, err := p.txl.Request(cctx, r)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTransport, err)
	}
	defer tx.Terminate()
	timeout := p.cfg.NonInviteTimeout
	if r.IsInvite() {
		timeout = p.cfg.TimerC
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			popOwnVia(p, res)
			return res, nil
		case <-tx.Done():
			if errors.Is(tx.Err(), sip.ErrTransactionTimeout) {
				return nil, ErrTimeout
			}
			return nil, fmt.Errorf("%w: %v", ErrTransport, tx.Err())
		case <-timer.C:
			return nil, ErrTimeout
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.baseCtx.Done():
			return nil, ErrClosed
		}
	}
}

// Send writes req statelessly (no transaction) to tg after adding Via and
// the missing mandatory headers, e.g. the ACK for a 2xx.
func (p *Proxy) Send(req *sip.Request, tg Target) error {
	if err := p.completeRequest(req); err != nil {
		return err
	}
	r, err := p.buildOutgoing(req, tg, nil, "")
	if err != nil {
		return err
	}
	return p.tp.WriteMsg(r)
}

func (p *Proxy) completeRequest(req *sip.Request) error {
	if req.Via() != nil {
		return errors.New("sipproxy: request already has a Via")
	}
	if req.From() == nil {
		return errors.New("sipproxy: request needs a From header")
	}
	if req.To() == nil {
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: req.Recipient.Scheme, User: req.Recipient.User, Host: req.Recipient.Host}})
	}
	if req.CallID() == nil {
		var b [16]byte
		_, _ = rand.Read(b[:])
		cid := sip.CallIDHeader(hex.EncodeToString(b[:]))
		req.AppendHeader(&cid)
	}
	if req.CSeq() == nil {
		req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: req.Method})
	}
	if req.MaxForwards() == nil {
		mf := sip.MaxForwardsHeader(DefaultMaxForwards + 1) // buildOutgoing decrements
		req.AppendHeader(&mf)
	}
	if req.ContentLength() == nil {
		req.SetBody(req.Body())
	}
	return nil
}
