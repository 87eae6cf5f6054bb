package sipproxy

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// DefaultProxyRequire are the Proxy-Require option tags a Proxy
// understands by default: sec-agree (RFC 3329, TS 24.229 §5.2.2).
var DefaultProxyRequire = []string{"sec-agree"}

// validate does the RFC 3261 §16.3 checks of a parsed request that the
// validating layer of the sockets (wire.go) leaves to the proxy, which
// needs the proxy's configuration: Proxy-Require (step 5, 420 with
// Unsupported) and Max-Forwards 0 on an OPTIONS that is not for us (step 3,
// 483). The other checks are kept for requests that reach the proxy
// without that layer. It returns 0 when the request may go on, else the
// status code, reason phrase and extra headers of the answer.
func (p *Proxy) validate(req *sip.Request) (int, string, []sip.Header) {
	switch {
	case req.From() == nil:
		return 400, "Bad Request (missing From)", nil
	case req.To() == nil:
		return 400, "Bad Request (missing To)", nil
	case req.CallID() == nil:
		return 400, "Bad Request (missing Call-ID)", nil
	case req.CSeq() == nil:
		return 400, "Bad Request (missing CSeq)", nil
	case !strings.EqualFold(string(req.CSeq().MethodName), string(req.Method)):
		// sipgo upper-cases the Request-Line method; the wire layer has
		// checked that both are the same octets.
		return 400, "Bad Request (CSeq method does not match)", nil
	case req.Recipient.Host == "" && (req.Recipient.Scheme == "sip" || req.Recipient.Scheme == "sips"):
		return 400, "Bad Request (Request-URI without host)", nil
	case !strings.EqualFold(req.SipVersion, "SIP/2.0"):
		return 505, "Version Not Supported", nil
	}
	var unsupported []string
	for _, h := range req.GetHeaders("Proxy-Require") {
		tags, err := optionTags(h.Value())
		if err != nil {
			return 400, "Bad Request (bad Proxy-Require)", nil
		}
		for _, t := range tags {
			if !p.proxyRequire[strings.ToLower(t)] {
				unsupported = append(unsupported, t)
			}
		}
	}
	if len(unsupported) > 0 {
		return 420, "Bad Extension", []sip.Header{sip.NewHeader("Unsupported", strings.Join(unsupported, ", "))}
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 && req.Method == sip.OPTIONS && !p.IsSelf(req.Recipient) {
		return 483, "Too Many Hops", nil
	}
	return 0, "", nil
}

// wireMethod is the method of req as it was on the wire: sipgo upper-cases
// the Request-Line method, but methods are case-sensitive (RFC 3261 §7.1)
// and the CSeq keeps the received spelling, which the wire layer has
// checked is the same.
func wireMethod(req *sip.Request) sip.RequestMethod {
	if cs := req.CSeq(); cs != nil && strings.EqualFold(string(cs.MethodName), string(req.Method)) {
		return cs.MethodName
	}
	return req.Method
}
