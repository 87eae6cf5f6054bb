package scscftest

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/siptest"
	"github.com/imscore/imscore/scscf"
	"github.com/imscore/imscore/scscf/binding"
	"github.com/imscore/imscore/scscf/isc"
	"github.com/imscore/imscore/scscf/regevent"

	"github.com/emiago/sipgo/sip"
	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/reginfo"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
)

// RegLab is test wiring of the reg-event notifier and the third-party
// registrar (it predates their wiring in the Server, attachServices): a
// front sipproxy (test code) receives the UE's REGISTERs and forwards
// them to the real S-CSCF, hands the REGISTER and its 200 to
// isc.ThirdPartyRegistrar.AfterRegister
// with the binding.Event the S-CSCF emitted, and passes SUBSCRIBE
// Event: reg to regevent.Notifier.HandleSubscribe. The notifier and the
// third-party registrar send from the S-CSCF's own SIP socket, as wired
// in production.
type RegLab struct {
	t     *testing.T
	H     *HSS
	S     *scscf.Server
	Front *sipproxy.Proxy
	Shim  Front // SIPAddr() is the front: UE.Send goes through it

	mu   sync.Mutex
	N    *regevent.Notifier
	TP   *isc.ThirdPartyRegistrar
	evCh chan binding.Event
}

// Front is a front proxy as a Registrar.
type Front struct{ *sipproxy.Proxy }

// SIPAddr is the front's SIP address.
func (f Front) SIPAddr() *net.TCPAddr { return f.Addr("udp") }

// NewRegLab starts an S-CSCF (configured further by mods) with its
// reg-event notifier and third-party registrar, behind a front proxy.
func NewRegLab(t *testing.T, h *HSS, dsn string, deregister func(impu, reason string), mods ...func(*scscf.Config)) *RegLab {
	t.Helper()
	l := &RegLab{t: t, H: h, evCh: make(chan binding.Event, 100)}
	l.S = NewServer(t, h, dsn, func(c *scscf.Config) {
		for _, mod := range mods {
			mod(c)
		}
		c.OnRegistrationChange = func(ev binding.Event) {
			l.mu.Lock()
			n, tp := l.N, l.TP
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
	n, err := scscf.NewRegEventNotifier(l.S, regevent.Config{SweepInterval: 50 * time.Millisecond, NotifyTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.LoadSubscriptions(ctx); err != nil {
		t.Fatal(err)
	}
	if deregister == nil {
		deregister = l.S.NetworkDeregister
	}
	tp, err := scscf.NewThirdPartyRegistrar(l.S, isc.ThirdPartyConfig{Timeout: 2 * time.Second}, deregister)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.N, l.TP = n, tp
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
	l.Front = p
	l.Shim = Front{p}
	return l
}

// Close stops the lab's S-CSCF (for restart tests).
func (l *RegLab) Close() {
	l.TP.Close()
	l.N.Close()
	_ = l.Front.Close()
	_ = l.S.Close()
}

func (l *RegLab) handle(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	switch {
	case req.Method == sip.REGISTER:
		a := l.S.SIPAddr()
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
			l.TP.AfterRegister(*ev, req, res)
		}
	case binding.IsRegEvent(req): // production: l.N.Handles(req); here every reg SUBSCRIBE, to see 480/481
		l.N.HandleSubscribe(ctx, t)
	default:
		_ = t.Respond(501, "Not Implemented")
	}
}

// Notify is a NOTIFY a test peer received.
type Notify struct {
	Req   *sip.Request
	State string // Subscription-State
	Doc   *reginfo.Reginfo
}

// Peer is a SIP peer on a sipproxy: a reg-event subscriber (P-CSCF,
// UE or AS stand-in) that records NOTIFYs and answers them with code, or
// an AS that records REGISTERs and answers them with code.
type Peer struct {
	t    *testing.T
	P    *sipproxy.Proxy
	mu   sync.Mutex
	code int
	got  chan *sip.Request
}

// NewPeer starts a peer answering every request with code (0: never).
func NewPeer(t *testing.T, code int) *Peer {
	t.Helper()
	tp := &Peer{t: t, code: code, got: make(chan *sip.Request, 50)}
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
	tp.P = p
	return tp
}

// URI is a SIP URI of user at the peer.
func (tp *Peer) URI(user string) sip.Uri {
	a := tp.P.Addr("udp")
	return sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: a.Port, UriParams: sip.NewParams(), Headers: sip.NewParams()}
}

// HostPort is the peer's SIP address.
func (tp *Peer) HostPort() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(tp.P.Addr("udp").Port))
}

// Next waits for the next request the peer received.
func (tp *Peer) Next(within time.Duration) *sip.Request {
	tp.t.Helper()
	select {
	case r := <-tp.got:
		return r
	case <-time.After(within):
		tp.t.Fatalf("no request within %v", within)
		return nil
	}
}

// None checks that nothing arrives within d.
func (tp *Peer) None(d time.Duration) {
	tp.t.Helper()
	select {
	case r := <-tp.got:
		tp.t.Fatalf("unexpected request:\n%s", r)
	case <-time.After(d):
	}
}

// NextNotify waits for a NOTIFY and parses its reginfo body.
func (tp *Peer) NextNotify(within time.Duration) Notify {
	tp.t.Helper()
	r := tp.Next(within)
	if r.Method != sip.NOTIFY {
		tp.t.Fatalf("want NOTIFY, got %s", r.Method)
	}
	rec := Notify{Req: r}
	if h := r.GetHeader("Subscription-State"); h != nil {
		rec.State = h.Value()
	}
	if ct := r.ContentType(); ct == nil || ct.Value() != reginfo.ContentType {
		tp.t.Fatalf("NOTIFY Content-Type %v", ct)
	}
	doc, err := reginfo.Parse(r.Body())
	if err != nil {
		tp.t.Fatalf("NOTIFY body: %v\n%s", err, r.Body())
	}
	rec.Doc = doc
	return rec
}

// Subscription is the subscriber's side of a reg-event dialog.
type Subscription struct {
	CallID, FromTag, ToTag string
	From, To               sip.Uri
	Remote                 sip.Uri // Contact of the 200
	CSeq                   uint32
}

// Subscribe sends SUBSCRIBE Event: reg for impu through the lab's front
// with P-Asserted-Identity pai, and returns the final response.
func (tp *Peer) Subscribe(l *RegLab, impu, pai string, expires int) (*sip.Response, *Subscription) {
	tp.t.Helper()
	var target sip.Uri
	if err := sip.ParseUri(impu, &target); err != nil {
		tp.t.Fatal(err)
	}
	sub := &Subscription{CallID: sip.GenerateTagN(16) + "@test", FromTag: sip.GenerateTagN(8), From: tp.URI("sub"), To: target}
	req := sip.NewRequest(sip.SUBSCRIBE, target)
	fp := sip.NewParams()
	fp.Add("tag", sub.FromTag)
	req.AppendHeader(&sip.FromHeader{Address: sub.From, Params: fp})
	req.AppendHeader(&sip.ToHeader{Address: target, Params: sip.NewParams()})
	cid := sip.CallIDHeader(sub.CallID)
	req.AppendHeader(&cid)
	sub.CSeq = 1
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.SUBSCRIBE})
	req.AppendHeader(&sip.ContactHeader{Address: tp.URI("sub"), Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Event", "reg"))
	req.AppendHeader(sip.NewHeader("Accept", reginfo.ContentType))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	if pai != "" {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+pai+">"))
	}
	res := tp.do(l, req)
	if res.StatusCode == 200 {
		if v, ok := res.To().Params.Get("tag"); ok {
			sub.ToTag = v
		}
		if c := res.Contact(); c != nil {
			sub.Remote = c.Address
		}
	}
	return res, sub
}

// Resubscribe sends the in-dialog SUBSCRIBE with Expires expires.
func (tp *Peer) Resubscribe(l *RegLab, sub *Subscription, expires int) *sip.Response {
	tp.t.Helper()
	req := sip.NewRequest(sip.SUBSCRIBE, sub.Remote)
	fp := sip.NewParams()
	fp.Add("tag", sub.FromTag)
	req.AppendHeader(&sip.FromHeader{Address: sub.From, Params: fp})
	tparams := sip.NewParams()
	tparams.Add("tag", sub.ToTag)
	req.AppendHeader(&sip.ToHeader{Address: sub.To, Params: tparams})
	cid := sip.CallIDHeader(sub.CallID)
	req.AppendHeader(&cid)
	sub.CSeq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: sub.CSeq, MethodName: sip.SUBSCRIBE})
	req.AppendHeader(&sip.ContactHeader{Address: tp.URI("sub"), Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Event", "reg"))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	return tp.do(l, req)
}

func (tp *Peer) do(l *RegLab, req *sip.Request) *sip.Response {
	tp.t.Helper()
	a := l.Front.Addr("udp")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := tp.P.Do(ctx, req, sipproxy.Target{NextHop: &sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: a.Port}})
	if err != nil {
		tp.t.Fatalf("SUBSCRIBE: %v", err)
	}
	return res
}

// ServeProfiles makes h answer SAR with User-Data built by profile (iFCs
// included) instead of UserData; it records the SARs as h.sar does.
func ServeProfiles(t *testing.T, h *HSS, profile func(s *Sub) *userdata.IMSSubscription) {
	h.Node.Handle(diameter.CmdServerAssignment, diameter.AppCx, func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		r := CxReq{Cmd: diameter.CmdServerAssignment, IMPI: diameter.String(req, diameter.AVPUserName),
			IMPU: diameter.String(req, diameter.AVPPublicIdentity), Server: diameter.String(req, diameter.AVPServerName)}
		r.SAT, _ = diameter.Uint32(req, diameter.AVPServerAssignmentType)
		r.UDA, _ = diameter.Uint32(req, diameter.AVPUserDataAlreadyAvailable)
		h.record(r)
		h.mu.Lock()
		s := h.subs[r.IMPI]
		h.mu.Unlock()
		if s == nil {
			return h.Node.AnswerExperimental(req, diameter.DiameterErrorUserUnknown), nil
		}
		a := h.Node.Answer(req, diameter.DiameterSuccess)
		a.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(r.IMPI)))
		if r.SAT == diameter.SATRegistration || r.SAT == diameter.SATReRegistration {
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

// RegisterIFC is an iFC matching REGISTER of the given types (none: all)
// towards as.
func RegisterIFC(prio int, as userdata.ApplicationServer, types ...userdata.RegistrationType) userdata.InitialFilterCriteria {
	m := "REGISTER"
	return userdata.InitialFilterCriteria{Priority: prio, ApplicationServer: as,
		TriggerPoint: &userdata.TriggerPoint{ConditionTypeCNF: true,
			SPTs: []userdata.SPT{{Groups: []uint32{0}, Method: &m, RegistrationTypes: types}}}}
}

// ProfileWith is the User-Data of s with ifcs in its one service profile.
func ProfileWith(s *Sub, ifcs ...userdata.InitialFilterCriteria) *userdata.IMSSubscription {
	sp := userdata.ServiceProfile{InitialFilterCriteria: ifcs}
	for _, u := range s.IMPUs {
		sp.PublicIdentities = append(sp.PublicIdentities, userdata.PublicIdentity{Identity: u, BarringIndication: userdata.Bool(s.Barred[u])})
	}
	return &userdata.IMSSubscription{PrivateID: s.IMPI, ServiceProfiles: []userdata.ServiceProfile{sp}}
}
