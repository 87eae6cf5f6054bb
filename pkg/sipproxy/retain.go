package sipproxy

import (
	"bytes"
	"context"
	"hash/maphash"
	"math"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// What a completed server transaction keeps. Over UDP a server
// transaction lives on after its final response to answer retransmissions
// of the request with that response: 32 s for a non-INVITE (Timer J,
// 64*T1, RFC 3261 §17.2.2), until the ACK or Timer H for an INVITE. sipgo
// keeps for that the parsed request and the response objects, about 4 KB
// a transaction; under a flood of requests answered at once (junk, 403 to
// unregistered UEs) they were most of the heap (issue 22).
//
// What retransmission handling needs is the transaction's key and the
// bytes of its final response. So, once the handler has returned, a
// transaction over UDP whose final response is not a 2xx to an INVITE
// leaves sipgo (its transaction terminated) for the proxy's completed
// cache: key → response bytes and destination, for 32 to 64 s. A
// retransmission of the request then starts a new sipgo transaction,
// which handleRequest answers from the cache without calling the handler;
// for an INVITE the cache also retransmits the response (Timer G, T1
// doubling up to T2) until the ACK, which it absorbs, or Timer H (64*T1).
// When the cache is full, a transaction stays in sipgo, its request
// trimmed to the header fields a response copies (RFC 3261 §8.2.6.2).
//
// Client transactions: a non-INVITE branch's ends with its final response
// (branch.run) rather than after Timer K (T4, 5 s over UDP), which kept
// the copy of the request and the response only to absorb retransmissions
// of that response; one that comes matches no transaction and goes
// upstream statelessly (§16.7), where the previous hop's transaction
// absorbs it. At 300 calls/s the P-CSCF's live heap after the step went
// from 105 to 27 MiB with that change (docs/performance.md).
// An accepted INVITE's branch moves to the completed cache (accepted.go);
// one that ended with a failure stays for Timer D, to ACK retransmissions
// of that failure.

// completedLifetime is Timer J: how long a completed non-INVITE
// transaction answers retransmissions.
var completedLifetime = 64 * sip.T1

// maxCompleted bounds the completed cache (entries); beyond it completed
// transactions stay in sipgo as before, at several times an entry's
// memory (a whole accepted INVITE transaction: its request and
// responses parsed). -1, the default: completedCap of the memory limit in
// force when the first entry is stored. A variable for tests (0: the
// cache keeps nothing).
var maxCompleted = -1

// autoCompletedCap is completedCap of the process's memory limit, read
// once: the binaries set the limit at start-up (pkg/memlimit), before a
// proxy stores anything.
var autoCompletedCap = sync.OnceValue(func() int { return completedCap(debug.SetMemoryLimit(-1)) })

// completedMax is the cache's bound in entries.
func completedMax() int {
	if maxCompleted >= 0 {
		return maxCompleted
	}
	return autoCompletedCap()
}

// Bounds of completedCap, in entries.
const (
	minCompletedCap = 200000
	maxCompletedCap = 4000000
)

// completedCap sizes the completed cache from limit, the process's memory
// limit in bytes (math.MaxInt64: none): limit / 2 KiB entries, between
// minCompletedCap and maxCompletedCap (the latter without a limit). An
// entry is about 100 bytes of map and, for a completed non-INVITE, the
// bytes of its final response (some 500 for a 200 to a BYE); at a P-CSCF
// carrying calls, two entries in six hold a response, so the bound is
// about an eighth of the limit in memory. The cache holds each
// transaction for 32 to 64 s (Timer J): at 1,200 calls/s a P-CSCF needs
// about 460,000 entries (six a call: both legs' INVITE server
// transactions and accepted branches, both BYEs), which the fixed
// 200,000 of before could not hold; the transactions beyond it stayed in
// sipgo whole, 240-250 MiB live at the P-CSCF after a 1,200/s step that
// followed a 1,000/s one instead of 54 MiB (docs/performance.md,
// nineteenth session). 1 GiB (the default limit): 524,288 entries.
func completedCap(limit int64) int {
	if limit <= 0 || limit == math.MaxInt64 {
		return maxCompletedCap
	}
	return int(min(max(limit/2048, minCompletedCap), maxCompletedCap))
}

type completedResponse struct {
	resp   []byte         // in the cache's arena; nil for an accepted INVITE (see accepted.go)
	conn   net.PacketConn // the socket it left from
	dest   netip.AddrPort // where the response went
	invite *inviteResends // INVITE: the Timer G retransmissions until the ACK
	relay  bool           // an accepted INVITE's branch: 2xx retransmissions go to dest from conn
}

// inviteResends retransmits an INVITE's final response until its ACK or
// Timer H (RFC 3261 §17.2.1).
type inviteResends struct {
	mu    sync.Mutex
	timer *time.Timer
	done  bool
}

func (r *inviteResends) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	if r.timer != nil {
		r.timer.Stop()
	}
}

// start retransmits resp to dest over conn at T1, 2*T1, … (at most T2
// apart) until stop or Timer H.
func (r *inviteResends) start(conn net.PacketConn, resp []byte, dest netip.AddrPort) {
	deadline := time.Now().Add(64 * sip.T1)
	interval := sip.T1
	to := net.UDPAddrFromAddrPort(dest)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = time.AfterFunc(interval, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.done || time.Now().After(deadline) {
			r.done = true
			return
		}
		_, _ = conn.WriteTo(resp, to)
		interval = min(2*interval, sip.T2)
		r.timer.Reset(interval)
	})
}

// completedCache holds the final responses of completed transactions in
// two generations swapped every completedLifetime, so that an entry lives
// between one and two lifetimes. Entries are keyed by a seeded hash of the
// transaction key, and a generation's response bytes are packed in its own
// arena of 64 KiB chunks, freed with it: the cache holds no small object
// of its own that would pin a mostly free heap span.
type completedCache struct {
	mu        sync.Mutex
	seed      maphash.Seed
	cur, prev map[uint64]completedResponse
	arena     []byte // the current generation's chunk being filled
	rotated   time.Time
	lifetime  time.Duration // completedLifetime when the proxy was made
}

const arenaChunk = 64 << 10

func (c *completedCache) rotate(now time.Time) {
	if c.cur == nil {
		c.seed, c.cur, c.rotated = maphash.MakeSeed(), map[uint64]completedResponse{}, now
	}
	if elapsed := now.Sub(c.rotated); elapsed >= c.lifetime {
		c.prev, c.cur, c.rotated, c.arena = c.cur, map[uint64]completedResponse{}, now, nil
		if elapsed >= 2*c.lifetime {
			c.prev = nil // all older than two lifetimes
		}
	}
}

// expireLoop rotates the generations on time even when no transaction
// completes: without it an idle proxy would hold the last busy period's
// responses (tens of MiB after a registration storm) until the next one.
// It returns when ctx is done.
func (c *completedCache) expireLoop(ctx context.Context) {
	t := time.NewTicker(c.lifetime / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.mu.Lock()
			if c.cur != nil {
				c.rotate(now)
			}
			c.mu.Unlock()
		}
	}
}

// put stores a copy of resp for key; false when the cache is full.
func (c *completedCache) put(key string, resp []byte, conn net.PacketConn, dest netip.AddrPort, invite *inviteResends) (completedResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(time.Now())
	if len(c.cur)+len(c.prev) >= completedMax() {
		return completedResponse{}, false
	}
	var b []byte
	switch {
	case resp == nil: // an accepted INVITE: nothing to answer with
	case len(resp) > arenaChunk/4:
		b = bytes.Clone(resp)
	default:
		if len(c.arena)+len(resp) > cap(c.arena) {
			c.arena = make([]byte, 0, arenaChunk)
		}
		off := len(c.arena)
		c.arena = append(c.arena, resp...)
		b = c.arena[off:len(c.arena):len(c.arena)]
	}
	r := completedResponse{resp: b, conn: conn, dest: dest, invite: invite}
	c.cur[maphash.String(c.seed, key)] = r
	return r, true
}

// putRelay stores, for key (an accepted branch, accepted.go), the socket
// and address its 2xx retransmissions are relayed from and to; false when
// the cache is full.
func (c *completedCache) putRelay(key string, conn net.PacketConn, dest netip.AddrPort) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(time.Now())
	if len(c.cur)+len(c.prev) >= completedMax() {
		return false
	}
	c.cur[maphash.String(c.seed, key)] = completedResponse{conn: conn, dest: dest, relay: true}
	return true
}

func (c *completedCache) get(key string) (completedResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(time.Now())
	h := maphash.String(c.seed, key)
	if r, ok := c.cur[h]; ok {
		return r, true
	}
	r, ok := c.prev[h]
	return r, ok
}

// answerRetransmission answers req from the completed cache when it is a
// retransmission of a completed request (an ACK of a completed INVITE is
// absorbed), and reports whether it did.
func (p *Proxy) answerRetransmission(req *sip.Request, stx *sip.ServerTx) bool {
	if !strings.EqualFold(req.Transport(), "udp") {
		return false
	}
	if req.IsCancel() {
		// RFC 3261 §9.2: a CANCEL of a completed INVITE is answered 200;
		// the INVITE keeps its final response.
		if _, ok := p.completed.get(inviteKeyOf(stx.Key())); !ok {
			return false
		}
		_ = stx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		stx.TerminateGracefully()
		return true
	}
	r, ok := p.completed.get(stx.Key())
	if !ok {
		return false
	}
	switch {
	case req.IsAck():
		if r.invite == nil {
			return false
		}
		r.invite.stop()
	case r.invite != nil && !req.IsInvite():
		return false
	default:
		// sipgo's transaction for the retransmission goes first: a
		// request the client sends as soon as it has the answer (the ACK)
		// must not be absorbed by it but reach the cache.
		stx.Terminate()
		if r.resp == nil {
			// An accepted INVITE absorbs its retransmissions (RFC 6026
			// §7.1): the UAS retransmits the 2xx, not the proxy.
			return true
		}
		// From the socket the response left from, as sipgo's completed
		// transaction would (an IPsec protected port, say).
		_, _ = r.conn.WriteTo(r.resp, net.UDPAddrFromAddrPort(r.dest))
		return true
	}
	stx.Terminate()
	return true
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// inviteKeyOf turns the transaction key sipgo made for a CANCEL into the
// key of the INVITE it cancels: the method is the only difference (RFC
// 3261 §9.2).
func inviteKeyOf(cancelKey string) string {
	sep := sip.TxSeperator
	if k, ok := strings.CutSuffix(cancelKey, sep+string(sip.CANCEL)); ok {
		return k + sep + string(sip.INVITE) // RFC 3261 branch key
	}
	return strings.Replace(cancelKey, sep+string(sip.CANCEL)+sep, sep+string(sip.INVITE)+sep, 1) // RFC 2543 key
}

// retainedFields are the header fields a completed INVITE keeps.
var retainedFields = map[string]bool{"via": true, "from": true, "to": true, "call-id": true, "cseq": true}

// release runs when the handler has returned and the final response has
// been sent: see above.
func (t *Txn) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.finalSent || t.origin.IsAck() {
		return
	}
	invite := t.origin.IsInvite()
	if invite && t.relayed != nil && t.relayed.IsSuccess() && t.leaveAccepted() {
		return
	}
	if strings.EqualFold(t.origin.Transport(), "udp") && t.relayed != nil && !(invite && t.relayed.IsSuccess()) {
		dest, err := netip.ParseAddrPort(t.dest)
		if uc, ok := t.stx.Connection().(*sip.UDPConnection); ok && err == nil {
			var ir *inviteResends
			if invite {
				ir = &inviteResends{}
			}
			b := bufPool.Get().(*bytes.Buffer)
			b.Reset()
			t.relayed.StringWrite(b)
			r, ok := t.p.completed.put(t.stx.Key(), b.Bytes(), uc.PacketConn, dest, ir)
			bufPool.Put(b)
			if ok {
				t.stx.Terminate()
				if invite {
					ir.start(r.conn, r.resp, dest)
				}
				return
			}
		}
	}
	// A forwarded request stays whole: a branch still running may build a
	// local response from it (a late 408 after a 2xx of another branch).
	if len(t.branches) > 0 {
		return
	}
	// A request edited in place (needsWorkingCopy) is the handler's too,
	// which may have handed it on (the S-CSCF's third-party REGISTER puts
	// it in a body, on its own goroutine): it stays whole.
	if t.req != t.origin {
		trimRequest(t.origin)
	}
	t.req, t.last = nil, nil
}

// trimRequest removes from r every header field but retainedFields, and
// its body.
func trimRequest(r *sip.Request) {
	r.SetBody(nil) // first: it sets a Content-Length, removed below
	var drop []string
	seen := map[string]bool{}
	for _, h := range r.Headers() {
		n := strings.ToLower(h.Name())
		if !retainedFields[n] && !seen[n] {
			seen[n] = true
			drop = append(drop, h.Name())
		}
	}
	for _, n := range drop {
		for r.RemoveHeader(n) {
		}
	}
	// sipgo removes a field by shifting the rest of its list down: the
	// slots past the new end still point at the fields that were last.
	h := r.Headers()
	clear(h[len(h):cap(h)])
}
