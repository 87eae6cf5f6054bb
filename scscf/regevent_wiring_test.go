package scscf

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/siptest"
	"github.com/imscore/imscore/scscf/binding"

	"github.com/emiago/sipgo/sip"
	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/reginfo"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
)

// Test wiring of the reg-event notifier and the third-party registrar
// while Server.handle does not dispatch to them yet: a front sipproxy
// (test code) receives the UE's REGISTERs and forwards them to the real
// S-CSCF, hands the REGISTER and its 200 to ThirdPartyRegistrar.AfterRegister
// with the binding.Event the S-CSCF emitted, and passes SUBSCRIBE
// Event: reg to RegEventNotifier.HandleSubscribe. The notifier and the
// third-party registrar send from the S-CSCF's own SIP socket, as wired
// in production.
type regLab struct {
	t     *testing.T
	h     *testHSS
	s     *Server
	front *sipproxy.Proxy
	shim  *Server // SIPAddr() is the front: testUE.send goes through it

	mu   sync.Mutex
	n    *RegEventNotifier
	tp   *ThirdPartyRegistrar
	evCh chan binding.Event
}

// newRegLab starts an S-CSCF (configured further by mods) with its
// reg-event notifier and third-party registrar, behind a front proxy.
func newRegLab(t *testing.T, h *testHSS, dsn string, deregister func(impu, reason string), mods ...func(*Config)) *regLab {
	t.Helper()
	l := &regLab{t: t, h: h, evCh: make(chan binding.Event, 100)}
	l.s = newTestServer(t, h, dsn, func(c *Config) {
		for _, mod := range mods {
			mod(c)
		}
		c.OnRegistrationChange = func(ev binding.Event) {
			l.mu.Lock()
			n, tp := l.n, l.tp
			l.mu.Unlock()
			if n != nil {
				n.OnRegistrationChange(ev)
			}
			if tp != nil {
				tp.OnRegistrationChange(ev)
			}
			select {
			case l.evCh <- ev:
			default:
			}
		}
	})
	n, err := NewRegEventNotifier(l.s, RegEventConfig{SweepInterval: 50 * time.Millisecond, NotifyTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.LoadSubscriptions(ctx); err != nil {
		t.Fatal(err)
	}
	if deregister == nil {
		deregister = l.s.NetworkDeregister
	}
	tp, err := NewThirdPartyRegistrar(l.s, ThirdPartyConfig{Timeout: 2 * time.Second}, deregister)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.n, l.tp = n, tp
	l.mu.Unlock()
	t.Cleanup(func() { tp.Close(); n.Close() })

	p, err := sipproxy.New(sipproxy.Config{ListenAddr: "127.0.0.1:0", Handler: l.handle, Logger: siptest.Logger(t).Named("front")})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	l.front = p
	l.shim = &Server{proxy: p}
	return l
}

// close stops the lab's S-CSCF (for restart tests).
func (l *regLab) close() {
	l.tp.Close()
	l.n.Close()
	_ = l.front.Close()
	_ = l.s.Close()
}

func (l *regLab) handle(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	switch {
	case req.Method == sip.REGISTER:
		a := l.s.SIPAddr()
		res, err := t.Forward(ctx, sipproxy.ForwardOptions{}, sipproxy.Target{NextHop: &sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: a.Port}})
		if err != nil || res.StatusCode != 200 {
			return
		}
		// The event of this REGISTER: registered/refreshed/deregistered for
		// the set of its To (events of other users' network-side changes
		// may be queued too).
		var ev *binding.Event
		impu := binding.CanonURI(req.To().Address.String())
		timeout := time.After(time.Second)
	wait:
		for {
			select {
			case e := <-l.evCh:
				if e.Kind != binding.EventRegistered && e.Kind != binding.EventRefreshed && e.Kind != binding.EventDeregistered {
					continue
				}
				for _, u := range append([]string{e.After.AOR}, e.After.IMPUs...) {
					if binding.CanonURI(u) == impu {
						ev = &e
						break wait
					}
				}
			case <-timeout:
				break wait
			}
		}
		_ = t.Relay(res)
		if ev != nil {
			l.tp.AfterRegister(*ev, req, res)
		}
	case IsRegEvent(req): // production: l.n.Handles(req); here every reg SUBSCRIBE, to see 480/481
		l.n.HandleSubscribe(ctx, t)
	default:
		_ = t.Respond(501, "Not Implemented")
	}
}

// notifyRec is a NOTIFY a test peer received.
type notifyRec struct {
	req   *sip.Request
	state string // Subscription-State
	doc   *reginfo.Reginfo
}

// testPeer is a SIP peer on a sipproxy: a reg-event subscriber (P-CSCF,
// UE or AS stand-in) that records NOTIFYs and answers them with code, or
// an AS that records REGISTERs and answers them with code.
type testPeer struct {
	t    *testing.T
	p    *sipproxy.Proxy
	mu   sync.Mutex
	code int
	got  chan *sip.Request
}

func newTestPeer(t *testing.T, code int) *testPeer {
	t.Helper()
	tp := &testPeer{t: t, code: code, got: make(chan *sip.Request, 50)}
	p, err := sipproxy.New(sipproxy.Config{ListenAddr: "127.0.0.1:0", Logger: siptest.Logger(t).Named("peer"),
		Handler: func(ctx context.Context, tx *sipproxy.Txn) {
			tp.mu.Lock()
			c := tp.code
			tp.mu.Unlock()
			tp.got <- tx.Request()
			if c == 0 { // no answer: let the transaction time out
				<-ctx.Done()
				return
			}
			_ = tx.Respond(c, "Test")
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	tp.p = p
	return tp
}

func (tp *testPeer) uri(user string) sip.Uri {
	a := tp.p.Addr("udp")
	return sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: a.Port, UriParams: sip.NewParams(), Headers: sip.NewParams()}
}

func (tp *testPeer) hostport() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(tp.p.Addr("udp").Port))
}

// next waits for the next request the peer received.
func (tp *testPeer) next(within time.Duration) *sip.Request {
	tp.t.Helper()
	select {
	case r := <-tp.got:
		return r
	case <-time.After(within):
		tp.t.Fatalf("no request within %v", within)
		return nil
	}
}

// none checks that nothing arrives within d.
func (tp *testPeer) none(d time.Duration) {
	tp.t.Helper()
	select {
	case r := <-tp.got:
		tp.t.Fatalf("unexpected request:\n%s", r)
	case <-time.After(d):
	}
}

// nextNotify waits for a NOTIFY and parses its reginfo body.
func (tp *testPeer) nextNotify(within time.Duration) notifyRec {
	tp.t.Helper()
	r := tp.next(within)
	if r.Method != sip.NOTIFY {
		tp.t.Fatalf("want NOTIFY, got %s", r.Method)
	}
	rec := notifyRec{req: r}
	if h := r.GetHeader("Subscription-State"); h != nil {
		rec.state = h.Value()
	}
	if ct := r.ContentType(); ct == nil || ct.Value() != reginfo.ContentType {
		tp.t.Fatalf("NOTIFY Content-Type %v", ct)
	}
	doc, err := reginfo.Parse(r.Body())
	if err != nil {
		tp.t.Fatalf("NOTIFY body: %v\n%s", err, r.Body())
	}
	rec.doc = doc
	return rec
}

// subscription is the subscriber's side of a reg-event dialog.
type subscription struct {
	callID, fromTag, toTag string
	from, to               sip.Uri
	remote                 sip.Uri // Contact of the 200
	cseq                   uint32
}

// subscribe sends SUBSCRIBE Event: reg for impu through the lab's front
// with P-Asserted-Identity pai, and returns the final response.
func (tp *testPeer) subscribe(l *regLab, impu, pai string, expires int) (*sip.Response, *subscription) {
	tp.t.Helper()
	var target sip.Uri
	if err := sip.ParseUri(impu, &target); err != nil {
		tp.t.Fatal(err)
	}
	sub := &subscription{callID: sip.GenerateTagN(16) + "@test", fromTag: sip.GenerateTagN(8), from: tp.uri("sub"), to: target}
	req := sip.NewRequest(sip.SUBSCRIBE, target)
	fp := sip.NewParams()
	fp.Add("tag", sub.fromTag)
	req.AppendHeader(&sip.FromHeader{Address: sub.from, Params: fp})
	req.AppendHeader(&sip.ToHeader{Address: target, Params: sip.NewParams()})
	cid := sip.CallIDHeader(sub.callID)
	req.AppendHeader(&cid)
	sub.cseq = 1
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.SUBSCRIBE})
	req.AppendHeader(&sip.ContactHeader{Address: tp.uri("sub"), Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Event", "reg"))
	req.AppendHeader(sip.NewHeader("Accept", reginfo.ContentType))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	if pai != "" {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+pai+">"))
	}
	res := tp.do(l, req)
	if res.StatusCode == 200 {
		if v, ok := res.To().Params.Get("tag"); ok {
			sub.toTag = v
		}
		if c := res.Contact(); c != nil {
			sub.remote = c.Address
		}
	}
	return res, sub
}

// unsubscribe sends the in-dialog SUBSCRIBE with Expires expires.
func (tp *testPeer) resubscribe(l *regLab, sub *subscription, expires int) *sip.Response {
	tp.t.Helper()
	req := sip.NewRequest(sip.SUBSCRIBE, sub.remote)
	fp := sip.NewParams()
	fp.Add("tag", sub.fromTag)
	req.AppendHeader(&sip.FromHeader{Address: sub.from, Params: fp})
	tparams := sip.NewParams()
	tparams.Add("tag", sub.toTag)
	req.AppendHeader(&sip.ToHeader{Address: sub.to, Params: tparams})
	cid := sip.CallIDHeader(sub.callID)
	req.AppendHeader(&cid)
	sub.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: sub.cseq, MethodName: sip.SUBSCRIBE})
	req.AppendHeader(&sip.ContactHeader{Address: tp.uri("sub"), Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Event", "reg"))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	return tp.do(l, req)
}

func (tp *testPeer) do(l *regLab, req *sip.Request) *sip.Response {
	tp.t.Helper()
	a := l.front.Addr("udp")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := tp.p.Do(ctx, req, sipproxy.Target{NextHop: &sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: a.Port}})
	if err != nil {
		tp.t.Fatalf("SUBSCRIBE: %v", err)
	}
	return res
}

// serveProfiles makes h answer SAR with User-Data built by profile (iFCs
// included) instead of userDataFor; it records the SARs as h.sar does.
func serveProfiles(t *testing.T, h *testHSS, profile func(s *testSub) *userdata.IMSSubscription) {
	h.node.Handle(diameter.CmdServerAssignment, diameter.AppCx, func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		r := cxReq{cmd: diameter.CmdServerAssignment, impi: diameter.String(req, diameter.AVPUserName),
			impu: diameter.String(req, diameter.AVPPublicIdentity), server: diameter.String(req, diameter.AVPServerName)}
		r.sat, _ = diameter.Uint32(req, diameter.AVPServerAssignmentType)
		r.uda, _ = diameter.Uint32(req, diameter.AVPUserDataAlreadyAvailable)
		h.record(r)
		h.mu.Lock()
		s := h.subs[r.impi]
		h.mu.Unlock()
		if s == nil {
			return h.node.AnswerExperimental(req, diameter.DiameterErrorUserUnknown), nil
		}
		a := h.node.Answer(req, diameter.DiameterSuccess)
		a.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(r.impi)))
		if r.sat == diameter.SATRegistration || r.sat == diameter.SATReRegistration {
			b, err := userdata.Marshal(profile(s))
			if err != nil {
				t.Error(err)
				return nil, err
			}
			a.AddAVP(diameter.NewAVP(diameter.AVPUserData, datatype.OctetString(b)))
		}
		return a, nil
	})
}

// registerIFC is an iFC matching REGISTER of the given types (none: all)
// towards as.
func registerIFC(prio int, as userdata.ApplicationServer, types ...userdata.RegistrationType) userdata.InitialFilterCriteria {
	m := "REGISTER"
	return userdata.InitialFilterCriteria{Priority: prio, ApplicationServer: as,
		TriggerPoint: &userdata.TriggerPoint{ConditionTypeCNF: true,
			SPTs: []userdata.SPT{{Groups: []uint32{0}, Method: &m, RegistrationTypes: types}}}}
}

// profileWith is the User-Data of s with ifcs in its one service profile.
func profileWith(s *testSub, ifcs ...userdata.InitialFilterCriteria) *userdata.IMSSubscription {
	sp := userdata.ServiceProfile{InitialFilterCriteria: ifcs}
	for _, u := range s.impus {
		sp.PublicIdentities = append(sp.PublicIdentities, userdata.PublicIdentity{Identity: u, BarringIndication: userdata.Bool(s.barred[u])})
	}
	return &userdata.IMSSubscription{PrivateID: s.impi, ServiceProfiles: []userdata.ServiceProfile{sp}}
}
