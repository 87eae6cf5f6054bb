package pcscf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pcscf/contacts"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/ipsec"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// Sec-agree of the P-CSCF (RFC 3329, TS 33.203 §7, TS 24.229 §5.2.2):
// the SA sets of the UEs, the protected ports they use, and what a set
// means for the requests the P-CSCF receives and the responses it sends.
//
// Each SA set gets its own pair of protected ports (port-c, port-s) from
// a pool, as Kamailio's ims_ipsec_pcscf does (TS 33.203 §7.1 lets the
// P-CSCF choose them per UE). So two sets never share a selector: an old
// and a new set of one UE (re-authentication, a retried REGISTER) are
// different kernel policies, and the TCP connection the P-CSCF opens
// from a set's port-c towards its UE (sipgo keys them by local address)
// belongs to that UE alone.
//
// A request is protected when it arrived on the port-s of a set from
// that set's UE address and port-c (Txn.LocalAddr): the kernel's inbound
// policy for that selector lets in only ESP of that set. Where it came
// from alone proves nothing: plaintext from the UE's address to the
// unprotected port is unprotected.

// The REGISTER flow (register.go) calls, in this order:
//   - checkSecAgree: Security-Client and Security-Verify of a REGISTER,
//     and the 400/494/403/421 answers;
//   - stripSecAgree: the sec-agree headers and option tags go no further;
//   - challengeSecAgree: on the 401, the pending SA set and the
//     Security-Server;
//   - contactOfSet, takeSet, keepSetOf and commitSet: on the 200, the set
//     passes to the contact and replaces the contact's previous set.
// The other requests ask arrivedOver and protectedSender; contacts that
// end give their set to endSetOf.

// secAgree is the P-CSCF's sec-agree state, embedded in PCSCF and
// guarded by PCSCF.mu.
type secAgree struct {
	ports   *portPool         // protected port pairs
	sets    map[int]*saSet    // SA sets by their P-CSCF port-s
	pending map[string]*saSet // pending SA sets by pendingKey (UE ip + UE port-c)
}

// newSecAgree is the empty state for cfg's port pool (Config.PortC,
// Config.PortS, Config.IPsecPorts pairs).
func newSecAgree(cfg Config) secAgree {
	return secAgree{
		ports:   &portPool{baseC: cfg.PortC, baseS: cfg.PortS, n: cfg.IPsecPorts, used: map[int]bool{}, opened: map[int]bool{}, bad: map[int]bool{}},
		sets:    map[int]*saSet{},
		pending: map[string]*saSet{},
	}
}

// checkSecAgree reads the Security-Client and Security-Verify of a
// REGISTER that came over the SA set over (nil: unprotected) and answers
// what sec-agree refuses; ok false means it answered and the REGISTER
// goes no further:
//   - 400 for a Security-Client or Security-Verify that does not parse
//     (RFC 3329 §2.2 syntax);
//   - 494 Security Agreement Required, with the set's Security-Server and
//     Require: sec-agree, when over an SA set the Security-Verify is not
//     the Security-Server that offered it (RFC 3329 §2.3.1, TS 33.203
//     §7.2: a downgrade or a set the UE did not agree to);
//   - 403 when a Security-Verify comes outside any SA set while IPsec is
//     usable (TS 24.229 §5.2.2.1: it belongs over the agreed SA);
//   - 421 Extension Required with Require: sec-agree when --ipsec on and
//     the UE does not offer ipsec-3gpp (RFC 3329 §2.3.1, TS 24.229
//     §5.2.2.1).
//
// It returns the UE's offers (for challengeSecAgree) and the
// integrity-protected value of the Authorization (TS 24.229 §5.2.2.1:
// "ipsec-3gpp" over an SA set, else "no").
func (s *PCSCF) checkSecAgree(t *sipproxy.Txn, over *saSet) (offers []imsheader.SecurityMechanism, integrity string, ok bool) {
	req := t.Request()
	src := flowOf(req)
	offers, err := imsheader.GetSecurityClient(req)
	if err != nil {
		_ = t.Respond(sip.StatusBadRequest, "Bad Security-Client")
		return nil, "", false
	}
	verify, err := imsheader.GetSecurityVerify(req)
	if err != nil {
		_ = t.Respond(sip.StatusBadRequest, "Bad Security-Verify")
		return nil, "", false
	}
	ueOffersIPsec := false
	for _, o := range offers {
		if strings.EqualFold(o.Name, imsheader.MechanismIPsec3GPP) {
			ueOffersIPsec = true
		}
	}

	// Is this REGISTER protected: did it come through an SA set we set
	// up (pending from a 401, or the set of a registered contact)? Where
	// it came from alone does not tell (arrivedOver).
	integrity = digest.IntegrityNo
	switch {
	case over != nil:
		offered, _ := imsheader.ParseSecurity(imsheader.HeaderSecurityServer, over.server)
		if !imsheader.EquivalentSecurityLists(verify, offered) {
			s.m.rejected.WithLabelValues("security_verify").Inc()
			s.log.Info("Security-Verify differs from the Security-Server offered", zap.Stringer("flow", src), zap.String("sa", describeSet(over)))
			_ = t.Respond(494, "Security Agreement Required", sip.NewHeader("Security-Server", over.server), sip.NewHeader("Require", "sec-agree"))
			return nil, "", false
		}
		integrity = digest.IntegrityIPsec3GPP
	case len(verify) > 0 && s.ipsecOK:
		// Security-Verify outside any SA: not sent over the agreed SA.
		s.m.rejected.WithLabelValues("unprotected_verify").Inc()
		_ = t.Respond(sip.StatusForbidden, "Forbidden - Security-Verify outside the security association")
		return nil, "", false
	case s.cfg.IPsec == IPsecOn && !ueOffersIPsec:
		_ = t.Respond(421, "Extension Required", sip.NewHeader("Require", "sec-agree"))
		return nil, "", false
	}
	return offers, integrity, true
}

// stripSecAgree removes what sec-agree is between the UE and the P-CSCF
// from a REGISTER before it goes on: Security-Client, Security-Verify and
// the sec-agree option tag of Require and Proxy-Require (RFC 3329 §2.3.1:
// the first hop consumes them; TS 24.229 §5.2.2.1).
func stripSecAgree(req *sip.Request) {
	imsheader.RemoveHeaders(req, imsheader.HeaderSecurityClient)
	imsheader.RemoveHeaders(req, imsheader.HeaderSecurityVerify)
	removeOptionTag(req, "Require", "sec-agree")
	removeOptionTag(req, "Proxy-Require", "sec-agree")
}

// setState is where an SA set is in its life.
type setState int

const (
	setPending  setState = iota // installed on a 401, waiting for the protected REGISTER
	setActive                   // the SA set of a registered contact
	setRetiring                 // its contact is gone; kept a while for what is still in flight
)

// saSet is one SA set: the four SAs of a UE on one protected port pair.
type saSet struct {
	sa      ipsec.SecAssoc
	server  string // the Security-Server that offered it (for Security-Verify)
	state   setState
	created time.Time
	until   time.Time // setRetiring: dropped after
	contact string    // setActive: the key of the contact using it
	pendKey string    // setPending: UE address and port-c
}

// DefaultRetireGrace is how long the SA set of a contact that ended
// (de-registration, network-initiated de-registration) stays installed
// by default (Config.RetireGrace): the 200 to the de-REGISTER and the
// reg event NOTIFY that tells the UE still travel through it (64*T1, a
// non-INVITE transaction's lifetime).
const DefaultRetireGrace = 32 * time.Second

// portPool hands out protected port pairs: pair i is (baseC+2i,
// baseS+2i). A pair's sockets are opened on first use and kept.
type portPool struct {
	baseC, baseS, n int
	used            map[int]bool
	opened          map[int]bool
	bad             map[int]bool
	next            int // where the round robin goes on
}

// pairCount is how many pairs fit from the two bases: port-c and port-s
// numbers never meet, and all stay below 65536; at most max.
func pairCount(baseC, baseS, max int) int {
	n := 0
	for n < max {
		c, s := baseC+2*n, baseS+2*n
		if c > 65535 || s > 65535 {
			break
		}
		d := baseS - baseC
		if d%2 == 0 && d >= -2*n && d <= 2*n {
			break // port-c of one pair would be port-s of another
		}
		n++
	}
	return n
}

func (p *portPool) index(portC, portS int) (int, bool) {
	i := (portC - p.baseC) / 2
	if i < 0 || i >= p.n || p.baseC+2*i != portC || p.baseS+2*i != portS {
		return 0, false
	}
	return i, true
}

// ownsPortS reports whether port is the port-s of one of the pairs.
func (s *PCSCF) ownsPortS(port int) bool {
	if s.ports == nil {
		return false
	}
	i := (port - s.ports.baseS) / 2
	return i >= 0 && i < s.ports.n && s.ports.baseS+2*i == port
}

// ErrNoPorts: every protected port pair is taken.
var ErrNoPorts = errors.New("pcscf: no free protected port pair (--ipsec-ports)")

// allocPair takes a free pair and opens its sockets (UDP port-c, UDP and
// TCP port-s); a pair whose ports another program holds is skipped.
func (s *PCSCF) allocPair() (portC, portS int, err error) {
	for tries := 0; ; tries++ {
		s.mu.Lock()
		p := s.ports
		i, found := -1, false
		// Round robin from the configured pair: a freed pair is taken
		// again only after the others, when what was in flight on it
		// has long ended.
		for k := 0; k < p.n; k++ {
			j := (p.next + k) % p.n
			if !p.used[j] && !p.bad[j] {
				i, found = j, true
				break
			}
		}
		if !found {
			s.mu.Unlock()
			return 0, 0, ErrNoPorts
		}
		p.used[i] = true
		p.next = (i + 1) % p.n
		open := p.opened[i]
		s.mu.Unlock()
		portC, portS = p.baseC+2*i, p.baseS+2*i
		if open {
			return portC, portS, nil
		}
		if err := s.openPair(portC, portS); err != nil {
			s.log.Warn("protected port pair unusable, skipped", zap.Int("port-c", portC), zap.Int("port-s", portS), zap.Error(err))
			s.mu.Lock()
			p.bad[i] = true
			s.mu.Unlock()
			continue
		}
		s.mu.Lock()
		p.opened[i] = true
		s.mu.Unlock()
		return portC, portS, nil
	}
}

// openPair listens on a pair's ports on the P-CSCF's address.
func (s *PCSCF) openPair(portC, portS int) error {
	host := s.proxy.Addr("udp").IP.String()
	var done []string
	for _, l := range []struct {
		net  string
		port int
	}{{"udp", portS}, {"tcp", portS}, {"udp", portC}} {
		addr := net.JoinHostPort(host, strconv.Itoa(l.port))
		if _, err := s.proxy.Listen(l.net, addr); err != nil {
			for _, d := range done {
				s.proxy.Unlisten(d[:3], d[4:])
			}
			return err
		}
		done = append(done, l.net+" "+addr)
	}
	return nil
}

// reservePair marks the pair of a stored SA set used (reload) and opens
// it; false when the ports are not a pair of the pool or cannot be
// opened.
func (s *PCSCF) reservePair(portC, portS int) bool {
	s.mu.Lock()
	i, ok := s.ports.index(portC, portS)
	if ok {
		s.ports.used[i] = true
	}
	open := ok && s.ports.opened[i]
	s.mu.Unlock()
	if !ok || open {
		return ok
	}
	if err := s.openPair(portC, portS); err != nil {
		s.log.Warn("protected ports of a stored SA set", zap.Int("port-c", portC), zap.Int("port-s", portS), zap.Error(err))
		return false
	}
	s.mu.Lock()
	s.ports.opened[i] = true
	s.mu.Unlock()
	return true
}

func (s *PCSCF) freePairLocked(portC, portS int) {
	if i, ok := s.ports.index(portC, portS); ok {
		delete(s.ports.used, i)
	}
}

// newSet builds the SA set for a UE's chosen offer and the keys of the
// 401 on a fresh port pair with fresh SPIs, and installs it. A set of the
// same UE that holds one of the UE's SPIs (the UE retried its REGISTER or
// started over with the same SPIs) cannot stay: the kernel holds one SA
// per destination and SPI, so it is dropped first.
func (s *PCSCF) newSet(ue ipsec.Endpoint, alg, ealg string, ik, ck []byte, pendKey string) (*saSet, error) {
	portC, portS, err := s.allocPair()
	if err != nil {
		return nil, err
	}
	spiC, err1 := s.spis.Alloc()
	spiS, err2 := s.spis.Alloc()
	if err1 != nil || err2 != nil {
		s.mu.Lock()
		s.freePairLocked(portC, portS)
		s.mu.Unlock()
		s.spis.Free(spiC)
		s.spis.Free(spiS)
		return nil, errors.Join(err1, err2)
	}
	set := &saSet{
		sa: ipsec.SecAssoc{
			UE:    ue,
			PCSCF: ipsec.Endpoint{IP: s.proxy.Addr("udp").IP, PortC: uint16(portC), PortS: uint16(portS), SPIC: spiC, SPIS: spiS},
			Alg:   alg, EAlg: ealg, IK: ik, CK: ck,
		},
		state: setPending, created: time.Now(), pendKey: pendKey,
	}
	var clash []*saSet
	s.mu.Lock()
	for _, o := range s.sets {
		if o.sa.UE.IP.Equal(ue.IP) && (o.sa.UE.SPIC == ue.SPIC || o.sa.UE.SPIS == ue.SPIS || o.sa.UE.SPIC == ue.SPIS || o.sa.UE.SPIS == ue.SPIC) {
			clash = append(clash, o)
		}
	}
	s.mu.Unlock()
	for _, o := range clash {
		s.log.Info("SA set replaced by one with the same UE SPIs", zap.Stringer("ue", ue.IP), zap.Uint32("ue-spi-c", ue.SPIC), zap.Uint16("old-port-s", o.sa.PCSCF.PortS))
		s.dropSet(o)
	}
	if err := s.backend.Install(set.sa); err != nil {
		s.mu.Lock()
		s.freePairLocked(portC, portS)
		s.mu.Unlock()
		s.spis.Free(spiC)
		s.spis.Free(spiS)
		return nil, err
	}
	s.m.sas.Inc()
	s.mu.Lock()
	s.sets[portS] = set
	s.mu.Unlock()
	return set, nil
}

// serverOf formats the Security-Server offering set (TS 33.203 annex H).
func serverOf(sa ipsec.SecAssoc) []imsheader.SecurityMechanism {
	srv := imsheader.NewSecurityMechanism(imsheader.MechanismIPsec3GPP)
	srv.SetQ(0.1)
	srv.SetAlg(sa.Alg)
	srv.SetEAlg(sa.EAlg)
	srv.SetSPIC(sa.PCSCF.SPIC)
	srv.SetSPIS(sa.PCSCF.SPIS)
	srv.SetPortC(sa.PCSCF.PortC)
	srv.SetPortS(sa.PCSCF.PortS)
	return []imsheader.SecurityMechanism{srv}
}

// dropSet removes a set's SAs and frees its ports and SPIs.
func (s *PCSCF) dropSet(set *saSet) {
	s.mu.Lock()
	if s.sets[int(set.sa.PCSCF.PortS)] != set {
		s.mu.Unlock()
		return
	}
	delete(s.sets, int(set.sa.PCSCF.PortS))
	if set.pendKey != "" && s.pending[set.pendKey] == set {
		delete(s.pending, set.pendKey)
	}
	s.freePairLocked(int(set.sa.PCSCF.PortC), int(set.sa.PCSCF.PortS))
	s.mu.Unlock()
	if s.backend != nil {
		if err := s.backend.Remove(set.sa); err != nil {
			s.log.Warn("remove SA set", zap.Error(err))
		}
		s.m.sas.Dec()
	}
	// The TCP connection from the set's port-c was its UE's alone.
	s.proxy.CloseConnectionsFrom(joinHostPort(set.sa.PCSCF.IP.String(), int(set.sa.PCSCF.PortC)))
	s.spis.Free(set.sa.PCSCF.SPIC)
	s.spis.Free(set.sa.PCSCF.SPIS)
}

// setOf returns the set of a stored contact's SA, nil when none.
func (s *PCSCF) setOf(sa *ipsec.SecAssoc) *saSet {
	if sa == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.sets[int(sa.PCSCF.PortS)]
	if set == nil || set.sa.PCSCF.SPIS != sa.PCSCF.SPIS {
		return nil
	}
	return set
}

// activate makes set the SA set of the contact under key.
func (s *PCSCF) activate(set *saSet, key string) {
	s.mu.Lock()
	set.state, set.contact, set.until = setActive, key, time.Time{}
	if set.pendKey != "" && s.pending[set.pendKey] == set {
		delete(s.pending, set.pendKey)
	}
	set.pendKey = ""
	s.mu.Unlock()
}

// retire keeps a set for Config.RetireGrace after its contact ended.
func (s *PCSCF) retire(set *saSet) {
	s.mu.Lock()
	set.state, set.until = setRetiring, time.Now().Add(s.cfg.RetireGrace)
	s.mu.Unlock()
}

// adoptStored registers the SA set of a contact reloaded at start:
// reserves its ports and SPIs and installs it (SAs the kernel still
// holds from before the restart are kept).
func (s *PCSCF) adoptStored(c *contacts.Contact) error {
	sa := *c.SA
	s.spis.Reserve(sa.PCSCF.SPIC)
	s.spis.Reserve(sa.PCSCF.SPIS)
	if !s.reservePair(int(sa.PCSCF.PortC), int(sa.PCSCF.PortS)) {
		// Ports outside the pool (another configuration): listen anyway.
		if err := s.openPair(int(sa.PCSCF.PortC), int(sa.PCSCF.PortS)); err != nil {
			return err
		}
	}
	set := &saSet{sa: sa, server: c.SecurityServer, state: setActive, created: time.Now(), contact: c.Key()}
	s.mu.Lock()
	s.sets[int(sa.PCSCF.PortS)] = set
	s.mu.Unlock()
	if s.backend == nil {
		return nil
	}
	if err := s.backend.Install(sa); err != nil && !errors.Is(err, ipsec.ErrExists) {
		return err
	}
	s.m.sas.Inc()
	return nil
}

// arrivedOver returns the SA set a request came through, nil when it
// came unprotected: it must have arrived on the set's port-s
// (Txn.LocalAddr) from the set's UE address and port-c.
func (s *PCSCF) arrivedOver(t *sipproxy.Txn) *saSet {
	_, p, err := net.SplitHostPort(t.LocalAddr())
	if err != nil {
		return nil
	}
	port, _ := strconv.Atoi(p)
	s.mu.Lock()
	set := s.sets[port]
	s.mu.Unlock()
	if set == nil {
		return nil
	}
	src := flowOf(t.Request())
	if !sameHost(src.Host, set.sa.UE.IP.String()) || src.Port != int(set.sa.UE.PortC) {
		return nil
	}
	return set
}

// answerOverSA directs the responses to a UDP request that came through
// an SA set to the UE's protected client port (TS 33.203 §7.1: the UE
// receives the responses to its requests on port-c, from the P-CSCF's
// port-s, through the SA), not to the Via sent-by port, which a UE sets
// to its protected server port (TS 24.229 §5.1.1.2, TS 34.229-1 A.1.1).
// Over TCP the responses follow the connection.
func (s *PCSCF) answerOverSA(t *sipproxy.Txn, set *saSet) {
	if set == nil || flowOf(t.Request()).Transport != "udp" {
		return
	}
	t.SetResponseDestination(joinHostPort(set.sa.UE.IP.String(), int(set.sa.UE.PortC)))
}

// sweepSets drops pending sets older than PendingSAAge and retiring sets
// whose grace is over (with the contacts kept for them).
func (s *PCSCF) sweepSets() {
	now := time.Now()
	var old []*saSet
	s.mu.Lock()
	for _, set := range s.sets {
		if (set.state == setPending && now.Sub(set.created) > s.cfg.PendingSAAge) || (set.state == setRetiring && now.After(set.until)) {
			old = append(old, set)
		}
	}
	s.mu.Unlock()
	for _, set := range old {
		s.dropSet(set)
	}
	_, _ = s.retired.Expired(context.Background())
}

// describeSet is a set for logs.
func describeSet(set *saSet) string {
	sa := set.sa
	return fmt.Sprintf("%s:%d/%d↔%d/%d spi %d/%d", sa.UE.IP, sa.UE.PortC, sa.UE.PortS, sa.PCSCF.PortC, sa.PCSCF.PortS, sa.PCSCF.SPIC, sa.PCSCF.SPIS)
}

// challengeSecAgree handles the S-CSCF's 401 to a REGISTER (TS 33.203
// §7.2, TS 24.229 §5.2.2.1): it takes ik and ck out of the
// WWW-Authenticate (they never reach the UE) and, when IPsec is usable and
// the UE offered ipsec-3gpp with an algorithm both sides have
// (ipsec.ChooseAlgs), installs a pending SA set on a fresh port pair with
// them (newSet) and adds its Security-Server to the 401. The set waits in
// PCSCF.pending under pendingKey (UE address and port-c) for the REGISTER
// that answers the challenge; a newer challenge for the same UE port-c (a
// retried REGISTER, a resynchronisation) replaces it. An SA set that
// cannot be installed turns the 401 into a 500 ("IPsec SA setup failed");
// no common algorithm or no usable ik/ck leaves the 401 without
// Security-Server (logged).
func (s *PCSCF) challengeSecAgree(res *sip.Response, offers []imsheader.SecurityMechanism, src contacts.Flow) {
	ch, err := digest.GetWWWAuthenticate(res)
	if err != nil || ch == nil {
		return
	}
	ik, ck, kerr := ch.Keys()
	hs, _ := digest.GetAll(res, digest.HeaderWWWAuthenticate)
	for _, h := range hs {
		h.Del("ik")
		h.Del("ck")
	}
	digest.Set(res, digest.HeaderWWWAuthenticate, hs...)
	if !s.ipsecOK || len(offers) == 0 {
		return
	}
	m, alg, ealg, ok := ipsec.ChooseAlgs(offers, s.cfg.Algs, s.cfg.EAlgs)
	if !ok {
		s.log.Info("no common ipsec-3gpp algorithm with the UE", zap.Stringer("flow", src))
		return
	}
	if kerr != nil {
		s.log.Warn("401 without usable ik/ck: no SAs", zap.Error(kerr))
		return
	}
	uePortC, _ := m.PortC()
	uePortS, _ := m.PortS()
	ueSPIC, _ := m.SPIC()
	ueSPIS, _ := m.SPIS()
	ue := ipsec.Endpoint{IP: parseIP(src.Host), PortC: uePortC, PortS: uePortS, SPIC: ueSPIC, SPIS: ueSPIS}
	if v4 := ue.IP.To4(); v4 != nil {
		ue.IP = v4
	}
	key := pendingKey(src.Host, int(uePortC))
	set, err := s.newSet(ue, alg, ealg, ik, ck, key)
	if err != nil {
		s.log.Error("install SAs", zap.Error(err))
		res.StatusCode, res.Reason = sip.StatusInternalServerError, "Server Internal Error - IPsec SA setup failed"
		return
	}
	server := serverOf(set.sa)
	set.server = imsheader.FormatSecurity(server)
	imsheader.SetSecurityServer(res, server...)
	// A newer challenge replaces the set pending for the same UE port-c
	// (a retried REGISTER, a resynchronisation).
	s.mu.Lock()
	old := s.pending[key]
	s.pending[key] = set
	s.mu.Unlock()
	if old != nil && old != set {
		s.dropSet(old)
	}
	s.log.Info("SAs installed for sec-agree", zap.String("ue", src.Host), zap.String("sa", describeSet(set)), zap.String("alg", alg), zap.String("ealg", ealg))
}

// pendingKey is the key of a pending SA set in PCSCF.pending: the UE's
// address (normalised as sameHost compares it) and its protected client
// port, from which the REGISTER answering the 401 comes.
func pendingKey(host string, portC int) string {
	if ip := parseIP(host); ip != nil {
		host = ip.String()
	}
	return strings.ToLower(host) + "|" + strconv.Itoa(portC)
}

// contactOfSet is, for a REGISTER that came over the SA set over and has
// no contact under its own key, the registered contact of that set and
// its key (nil, "" when over is nil, pending, or its contact is key). It
// is the same UE that switched between UDP and TCP (TS 33.203 §7.1: one
// SA set carries both): its flow, so its contact key, changed; its SA, its
// Security-Server, its Rx sessions and its calls did not, and the 200
// handling carries them over (and moveCalls the calls).
func (s *PCSCF) contactOfSet(over *saSet, key string) (*contacts.Contact, string) {
	if over == nil {
		return nil, ""
	}
	s.mu.Lock()
	k := over.contact
	s.mu.Unlock()
	if k == "" || k == key {
		return nil, ""
	}
	if prev := s.store.Get(k); prev != nil {
		return prev, k
	}
	return nil, ""
}

// takeSet gives c, the contact a REGISTER over the SA set over renews or
// creates, that set's SA and Security-Server (kept for the Security-Verify
// of the next re-REGISTER, TS 33.203 §7.4). It returns the set c had
// before when it was another one (re-authentication, TS 33.203 §7.4): that
// set is replaced only once the new registration is stored (commitSet).
// Without over, c keeps what it had.
func (s *PCSCF) takeSet(c *contacts.Contact, over *saSet) (replaced *saSet) {
	if over == nil {
		return nil
	}
	if o := s.setOf(c.SA); o != nil && o != over {
		replaced = o
	}
	sa := over.sa
	c.SA, c.SecurityServer = &sa, over.server
	return replaced
}

// keepSetOf detaches the SA set over from d, another contact of the same
// UE that the registration over over replaces, so that ending d
// (dropContactState) does not end the set, which goes on with the new
// contact.
func (s *PCSCF) keepSetOf(d *contacts.Contact, over *saSet) {
	if over != nil && s.setOf(d.SA) == over {
		d.SA = nil
	}
}

// commitSet, once the contact under key is stored, makes over (when
// not nil) its active SA set and drops the set it replaced (takeSet):
// the old SAs go only now that the UE has used the new ones (TS 33.203
// §7.4).
func (s *PCSCF) commitSet(over *saSet, key string, replaced *saSet) {
	if over != nil {
		s.activate(over, key)
	}
	if replaced != nil {
		s.dropSet(replaced)
	}
}

// endSetOf ends the SA set of c, a contact that was removed. With linger
// (a de-registration, not an expiry) the set stays Config.RetireGrace and
// the contact stays reachable among the retired meanwhile: the 200 to
// the de-REGISTER and the S-CSCF's reg event NOTIFY to the UE still go
// through the SA (TS 24.229 §5.2.2.3, §5.2.3). Otherwise the set goes now.
func (s *PCSCF) endSetOf(ctx context.Context, c *contacts.Contact, linger bool) {
	set := s.setOf(c.SA)
	if set == nil {
		return
	}
	if !linger {
		s.dropSet(set)
		return
	}
	s.retire(set)
	r := c.Clone()
	r.Expires = time.Now().Add(s.cfg.RetireGrace)
	_ = s.retired.Put(ctx, r)
}

// openFirstPair opens the first protected port pair at start when IPsec
// is usable, so that a port taken by another program shows then (an
// error naming the ports); the others open on first use.
func (s *PCSCF) openFirstPair() error {
	if !s.ipsecOK {
		return nil
	}
	portC, portS, err := s.allocPair()
	if err != nil {
		return fmt.Errorf("pcscf: protected ports: %w", err)
	}
	s.mu.Lock()
	s.freePairLocked(portC, portS)
	s.ports.next = 0
	s.mu.Unlock()
	return nil
}

// protectedSender is the registered contact of the SA set a request
// came through (arrivedOver), nil when the set is not, or no longer, the
// active set of a live contact: only such a request is the UE's own
// (TS 24.229 §5.2.6.3, TS 33.203 §7.1).
func (s *PCSCF) protectedSender(over *saSet) *contacts.Contact {
	s.mu.Lock()
	key, active := over.contact, over.state == setActive
	s.mu.Unlock()
	if !active {
		return nil
	}
	if c := s.store.Get(key); c != nil && c.Expires.After(time.Now()) {
		return c
	}
	return nil
}

// setupIPsec decides whether SA sets can be installed (PCSCF.ipsecOK):
// --ipsec off never, Config.IPsecBackend when given, else the kernel's
// XFRM if its probe passes. With --ipsec on an unusable kernel is an
// error; with auto it is logged and UEs register without SAs.
func (s *PCSCF) setupIPsec() error {
	if s.cfg.IPsec == IPsecOff {
		s.log.Info("ipsec off: Security-Client is ignored, UEs register with plain digest")
		return nil
	}
	if s.cfg.IPsecBackend != nil {
		s.backend, s.ipsecOK = s.cfg.IPsecBackend, true
		return nil
	}
	k, err := ipsec.NewKernel(nil)
	if err == nil {
		err = k.Probe()
	}
	if err != nil {
		if s.cfg.IPsec == IPsecOn {
			return fmt.Errorf("pcscf: --ipsec on but IPsec is unusable: %w", err)
		}
		s.log.Warn("ipsec auto: IPsec disabled, UEs offering ipsec-3gpp are served without SAs", zap.Error(err))
		return nil
	}
	s.log.Info("ipsec: kernel installs ESP transport SAs")
	s.backend, s.ipsecOK = k, true
	return nil
}
