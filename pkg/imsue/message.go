package imsue

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/reginfo"
)

// Message is a MESSAGE the UE received (RFC 3428).
type Message struct {
	From     string // P-Asserted-Identity, else From
	Text     string
	Size     int // bytes of the request
	Received time.Time
}

// Messages delivers the MESSAGEs the UE received.
func (u *UE) Messages() <-chan Message { return u.messages }

// SendMessage sends a MESSAGE with text/plain text to target over the SA
// in use (TS 24.229 §5.1.2A: a request outside a dialog).
func (u *UE) SendMessage(ctx context.Context, target, text string, opts ...SendOptions) error {
	var to sip.Uri
	if err := sip.ParseUri(target, &to); err != nil {
		return fmt.Errorf("%w: MESSAGE target %q: %v", ErrConfig, target, err)
	}
	if !u.Registered() {
		return fmt.Errorf("%w: MESSAGE needs a registration", ErrNotReg)
	}
	sa := u.SA()
	if len(opts) > 0 && opts[0].Unprotected {
		sa = nil
	}
	req := u.initialRequest(sip.MESSAGE, to, sa)
	req.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
	req.SetBody([]byte(text))
	start := time.Now()
	res, err := u.do(ctx, req, sa, nil)
	u.step("message", start, res, err, map[string]any{"to": target, "bytes": len(text)})
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return statusError("MESSAGE", res)
	}
	return nil
}

func (u *UE) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	m := Message{Text: string(req.Body()), Size: imsheader.WireSize(req), Received: time.Now()}
	if f := req.From(); f != nil {
		m.From = f.Address.String()
	}
	if pai, err := imsheader.GetPAssertedIdentity(req); err == nil && len(pai) > 0 {
		m.From = pai[0].URI
	}
	u.emit(Event{Step: "message-received", Detail: map[string]any{"from": m.From, "text": m.Text, "transport": strings.ToLower(req.Transport())}})
	select {
	case u.messages <- m:
	default:
	}
}

// RegNotify is one reg event NOTIFY the UE received for its subscription.
type RegNotify struct {
	Doc        *reginfo.Reginfo
	Terminated bool // Subscription-State: terminated
	// Deregistered is true when the document ends this UE's contact or
	// its registration (network-initiated de-registration, TS 24.229
	// §5.1.1.7).
	Deregistered bool
	Received     time.Time
}

// regSubscription is the UE's reg event subscription dialog.
type regSubscription struct {
	callID  string
	notifys chan RegNotify
	ended   chan struct{} // closed by the NOTIFY that ends it
	once    sync.Once
}

// SubscribeReg subscribes to the reg event package of the UE's IMPU
// (TS 24.229 §5.1.1.3, RFC 3680); NOTIFYs are delivered on the returned
// channel. A NOTIFY that ends the UE's registration marks it
// unregistered and removes its SAs once answered.
func (u *UE) SubscribeReg(ctx context.Context) (<-chan RegNotify, error) {
	if !u.Registered() {
		return nil, fmt.Errorf("%w: the reg event subscription needs a registration", ErrNotReg)
	}
	var impu sip.Uri
	_ = sip.ParseUri(u.cfg.IMPU, &impu)
	sa := u.SA()
	req := u.initialRequest(sip.SUBSCRIBE, impu, sa)
	req.AppendHeader(sip.NewHeader("Event", "reg"))
	req.AppendHeader(sip.NewHeader("Accept", reginfo.ContentType))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(u.cfg.Expires)))
	sub := &regSubscription{callID: req.CallID().Value(), notifys: make(chan RegNotify, 16), ended: make(chan struct{})}
	u.mu.Lock()
	u.sub = sub
	u.mu.Unlock()
	start := time.Now()
	res, err := u.do(ctx, req, sa, nil)
	u.step("subscribe-reg", start, res, err, nil)
	if err != nil {
		return nil, err
	}
	if !res.IsSuccess() {
		return nil, statusError("SUBSCRIBE reg", res)
	}
	return sub.notifys, nil
}

func (u *UE) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	u.mu.Lock()
	sub := u.sub
	u.mu.Unlock()
	if sub == nil || req.CallID().Value() != sub.callID {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Subscription Does Not Exist", nil))
		return
	}
	n := RegNotify{Received: time.Now()}
	if st := req.GetHeader("Subscription-State"); st != nil && strings.HasPrefix(strings.ToLower(strings.TrimSpace(st.Value())), "terminated") {
		n.Terminated = true
	}
	if len(req.Body()) > 0 {
		doc, err := reginfo.Parse(req.Body())
		if err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request - reginfo", nil))
			u.emit(Event{Step: "reg-notify", Error: "reginfo: " + err.Error()})
			return
		}
		n.Doc = doc
		n.Deregistered = u.endsMe(doc)
	}
	if err := tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)); err != nil {
		u.emit(Event{Step: "reg-notify", Error: "answering NOTIFY: " + err.Error()})
	}
	d := map[string]any{"terminated": n.Terminated, "deregistered": n.Deregistered, "transport": strings.ToLower(req.Transport())}
	if n.Doc != nil {
		d["version"], d["state"] = n.Doc.Version, string(n.Doc.State)
	}
	u.emit(Event{Step: "reg-notify", Detail: d})
	// The UE's own de-registration: its de-REGISTER is out (the NOTIFY
	// may come before the 200) or has had its 200 (Deregister has
	// cleared the registration; the NOTIFY may be handled after that, a
	// fraction of a millisecond later). Only a NOTIFY ending a
	// registration the UE still holds is the network's.
	u.mu.Lock()
	own := u.deregging || !u.regState.registered
	u.mu.Unlock()
	if n.Deregistered && own {
		// Deregister drops the registration and SAs.
		u.emit(Event{Step: "deregistered-notify"})
	} else if n.Deregistered {
		u.mu.Lock()
		u.regState.registered = false
		old := u.sa
		u.sa, u.server = nil, ""
		u.mu.Unlock()
		u.emit(Event{Step: "network-deregistered"})
		if old != nil && u.be != nil {
			// After the 200 has left through the SA.
			u.bg.Add(1)
			go func() {
				defer u.bg.Done()
				time.Sleep(200 * time.Millisecond)
				_ = u.be.Remove(*old)
			}()
		}
	}
	select {
	case sub.notifys <- n:
	default:
	}
	if n.Terminated || n.Deregistered {
		sub.once.Do(func() { close(sub.ended) })
	}
}

// endsMe reports whether a reginfo document terminates the UE's contact
// (same host and port) or the registration of its IMPU.
func (u *UE) endsMe(doc *reginfo.Reginfo) bool {
	for _, r := range doc.Registrations {
		if !strings.EqualFold(r.AOR, u.cfg.IMPU) {
			continue
		}
		if r.State == reginfo.RegTerminated {
			return true
		}
		for _, c := range r.Contacts {
			var cu sip.Uri
			if err := sip.ParseUri(strings.TrimSpace(c.URI), &cu); err != nil {
				continue
			}
			if cu.Host == u.ip.String() && cu.Port == u.portS && c.State == reginfo.ContactTerminated {
				return true
			}
		}
	}
	return false
}

// serverHandlers routes the requests the UE receives.
func (u *UE) serverHandlers() {
	u.srv.OnInvite(u.onInvite)
	u.srv.OnAck(u.onAck)
	u.srv.OnBye(u.onBye)
	u.srv.OnMessage(u.onMessage)
	u.srv.OnNotify(u.onNotify)
	u.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	u.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	u.srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusMethodNotAllowed, "Method Not Allowed", nil))
	})
}
