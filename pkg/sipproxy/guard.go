package sipproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/rawsock"
)

// guard.go puts the validating layer (wire.go) between the listening
// sockets and sipgo: sipgo reads through guardedPacketConn (UDP) and
// guardedConn (accepted TCP connections), which hand it only messages
// inspect passed, in canonical form, and answer or drop the others.

// DefaultBadLogInterval is how long a source that sent a bad message stays
// quiet in the log: its next bad messages are counted, and reported with
// the next log line after the interval.
const DefaultBadLogInterval = time.Minute

// badMessages logs bad messages at most once per source IP per interval,
// never whole, and counts every one in sip_bad_messages_total.
type badMessages struct {
	log      *zap.Logger
	interval time.Duration
	counter  *prometheus.CounterVec

	mu      sync.Mutex
	sources map[string]*badSource
}

type badSource struct {
	last       time.Time
	suppressed int
}

// maxBadSources bounds the per-source memory of the log limiter; beyond it
// sources older than the interval are forgotten (and all of them if that
// is not enough).
const maxBadSources = 4096

func newBadMessages(log *zap.Logger, interval time.Duration, reg prometheus.Registerer) *badMessages {
	b := &badMessages{log: log, interval: interval, sources: map[string]*badSource{},
		counter: counterVec(reg, log, prometheus.CounterOpts{
			Name: "sip_bad_messages_total",
			Help: "SIP messages refused by the validating layer of the listening sockets, by transport and answer (the status code sent, or none when dropped).",
		}, "transport", "answer")}
	return b
}

// counterVec makes a counter vector and registers it with reg (nil: not
// registered); where reg already holds one of that name (several proxies
// in one process), that one is returned and shared.
func counterVec(reg prometheus.Registerer, log *zap.Logger, opts prometheus.CounterOpts, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(opts, labels)
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		log.Warn("cannot register a metric", zap.String("metric", opts.Name), zap.Error(err))
	}
	return c
}

// report counts one bad message and logs it unless its source was logged
// less than an interval ago.
func (b *badMessages) report(transport string, src net.Addr, size int, v *verdict) {
	answer := "none"
	if v.act == actReject {
		answer = strconv.Itoa(v.code)
	}
	b.counter.WithLabelValues(transport, answer).Inc()
	host := src.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	now := time.Now()
	b.mu.Lock()
	s := b.sources[host]
	if s != nil && now.Sub(s.last) < b.interval {
		s.suppressed++
		b.mu.Unlock()
		return
	}
	suppressed := 0
	if s == nil {
		if len(b.sources) >= maxBadSources {
			for k, o := range b.sources {
				if now.Sub(o.last) >= b.interval {
					delete(b.sources, k)
				}
			}
			if len(b.sources) >= maxBadSources {
				b.sources = map[string]*badSource{}
			}
		}
		s = &badSource{}
		b.sources[host] = s
	} else {
		suppressed = s.suppressed
	}
	s.last, s.suppressed = now, 0
	b.mu.Unlock()
	kind := "response"
	if v.request {
		kind = "request"
	}
	b.log.Warn("bad SIP message", zap.String("transport", transport), zap.Stringer("source", src),
		zap.String("kind", kind), zap.String("answer", answer), zap.String("reason", printable(v.reason, 120)),
		zap.Int("bytes", size), zap.String("start", v.start),
		zap.Int("suppressed", suppressed), zap.Duration("quiet_for", b.interval))
}

// guardedPacketConn is the UDP socket sipgo reads. Its ReadFrom returns
// only datagrams the validating layer passed, rewritten; it answers the
// requests it refuses itself. It also closes ready on the first read,
// which sipgo does right after adding the socket to its connection pool.
type guardedPacketConn struct {
	net.PacketConn
	queue backlogger // the socket's receive queue (nil: not checked)
	p     *Proxy
	once  sync.Once
	ready chan struct{}
}

func (c *guardedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.once.Do(func() { close(c.ready) })
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || n == 0 || isKeepAlive(b[:n]) {
			return n, addr, err
		}
		v := c.p.inspectFrom(b[:n], false, addr, c.queue)
		switch v.act {
		case actAbsorb:
			continue
		case actPass:
			if len(v.out) <= len(b) {
				return copy(b, v.out), addr, nil
			}
			v.act, v.code, v.reason = actDrop, 0, "rewritten message larger than the read buffer"
		case actReject:
			dest := addr
			if v.dest != "" {
				if ua, err := net.ResolveUDPAddr("udp", v.dest); err == nil {
					dest = ua
				}
			}
			if _, err := c.PacketConn.WriteTo(v.resp, dest); err != nil {
				c.p.log.Debug("cannot answer a bad request", zap.Error(err))
			}
			if v.overload {
				continue // counted and logged as overload, not as a fault
			}
		}
		c.p.bad.report("udp", addr, n, &v)
	}
}

// guardedListener hands sipgo accepted TCP connections wrapped in
// guardedConn; it closes ready on the first Accept.
type guardedListener struct {
	net.Listener
	p     *Proxy
	once  sync.Once
	ready chan struct{}
}

func (l *guardedListener) Accept() (net.Conn, error) {
	l.once.Do(func() { close(l.ready) })
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: rawsock.Stream(c), p: l.p}, nil
}

// guardedConn frames the SIP messages of a TCP stream (RFC 3261 §18.3:
// header section, then Content-Length octets), passes each through the
// validating layer and gives sipgo's reader the passed ones, one message
// or keep-alive per Read. A refused request is answered on the
// connection; a stream that cannot be framed any more is answered (when a
// request can be) and closed.
type guardedConn struct {
	net.Conn
	p    *Proxy
	in   []byte   // read, not yet framed
	out  [][]byte // framed and passed, not yet read by sipgo
	head int      // bytes of out[0] already read
	err  error    // the read error to return once out is drained
	rbuf []byte
}

func (c *guardedConn) Read(b []byte) (int, error) {
	for len(c.out) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.frame() {
			continue
		}
		if c.rbuf == nil {
			c.rbuf = make([]byte, 16<<10)
		}
		n, err := c.Conn.Read(c.rbuf)
		c.in = append(c.in, c.rbuf[:n]...)
		if err != nil {
			c.err = err
		}
	}
	n := copy(b, c.out[0][c.head:])
	c.head += n
	if c.head == len(c.out[0]) {
		c.out[0] = nil
		c.out, c.head = c.out[1:], 0
	}
	return n, nil
}

// frame takes one message or keep-alive off c.in, if complete; false when
// more bytes are needed (or the stream is condemned: c.err set).
func (c *guardedConn) frame() bool {
	// RFC 5626 §3.5.1 keep-alives: a double CRLF is a ping (handed to
	// sipgo, which answers it), a single one a pong.
	crlf := 0
	for crlf+1 < len(c.in) && c.in[crlf] == '\r' && c.in[crlf+1] == '\n' {
		crlf += 2
	}
	if crlf > 0 {
		if crlf >= 4 {
			c.out = append(c.out, []byte("\r\n\r\n"))
		}
		c.in = c.in[crlf:]
		return true
	}
	if len(c.in) == 0 {
		return false
	}
	limit := c.p.limits.MaxMessageBytes
	end := bytes.Index(c.in, []byte("\r\n\r\n"))
	if end < 0 {
		if len(c.in) > limit {
			c.condemn(c.in, 513, "header section larger than "+strconv.Itoa(limit)+" bytes")
		}
		return false
	}
	head := c.in[:end+4]
	cl, problem := streamContentLength(head)
	if problem != "" {
		c.condemn(head, 400, problem)
		return false
	}
	total := end + 4 + cl
	if total > limit {
		c.condemn(head, 513, "message of "+strconv.Itoa(total)+" bytes, more than "+strconv.Itoa(limit))
		return false
	}
	if len(c.in) < total {
		return false
	}
	msg := c.in[:total:total]
	c.in = c.in[total:]
	v := c.p.inspect(msg, true, c.RemoteAddr())
	if v.act == actPass {
		c.out = append(c.out, v.out)
		return true
	}
	c.answer(&v, len(msg))
	return true
}

// answer sends the answer to a refused message, if any, and reports it.
func (c *guardedConn) answer(v *verdict, size int) {
	if v.act == actAbsorb {
		return
	}
	if v.act == actReject {
		if _, err := c.Conn.Write(v.resp); err != nil {
			c.p.log.Debug("cannot answer a bad request", zap.Error(err))
		}
	}
	c.p.bad.report("tcp", c.RemoteAddr(), size, v)
}

// condemn answers what can be answered of a message that breaks the
// stream's framing and ends the connection: without a trustworthy
// Content-Length there is no next message to find.
func (c *guardedConn) condemn(msg []byte, code int, problem string) {
	m := c.p.lex(msg, true)
	v := c.p.refuse(&m, code, problem, c.RemoteAddr())
	c.answer(&v, len(msg))
	// sipgo's reader ends at EOF (logged at debug level, not as an error
	// per junk connection); closing the socket here does not wait for the
	// transactions that hold a reference to the connection.
	c.in, c.err = nil, io.EOF
	_ = c.Conn.Close()
}

// streamContentLength reads the one Content-Length a message on a stream
// must have (RFC 3261 §18.3) from its header section.
func streamContentLength(head []byte) (int, string) {
	n, found := 0, 0
	for _, ln := range bytes.Split(head, []byte("\r\n")) {
		colon := bytes.IndexByte(ln, ':')
		if colon < 0 || len(ln) == 0 || isWS(ln[0]) {
			continue
		}
		name := string(bytes.ToLower(bytes.TrimRight(ln[:colon], " \t")))
		if name != "content-length" && name != "l" {
			continue
		}
		found++
		v, ok := number(trimWS(string(ln[colon+1:])), 1<<31-1)
		if !ok {
			return 0, "bad Content-Length"
		}
		n = int(v)
	}
	switch {
	case found == 0:
		return 0, "no Content-Length on a stream transport"
	case found > 1:
		return 0, "more than one Content-Length"
	}
	return n, ""
}
