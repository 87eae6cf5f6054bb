package sipproxy

import (
	"bytes"
	"net"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// What an accepted INVITE keeps (RFC 6026). After its 2xx, a proxy's
// INVITE server transaction stays "Accepted" for Timer L (64*T1) to
// absorb retransmissions of the INVITE (§7.1), and each client
// transaction that got a 2xx stays "Accepted" for Timer M (64*T1) to pass
// upstream the retransmissions of that 2xx by the UAS (RFC 3261
// §13.3.1.4; RFC 6026 §7.2). sipgo keeps the whole of both transactions
// for that, their requests and responses parsed: at a P-CSCF serving both
// ends of a call, about 30 KB for each call of the last 32 s.
//
// What those duties need is two keys and an address. So, over UDP, once
// the 2xx has been relayed and every branch has its final response, the
// transactions leave sipgo for the completed cache (retain.go): the
// server transaction's key, which absorbs a retransmitted INVITE (and
// answers a CANCEL 200, RFC 3261 §9.2), and the key of each branch that
// got a 2xx, with the socket and address that 2xx went upstream on. A
// 2xx retransmission then matches no client transaction; sipgo hands it
// to handleStrayResponse, which relays it from that socket to that
// address (an IPsec protected port, say) with our Via removed, as the
// accepted client transaction would have. TCP transactions are not
// retained by sipgo after their final response in the first place.

// sipgo's own Accepted states (its Timer L and Timer M) keep their RFC
// 6026 length, 64*T1: our fork stops them when a transaction is
// terminated (third_party/sipgo/FORK.md), so a transaction leaveAccepted
// hands to the completed cache is garbage at once. (Before the fork both
// timers were shortened to 10*T1 for every process linking this package,
// because an armed timer kept a terminated transaction, its request and
// its responses reachable for the full 32 s.) Where the cache does not
// take over (a branch still pending when the handler returns, a full
// cache) sipgo's Accepted state does the work for its full 64*T1.

// acceptedBranchKey is the completed cache's key of an accepted branch
// whose client transaction key is key (apart from the server
// transactions' keys, which name the sender's address).
func acceptedBranchKey(key string) string { return "accepted-branch " + key }

// leaveAccepted moves t, an INVITE over UDP whose 2xx has been relayed,
// from sipgo's transactions to the completed cache (see above), and
// reports whether it did: not while a branch is still pending (forking),
// nor when a branch went over another transport or the cache is full.
// Called with t.mu held, once the handler has returned.
func (t *Txn) leaveAccepted() bool {
	if t.canceled || !strings.EqualFold(t.origin.Transport(), "udp") {
		return false
	}
	uc, ok := t.stx.Connection().(*sip.UDPConnection)
	dest, err := netip.ParseAddrPort(t.dest)
	if !ok || err != nil {
		return false
	}
	var accepted []*branch
	for _, b := range t.branches {
		b.mu.Lock()
		finished, acc := b.finished, b.accepted
		b.mu.Unlock()
		if !finished || !strings.EqualFold(b.req.Transport(), "udp") {
			return false
		}
		if acc {
			accepted = append(accepted, b)
		}
	}
	if _, ok := t.p.completed.put(t.stx.Key(), nil, nil, netip.AddrPort{}, nil); !ok {
		return false
	}
	for _, b := range accepted {
		if t.p.completed.putRelay(acceptedBranchKey(b.tx.Key()), uc.PacketConn, dest) {
			b.tx.Terminate()
		}
	}
	t.stx.Terminate()
	// Branches that ended otherwise (CANCELed by the 2xx, 487) stay with
	// sipgo for their ACKs (Timer D); nothing here needs t any more.
	t.req, t.last, t.relayed, t.branches = nil, nil, nil, nil
	return true
}

// relayAccepted2xx handles res, a response matching no client
// transaction, when it belongs to an accepted branch, and reports whether
// it did: a retransmission of the 2xx is relayed from the socket and to
// the address the first 2xx went upstream on, our Via removed; anything
// else (a provisional the UAS sent before its 2xx and that came in after
// it) is absorbed, as the Accepted client transaction would (RFC 6026
// §7.2): relayed, it would reach the caller after the 2xx.
func (p *Proxy) relayAccepted2xx(res *sip.Response) bool {
	if cs := res.CSeq(); cs == nil || cs.MethodName != sip.INVITE {
		return false
	}
	key, err := sip.ClientTxKeyMake(res)
	if err != nil {
		return false
	}
	r, ok := p.completed.get(acceptedBranchKey(key))
	if !ok || !r.relay {
		return false
	}
	if !res.IsSuccess() || !popOwnVia(p, res) {
		return true
	}
	if p.cfg.HideWarnings {
		for res.RemoveHeader("Warning") {
		}
	}
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	res.StringWrite(b)
	_, _ = r.conn.WriteTo(b.Bytes(), net.UDPAddrFromAddrPort(r.dest))
	bufPool.Put(b)
	return true
}
