package contacts

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/imscore/imscore/pkg/ipsec"
	"github.com/imscore/imscore/pkg/pgtest"
)

func sample(port int, exp time.Duration) *Contact {
	return &Contact{
		AOR:          "sip:alice@127.0.0.1:" + itoa(port),
		Flow:         Flow{Transport: "udp", Host: "127.0.0.1", Port: port},
		IMPUs:        []string{"sip:alice@ims.test", "tel:+15551234"},
		ServiceRoute: []string{"sip:orig@127.0.0.1:5080;lr"},
		Expires:      time.Now().Add(exp).Truncate(time.Microsecond),
		Registered:   time.Now().Truncate(time.Microsecond),
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestStoreLookups(t *testing.T) {
	s := New(nil)
	ctx := context.Background()
	a := sample(40000, time.Hour)
	b := sample(40002, time.Hour)
	b.SA = &ipsec.SecAssoc{UE: ipsec.Endpoint{IP: net.ParseIP("127.0.0.1"), PortC: 40010, PortS: 40011}}
	for _, c := range []*Contact{a, b} {
		if err := s.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if c := s.BySource("udp", "127.0.0.1", 40000); c == nil || c.AOR != a.AOR {
		t.Fatalf("BySource flow: %+v", c)
	}
	if c := s.BySource("tcp", "127.0.0.1", 40000); c != nil {
		t.Fatal("transport ignored")
	}
	if c := s.BySource("tcp", "127.0.0.1", 40010); c == nil || c.AOR != b.AOR {
		t.Fatalf("BySource SA port-c: %+v", c)
	}
	if c := s.BySource("udp", "127.0.0.1", 40002); c != nil {
		t.Fatal("SA contact accepted outside its protected ports")
	}
	if c := s.ByURI("alice", "127.0.0.1", 40000, "sip:alice@127.0.0.1:40000"); c == nil || c.AOR != a.AOR {
		t.Fatalf("ByURI: %+v", c)
	}
	if got := s.ByIMPU("tel:+15551234"); len(got) != 2 {
		t.Fatalf("ByIMPU: %d", len(got))
	}
	c := sample(40004, -time.Second)
	_ = s.Put(ctx, c)
	if s.BySource("udp", "127.0.0.1", 40004) != nil {
		t.Fatal("expired contact found")
	}
	exp, err := s.Expired(ctx)
	if err != nil || len(exp) != 1 || exp[0].AOR != c.AOR || s.Len() != 2 {
		t.Fatalf("Expired: %v %v len %d", exp, err, s.Len())
	}
}

func TestPGPersistence(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	pg, err := OpenPG(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	// Migrating twice changes nothing.
	pg2, err := OpenPG(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	pg2.Close()
	s := New(pg)
	a := sample(41000, time.Hour)
	a.SA = &ipsec.SecAssoc{UE: ipsec.Endpoint{IP: net.ParseIP("127.0.0.1"), PortC: 1, PortS: 2, SPIC: 3, SPIS: 4}, Alg: "hmac-md5-96", IK: make([]byte, 16)}
	if err := s.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, a.Key(), func(c *Contact) { c.RxSessions = append(c.RxSessions, "pcscf;1;2") }); err != nil {
		t.Fatal(err)
	}
	b := sample(41002, time.Hour)
	_ = s.Put(ctx, b)
	if _, err := s.Delete(ctx, b.Key()); err != nil {
		t.Fatal(err)
	}
	s2 := New(pg)
	all, err := s2.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || s2.Len() != 1 {
		t.Fatalf("reloaded %d", len(all))
	}
	got := s2.Get(a.Key())
	if got == nil || got.SA == nil || got.SA.UE.SPIS != 4 || len(got.RxSessions) != 1 || !got.Expires.Equal(a.Expires) || got.IMPUs[1] != "tel:+15551234" {
		t.Fatalf("reloaded %+v", got)
	}
}

// TestCountsAndMatching: the contact and distinct-IMPU counts follow Put,
// Update, Delete and Expired; Matching and Any see the stored contacts.
func TestCountsAndMatching(t *testing.T) {
	ctx := context.Background()
	s := New(nil)
	now := time.Now()
	a := &Contact{AOR: "sip:a@1.2.3.4:5060", Flow: Flow{Transport: "udp", Host: "1.2.3.4", Port: 5060}, IMPUs: []string{"sip:A@x", "tel:+1", "sip:a@x"}, Expires: now.Add(time.Hour)}
	b := &Contact{AOR: "sip:b@1.2.3.5:5060", Flow: Flow{Transport: "udp", Host: "1.2.3.5", Port: 5060}, IMPUs: []string{"sip:a@x", "sip:b@x"}, Expires: now.Add(-time.Second)}
	check := func(wantC, wantI int) {
		t.Helper()
		if c, i := s.Counts(); c != wantC || i != wantI {
			t.Errorf("Counts() = %d, %d; want %d, %d", c, i, wantC, wantI)
		}
	}
	check(0, 0)
	_ = s.Put(ctx, a)
	check(1, 2)
	_ = s.Put(ctx, a) // replace: no double count
	check(1, 2)
	_ = s.Put(ctx, b)
	check(2, 3)
	if got := s.Matching(func(c *Contact) bool { return c.AOR == b.AOR }); len(got) != 1 || got[0].Key() != b.Key() {
		t.Errorf("Matching: %+v", got)
	}
	if !s.Any(func(c *Contact) bool { return c.Flow.Port == 5060 }) || s.Any(func(c *Contact) bool { return c.Flow.Port == 1 }) {
		t.Error("Any")
	}
	if ok, _ := s.Update(ctx, a.Key(), func(c *Contact) { c.IMPUs = []string{"sip:c@x"} }); !ok {
		t.Fatal("Update: not found")
	}
	check(2, 3) // a: c@x; b: a@x, b@x
	if ex, _ := s.Expired(ctx); len(ex) != 1 {
		t.Fatalf("Expired: %d", len(ex))
	}
	check(1, 1)
	_, _ = s.Delete(ctx, a.Key())
	check(0, 0)
}

// TestIndexesFollowChanges checks the IMPU, Contact URI and host indexes
// behind the look-ups after puts, updates, deletes and expiry, and that
// hosts are matched as IP addresses (brackets, IPv4-mapped IPv6, case).
func TestIndexesFollowChanges(t *testing.T) {
	ctx := context.Background()
	s := New(nil)
	now := time.Now()
	v6 := &Contact{AOR: "sip:bob@[2001:DB8::7]:5070", Flow: Flow{Transport: "udp", Host: "2001:db8::7", Port: 5070},
		IMPUs: []string{"sip:Bob@ims.test"}, Expires: now.Add(time.Hour), Registered: now}
	// Behind a NAT: the Contact URI's host is not the flow's.
	natted := &Contact{AOR: "sip:carol@10.0.0.9:5060", Flow: Flow{Transport: "tcp", Host: "192.0.2.1", Port: 40000},
		IMPUs: []string{"sip:carol@ims.test"}, Expires: now.Add(time.Hour), Registered: now}
	for _, c := range []*Contact{v6, natted} {
		if err := s.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if c := s.BySource("udp", "[2001:db8:0::7]", 5070); c == nil || c.Key() != v6.Key() {
		t.Errorf("BySource by another spelling of the IPv6 address: %+v", c)
	}
	if c := s.BySource("tcp", "::ffff:192.0.2.1", 40000); c == nil || c.Key() != natted.Key() {
		t.Errorf("BySource by the IPv4-mapped address: %+v", c)
	}
	if c := s.ByURI("carol", "10.0.0.9", 5060, "sip:carol@10.0.0.9:5060"); c == nil || c.Key() != natted.Key() {
		t.Errorf("ByURI by the Contact URI: %+v", c)
	}
	if c := s.ByURI("x", "192.0.2.1", 40000, "sip:x@192.0.2.1:40000"); c == nil || c.Key() != natted.Key() {
		t.Errorf("ByURI by the flow: %+v", c)
	}
	if c := s.ByURI("bob", "2001:db8::7", 5070, "sip:nobody@example.net"); c == nil || c.Key() != v6.Key() {
		t.Errorf("ByURI by the Contact URI's user, host and port: %+v", c)
	}
	if got := s.ByIMPU("SIP:bob@IMS.test"); len(got) != 1 || got[0].Key() != v6.Key() {
		t.Errorf("ByIMPU, other case: %+v", got)
	}
	if got := s.ByAOR(natted.AOR); len(got) != 1 || got[0].Key() != natted.Key() {
		t.Errorf("ByAOR: %+v", got)
	}
	if got := s.ByAOR("SIP:carol@10.0.0.9:5060"); len(got) != 0 {
		t.Errorf("ByAOR is exact: %+v", got)
	}

	// An update that changes the IMPUs moves the contact in the IMPU index.
	if ok, _ := s.Update(ctx, v6.Key(), func(c *Contact) { c.IMPUs = []string{"tel:+15550007"} }); !ok {
		t.Fatal("Update: not found")
	}
	if got := s.ByIMPU("sip:bob@ims.test"); len(got) != 0 {
		t.Errorf("old IMPU still finds the contact: %+v", got)
	}
	if got := s.ByIMPU("tel:+15550007"); len(got) != 1 {
		t.Errorf("new IMPU: %+v", got)
	}
	// Deleted and expired contacts leave every index.
	if _, err := s.Delete(ctx, natted.Key()); err != nil {
		t.Fatal(err)
	}
	if c := s.BySource("tcp", "192.0.2.1", 40000); c != nil || len(s.ByAOR(natted.AOR)) != 0 || len(s.ByIMPU("sip:carol@ims.test")) != 0 {
		t.Errorf("deleted contact still found")
	}
	_, _ = s.Update(ctx, v6.Key(), func(c *Contact) { c.Expires = now.Add(-time.Second) })
	if ex, _ := s.Expired(ctx); len(ex) != 1 {
		t.Fatalf("Expired: %d", len(ex))
	}
	for name, ix := range map[string]index{"IMPU": s.byIMPU, "AOR": s.byAOR, "contact address": s.byContactAddr, "flow address": s.byFlowAddr,
		"source": s.bySource, "source and UE address": s.bySourceUE, "source and UE host": s.bySourceHost, "session": s.bySession, "SA": s.bySA} {
		if ix.Len() != 0 {
			t.Errorf("%s index not empty with no contacts: %v", name, ix)
		}
	}
}

// BenchmarkLookups100k measures BySource, ByURI and ByIMPU in a store of
// 100,000 contacts: per-request cost must not grow with the number of
// registered UEs, whether each UE has its own address or all share one
// (behind a NAT, or sipp).
func BenchmarkLookups100k(b *testing.B) {
	for _, shared := range []bool{false, true} {
		name := "own-addresses"
		if shared {
			name = "one-address"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			s := New(nil)
			const n = 100000
			addr := func(i int) (string, int) {
				if shared {
					return "192.0.2.1", 1024 + i
				}
				return "10." + itoa(i>>16) + "." + itoa(i>>8&255) + "." + itoa(i&255), 5060
			}
			for i := range n {
				h, p := addr(i)
				_ = s.Put(ctx, &Contact{AOR: "sip:u" + itoa(i) + "@" + h + ":" + itoa(p), Flow: Flow{Transport: "udp", Host: h, Port: p},
					IMPUs: []string{"sip:u" + itoa(i) + "@ims.test"}, Expires: time.Now().Add(time.Hour)})
			}
			b.ResetTimer()
			for i := range b.N {
				j := i % n
				h, p := addr(j)
				if s.BySource("udp", h, p) == nil || s.ByURI("u", h, p, "sip:u"+itoa(j)+"@"+h+":"+itoa(p)) == nil ||
					len(s.ByIMPU("sip:u"+itoa(j)+"@ims.test")) != 1 {
					b.Fatal("contact not found")
				}
			}
		})
	}
}

// slowPersister applies each write after a random delay, as a database
// round trip would, and keeps the rows it was left with.
type slowPersister struct {
	mu   sync.Mutex
	rows map[string]*Contact
}

func (p *slowPersister) pause() { time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) }

func (p *slowPersister) Save(_ context.Context, c *Contact) error {
	p.pause()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rows[c.Key()] = c.Clone()
	return nil
}

func (p *slowPersister) Delete(_ context.Context, key string) error {
	p.pause()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.rows, key)
	return nil
}

func (p *slowPersister) LoadAll(context.Context) ([]*Contact, error) { return nil, nil }

func (p *slowPersister) row(key string) *Contact {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rows[key]
}

// TestWriteThroughKeepsOrder: concurrent writes of one contact reach the
// persister in the order they were made, so what a restart reloads is
// what the P-CSCF had: no Update lost to an older snapshot written last,
// no deleted contact written back by an Update that raced the Delete.
func TestWriteThroughKeepsOrder(t *testing.T) {
	ctx := context.Background()
	p := &slowPersister{rows: map[string]*Contact{}}
	s := New(p)
	c := sample(40000, time.Hour)
	if err := s.Put(ctx, c); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = s.Update(ctx, c.Key(), func(x *Contact) { x.RxSessions = append(x.RxSessions, "sid-"+itoa(i)) })
		}()
	}
	wg.Wait()
	mem, row := s.Get(c.Key()), p.row(c.Key())
	if row == nil || len(mem.RxSessions) != 40 || fmt.Sprint(row.RxSessions) != fmt.Sprint(mem.RxSessions) {
		t.Errorf("persisted Rx sessions %v, in memory %v", row, mem.RxSessions)
	}

	for i := range 20 {
		d := sample(41000+i, time.Hour)
		_ = s.Put(ctx, d)
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, _ = s.Update(ctx, d.Key(), func(x *Contact) { x.RegSubscription = "sub" })
		}()
		go func() {
			defer wg.Done()
			_, _ = s.Delete(ctx, d.Key())
		}()
		wg.Wait()
		if s.Get(d.Key()) == nil && p.row(d.Key()) != nil {
			t.Fatalf("round %d: a deleted contact was written back", i)
		}
	}
}

// TestPGSessionDefaults: the contact table's connections plan by index
// (registration storms) and commit without waiting for the WAL fsync,
// unless the DSN chooses otherwise.
func TestPGSessionDefaults(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	for _, c := range []struct{ dsn, seqscan, commit string }{
		{dsn, "off", "off"},
		{pgtest.WithParams(dsn, "enable_seqscan=on&synchronous_commit=on"), "on", "on"},
	} {
		pg, err := OpenPG(ctx, c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		got := pgtest.Settings(t, pg.pool, "enable_seqscan", "synchronous_commit")
		pg.Close()
		if got[0] != c.seqscan || got[1] != c.commit {
			t.Errorf("DSN %s: enable_seqscan %s, synchronous_commit %s; want %s, %s", c.dsn, got[0], got[1], c.seqscan, c.commit)
		}
	}
}

// TestBySenderSharedFlow: contacts of several users registered over one
// flow are told apart by the request's Contact URI, its Contact or Via
// address, then host; an address of two users is ambiguous unless a
// P-Preferred-Identity picks one; nothing is guessed.
func TestBySenderSharedFlow(t *testing.T) {
	ctx := context.Background()
	s := New(nil)
	now := time.Now()
	flow := Flow{Transport: "udp", Host: "192.0.2.1", Port: 5060}
	put := func(user, contactHost string, port int, age time.Duration) *Contact {
		c := &Contact{AOR: "sip:" + user + "@" + contactHost + ":" + itoa(port), Flow: flow, IMPUs: []string{"sip:" + user + "@ims.test"},
			Expires: now.Add(time.Hour), Registered: now.Add(-age)}
		if err := s.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	alice := put("alice", "10.0.0.1", 5060, 3*time.Second)
	bob := put("bob", "10.0.0.2", 5060, 2*time.Second)
	carol := put("carol", "10.0.0.2", 5062, time.Second) // bob's host, another port
	dave := put("dave", "10.0.0.3", 5060, time.Second)
	dave2 := put("dave", "10.0.0.3", 5060, 0) // the same user under another Contact user part
	dave2.AOR = "sip:dave-2@10.0.0.3:5060"
	_, _ = s.Delete(ctx, Key("sip:dave@10.0.0.3:5060", flow))
	_ = s.Put(ctx, dave)
	_ = s.Put(ctx, dave2)

	cases := []struct {
		name string
		snd  Sender
		want *Contact
		err  error
	}{
		{"Via host and port", Sender{Flow: flow, ViaHost: "10.0.0.1", ViaPort: 5060}, alice, nil},
		{"Via without port", Sender{Flow: flow, ViaHost: "10.0.0.1"}, alice, nil},
		{"Contact URI", Sender{Flow: flow, ViaHost: "10.0.0.2", ViaPort: 5060, Contact: "sip:carol@10.0.0.2:5062"}, carol, nil},
		{"Contact address, Via elsewhere", Sender{Flow: flow, ViaHost: "172.16.0.1", ViaPort: 5060, Contact: "sip:x@10.0.0.2:5060"}, bob, nil},
		{"Via host and port among two of one host", Sender{Flow: flow, ViaHost: "10.0.0.2", ViaPort: 5062}, carol, nil},
		{"host of two users, port of neither", Sender{Flow: flow, ViaHost: "10.0.0.2", ViaPort: 5070}, nil, ErrAmbiguous},
		{"host of two users, preferred identity", Sender{Flow: flow, ViaHost: "10.0.0.2", ViaPort: 5070, Preferred: []string{"SIP:bob@ims.test"}}, bob, nil},
		{"preferred identity of nobody there", Sender{Flow: flow, ViaHost: "10.0.0.2", ViaPort: 5070, Preferred: []string{"sip:alice@ims.test"}}, nil, ErrAmbiguous},
		{"two contacts of one user: the latest", Sender{Flow: flow, ViaHost: "10.0.0.3", ViaPort: 5060}, dave2, nil},
		{"address nobody registered", Sender{Flow: flow, ViaHost: "10.0.0.9", ViaPort: 5060}, nil, ErrNoMatch},
		{"alice's Contact URI over another flow", Sender{Flow: Flow{Transport: "udp", Host: "192.0.2.1", Port: 5061}, ViaHost: "10.0.0.1", Contact: alice.AOR}, nil, nil},
		{"other transport", Sender{Flow: Flow{Transport: "tcp", Host: "192.0.2.1", Port: 5060}, ViaHost: "10.0.0.1"}, nil, nil},
	}
	for _, tc := range cases {
		c, err := s.BySender(tc.snd)
		if err != tc.err || (c == nil) != (tc.want == nil) || (c != nil && c.Key() != tc.want.Key()) {
			t.Errorf("%s: got %v, %v; want %v, %v", tc.name, c, err, tc.want, tc.err)
		}
	}
	if c := s.BySource("udp", "192.0.2.1", 5060); c != nil {
		t.Errorf("BySource of a flow users share: %s, want none", c.AOR)
	}
	if c := s.ByURI("", "192.0.2.1", 5060, "sip:192.0.2.1:5060"); c != nil {
		t.Errorf("ByURI of a flow users share: %s, want none", c.AOR)
	}
	if c := s.ByURI("carol", "10.0.0.2", 5062, "sip:carol@10.0.0.2:5062"); c == nil || c.Key() != carol.Key() {
		t.Errorf("ByURI of carol's Contact: %+v", c)
	}
	// Expired registrations are not matched.
	_, _ = s.Update(ctx, alice.Key(), func(c *Contact) { c.Expires = now.Add(-time.Second) })
	if c, err := s.BySender(Sender{Flow: flow, ViaHost: "10.0.0.1"}); c != nil || err != ErrNoMatch {
		t.Errorf("expired alice: %v %v", c, err)
	}
}

// TestSessionAndSAIndexes: BySession finds the contacts of an Rx session
// (call or signalling) and UsesSA the holders of an SA, after updates and
// deletes.
func TestSessionAndSAIndexes(t *testing.T) {
	ctx := context.Background()
	s := New(nil)
	a := sample(42000, time.Hour)
	a.RxSignalling = "sig;1"
	a.RxSessions = []string{"sig;1", "call;1"}
	a.SA = &ipsec.SecAssoc{UE: ipsec.Endpoint{IP: net.ParseIP("127.0.0.1"), PortC: 42001, PortS: 42002}, PCSCF: ipsec.Endpoint{SPIC: 7, SPIS: 8}}
	if err := s.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := s.BySession("call;1"); len(got) != 1 || got[0].Key() != a.Key() {
		t.Errorf("BySession call: %+v", got)
	}
	if got := s.BySession("sig;1"); len(got) != 1 {
		t.Errorf("BySession signalling: %+v", got)
	}
	if !s.UsesSA(*a.SA) || s.UsesSA(ipsec.SecAssoc{PCSCF: ipsec.Endpoint{SPIC: 7, SPIS: 9}}) {
		t.Error("UsesSA")
	}
	_, _ = s.Update(ctx, a.Key(), func(c *Contact) { c.RxSessions = []string{"sig;1"} })
	if got := s.BySession("call;1"); len(got) != 0 {
		t.Errorf("ended call session still found: %+v", got)
	}
	if c := s.BySource("udp", "127.0.0.1", 42001); c == nil || c.Key() != a.Key() {
		t.Errorf("BySource port-c: %+v", c)
	}
	_, _ = s.Delete(ctx, a.Key())
	if len(s.BySession("sig;1")) != 0 || s.UsesSA(*a.SA) {
		t.Error("deleted contact still indexed")
	}
}

// BenchmarkBySenderSharedFlow100k: 100,000 UEs registered over one flow
// (one SBC address and port), each request matched by its Via address;
// the cost must be that of one UE per flow.
func BenchmarkBySenderSharedFlow100k(b *testing.B) {
	ctx := context.Background()
	s := New(nil)
	const n = 100000
	flow := Flow{Transport: "udp", Host: "192.0.2.1", Port: 5060}
	host := func(i int) string { return "10." + itoa(i>>16) + "." + itoa(i>>8&255) + "." + itoa(i&255) }
	for i := range n {
		_ = s.Put(ctx, &Contact{AOR: "sip:u" + itoa(i) + "@" + host(i) + ":5060", Flow: flow,
			IMPUs: []string{"sip:u" + itoa(i) + "@ims.test"}, Expires: time.Now().Add(time.Hour)})
	}
	b.ResetTimer()
	for i := range b.N {
		j := i % n
		c, err := s.BySender(Sender{Flow: flow, ViaHost: host(j), ViaPort: 5060})
		if err != nil || c == nil || c.IMPUs[0] != "sip:u"+itoa(j)+"@ims.test" {
			b.Fatalf("u%d: %v %v", j, c, err)
		}
	}
}

// TestPutKeyedSharesTheKey: the table files a contact under the caller's
// key string itself (one copy per contact, not one per holder), and a key
// that is not the contact's stores nothing.
func TestPutKeyedSharesTheKey(t *testing.T) {
	s := New(nil)
	c := sample(5070, time.Hour)
	key := Key(c.AOR, c.Flow)
	if err := s.PutKeyed(context.Background(), key, c); err != nil {
		t.Fatal(err)
	}
	for k := range s.byKey {
		if unsafe.StringData(k) != unsafe.StringData(key) {
			t.Error("the table holds its own copy of the key")
		}
	}
	other := sample(5071, time.Hour)
	if err := s.PutKeyed(context.Background(), key, other); err == nil {
		t.Error("a key that is not the contact's was accepted")
	}
	if len(s.byKey) != 1 || s.Get(other.Key()) != nil {
		t.Errorf("stored under a wrong key: %d contacts", len(s.byKey))
	}
}

// TestServiceRouteHeldOnce: contacts registered through one S-CSCF hold
// one copy of its Service-Route entry between them.
func TestServiceRouteHeldOnce(t *testing.T) {
	s := New(nil)
	a, b := sample(5080, time.Hour), sample(5081, time.Hour)
	a.ServiceRoute = []string{strings.Clone("sip:orig@scscf.ims.example.org:6060;lr")}
	b.ServiceRoute = []string{strings.Clone("sip:orig@scscf.ims.example.org:6060;lr")}
	for _, c := range []*Contact{a, b} {
		if err := s.Put(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	ga, gb := s.byKey[a.Key()], s.byKey[b.Key()]
	if unsafe.StringData(ga.ServiceRoute[0]) != unsafe.StringData(gb.ServiceRoute[0]) {
		t.Error("each contact holds its own copy of the Service-Route")
	}
	if unsafe.StringData(a.ServiceRoute[0]) == unsafe.StringData(b.ServiceRoute[0]) {
		t.Fatal("test set-up: the two inputs share storage")
	}
}

// TestChargingAddressesHeldOnce: contacts whose S-CSCF gave the same
// charging function addresses hold one copy of them between them, and
// the addresses come back from Get and from the JSON a row holds.
func TestChargingAddressesHeldOnce(t *testing.T) {
	s := New(nil)
	const pcfa = `ccf="aaa://ccf.ims.example.org";ecf="aaa://ecf.ims.example.org"`
	a, b := sample(5090, time.Hour), sample(5091, time.Hour)
	a.ChargingAddresses, b.ChargingAddresses = strings.Clone(pcfa), strings.Clone(pcfa)
	for _, c := range []*Contact{a, b} {
		if err := s.Put(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	ga, gb := s.byKey[a.Key()], s.byKey[b.Key()]
	if unsafe.StringData(ga.ChargingAddresses) != unsafe.StringData(gb.ChargingAddresses) {
		t.Error("each contact holds its own copy of the charging addresses")
	}
	if unsafe.StringData(a.ChargingAddresses) == unsafe.StringData(b.ChargingAddresses) {
		t.Fatal("test set-up: the two inputs share storage")
	}
	if g := s.Get(a.Key()); g == nil || g.ChargingAddresses != pcfa {
		t.Fatalf("Get: %+v", g)
	}
	raw, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back Contact
	if err := json.Unmarshal(raw, &back); err != nil || back.ChargingAddresses != pcfa {
		t.Errorf("JSON round trip: %q (%v) from %s", back.ChargingAddresses, err, raw)
	}
}
