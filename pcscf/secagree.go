package pcscf

import (
	"github.com/imscore/imscore/pkg/ipsec"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// Sec-agree of the P-CSCF (RFC 3329, TS 33.203 §7, TS 24.229 §5.2.2):
// the SA sets of the UEs and what they mean for the requests the P-CSCF
// receives and the responses it sends.

// answerOverSA directs the responses to a UDP request that came from a
// UE's protected client port to that port (TS 33.203 §7.1: the UE
// receives the responses to its requests on port-c, from the P-CSCF's
// port-s, through the SA), not to the Via sent-by port, which a UE sets
// to its protected server port (TS 24.229 §5.1.1.2, TS 34.229-1 A.1.1).
// Over TCP the responses follow the connection.
func (s *PCSCF) answerOverSA(t *sipproxy.Txn) {
	req := t.Request()
	src := flowOf(req)
	if src.Transport != "udp" {
		return
	}
	var sa *ipsec.SecAssoc
	s.mu.Lock()
	if p := s.pending[pendingKey(src.Host, src.Port)]; p != nil {
		sa = &p.sa
	}
	s.mu.Unlock()
	if sa == nil {
		if c := s.store.BySource(src.Transport, src.Host, src.Port); c != nil && c.SA != nil && int(c.SA.UE.PortC) == src.Port {
			sa = c.SA
		}
	}
	if sa != nil {
		t.SetResponseDestination(joinHostPort(sa.UE.IP.String(), int(sa.UE.PortC)))
	}
}
