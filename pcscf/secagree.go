package pcscf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/imscore/imscore/pcscf/contacts"
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
