package imsue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/ipsec"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// Without an SA a large request stays on UDP (the P-CSCF knows the UE
// by its flow); importing pkg/sipproxy raises sipgo's UDP size limit to
// sipproxy.MaxUDPMessageSize, as for the CSCFs.
var _ = sipproxy.MaxUDPMessageSize

// UDPSizeLimit is the size above which a request over an SA goes over
// TCP even when the UE uses UDP (RFC 3261 §18.1.1); through the SA, TCP
// goes from port-c to the P-CSCF's port-s like UDP.
const UDPSizeLimit = 1300

// asBuilt is the sipgo client option that leaves a request as the UE
// built it.
func asBuilt(*sipgo.Client, *sip.Request) error { return nil }

// contactURI is the UE's Contact: its address and protected server port
// (TS 24.229 §5.1.1.2: the port the UE receives requests on).
func (u *UE) contactURI(transport string) sip.Uri {
	c := sip.Uri{Scheme: "sip", User: u.user, Host: u.ip.String(), Port: u.portS, UriParams: sip.NewParams()}
	if transport == "tcp" {
		c.UriParams.Add("transport", "tcp")
	}
	return c
}

// newRequest builds a request of the UE outside any dialog (From its
// IMPU with a fresh tag, a fresh Call-ID), without Via.
func (u *UE) newRequest(method sip.RequestMethod, ruri sip.Uri, to sip.Uri) *sip.Request {
	req := sip.NewRequest(method, ruri)
	var from sip.Uri
	_ = sip.ParseUri(u.cfg.IMPU, &from)
	fp := sip.NewParams()
	fp.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(&sip.FromHeader{Address: from, Params: fp})
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	cid := sip.CallIDHeader(sip.GenerateTagN(20) + "@" + u.ip.String())
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.NewHeader("User-Agent", u.cfg.UserAgent))
	return req
}

// initialRequest is newRequest for an initial request of the UE over the
// SA in use (sa): Contact, the preloaded Route set and
// P-Preferred-Identity added.
func (u *UE) initialRequest(method sip.RequestMethod, target sip.Uri, sa *ipsec.SecAssoc) *sip.Request {
	req := u.newRequest(method, target, target)
	u.mu.Lock()
	tr := u.tr
	u.mu.Unlock()
	if method != sip.MESSAGE {
		req.AppendHeader(&sip.ContactHeader{Address: u.contactURI(tr), Params: sip.NewParams()})
	}
	for _, r := range u.routeSet(sa) {
		req.AppendHeader(&sip.RouteHeader{Address: r})
	}
	req.AppendHeader(sip.NewHeader("P-Preferred-Identity", "<"+u.cfg.IMPU+">"))
	return req
}

// routeSet is the preloaded Route of an initial request (TS 24.229
// §5.1.2A.1.1): the P-CSCF (its protected server port when there is an
// SA), then the Service-Route of the registration.
func (u *UE) routeSet(sa *ipsec.SecAssoc) []sip.Uri {
	p := sip.Uri{Scheme: "sip", Host: u.pcscf.IP.String(), Port: u.pcscf.Port, UriParams: sip.NewParams()}
	if sa != nil {
		p.Port = int(sa.PCSCF.PortS)
	}
	p.UriParams.Add("lr", "")
	out := []sip.Uri{p}
	u.mu.Lock()
	sr := append([]string(nil), u.regState.serviceRoute...)
	u.mu.Unlock()
	for _, r := range sr {
		var x sip.Uri
		if err := sip.ParseUri(r, &x); err == nil {
			out = append(out, x)
		}
	}
	return out
}

// transportFor is the transport of req (with its Via): the UE's, or,
// over an SA, TCP for a request above UDPSizeLimit. Without an SA the
// P-CSCF knows the UE by its registered flow, so the transport stays.
func (u *UE) transportFor(req *sip.Request, sa *ipsec.SecAssoc) string {
	u.mu.Lock()
	tr := u.tr
	u.mu.Unlock()
	if tr == "udp" && sa != nil && imsheader.WireSize(req) > UDPSizeLimit {
		return "tcp"
	}
	return tr
}

// prepare adds the Via and the transport details: over sa (from port-c
// to the P-CSCF's port-s; Via sent-by is the protected server port, TS
// 24.229 §5.1.1.2, TS 34.229-1 A.1.1) or, with sa nil, unprotected from
// port-c to the P-CSCF's SIP port (Via with rport, RFC 3581).
func (u *UE) prepare(ctx context.Context, req *sip.Request, sa *ipsec.SecAssoc) (transport string, err error) {
	for req.RemoveHeader("Via") {
	}
	dst := &net.TCPAddr{IP: u.pcscf.IP, Port: u.pcscf.Port}
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP",
		Host: u.ip.String(), Port: u.portC, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranchN(16))
	if sa != nil {
		dst.Port = int(sa.PCSCF.PortS)
		via.Port = u.portS
	} else {
		via.Params.Add("rport", "")
	}
	req.PrependHeader(via)
	if req.ContentLength() == nil {
		req.SetBody(req.Body())
	}
	transport = u.transportFor(req, sa)
	via.Transport = strings.ToUpper(transport)
	req.SetTransport(strings.ToUpper(transport))
	req.SetDestination(dst.String())
	req.Laddr = sip.Addr{}
	if transport == "udp" {
		req.Laddr = sip.Addr{IP: u.ip, Port: u.portC}
		return transport, nil
	}
	if err := u.dialTCP(ctx, dst); err != nil {
		return transport, fmt.Errorf("%w: TCP from port-c %d to %s: %v", ErrTransport, u.portC, dst, err)
	}
	return transport, nil
}

// do sends req over sa (nil: unprotected) in a client transaction and
// returns the final response; provisional responses go to onProv.
func (u *UE) do(ctx context.Context, req *sip.Request, sa *ipsec.SecAssoc, onProv func(*sip.Response)) (*sip.Response, error) {
	if _, err := u.prepare(ctx, req, sa); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, u.cfg.Timeout)
	defer cancel()
	tx, err := u.client.TransactionRequest(ctx, req, asBuilt)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrTransport, req.Method, err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				if onProv != nil {
					onProv(res)
				}
				continue
			}
			return res, nil
		case <-tx.Done():
			err := tx.Err()
			if errors.Is(err, sip.ErrTransactionTimeout) {
				return nil, fmt.Errorf("%w: no response to %s from %s (timeout)%s", ErrTransport, req.Method, req.Destination(), u.timeoutHint(sa))
			}
			return nil, fmt.Errorf("%w: %s: %v", ErrTransport, req.Method, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: no final response to %s from %s within %v%s", ErrTransport, req.Method, req.Destination(), u.cfg.Timeout, u.timeoutHint(sa))
		}
	}
}

// timeoutHint explains a timeout over an SA.
func (u *UE) timeoutHint(sa *ipsec.SecAssoc) string {
	if sa == nil {
		return ""
	}
	if n := len(u.Unprotected()); n > 0 {
		return fmt.Sprintf("; %d message(s) from the P-CSCF came outside the SA, see Unprotected()", n)
	}
	return "; over the SA: check that the P-CSCF installed the SAs it offered (ip xfrm state) and answers from its port-s to the UE's port-c"
}

// send writes req over sa without a transaction (ACK).
func (u *UE) send(ctx context.Context, req *sip.Request, sa *ipsec.SecAssoc) error {
	if _, err := u.prepare(ctx, req, sa); err != nil {
		return err
	}
	return u.client.WriteRequest(req, asBuilt)
}

// readFilter drops, and records as a fault of the P-CSCF, a UDP
// response that reaches the protected server port: the P-CSCF must send
// the responses to the UE's requests from its port-s to the UE's port-c
// (TS 33.203 §7.1), where the SA protects them.
func (u *UE) readFilter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if !strings.EqualFold(p.Transport, "udp") || !strings.HasPrefix(string(data[:min(len(data), 8)]), "SIP/2.0 ") {
		return data, nil
	}
	u.mu.Lock()
	anySA := u.sa != nil || u.pend != nil
	u.mu.Unlock()
	if la, ok := p.LocalAddr.(*net.UDPAddr); ok && la.Port == u.portS && anySA {
		line := string(data[:min(len(data), 64)])
		if i := strings.IndexAny(line, "\r\n"); i > 0 {
			line = line[:i]
		}
		u.noteUnprotected(fmt.Sprintf("%q from %s reached port-s %d instead of port-c %d", line, p.RemoteAddr, u.portS, u.portC))
		return nil, nil
	}
	return data, nil
}

func (u *UE) noteUnprotected(what string) {
	u.mu.Lock()
	u.unprot = append(u.unprot, what)
	u.mu.Unlock()
	u.emit(Event{Step: "outside-sa", Error: ErrUnprotected.Error() + ": " + what})
}

// statusError wraps a rejection with its status, reason and Warning.
func statusError(what string, res *sip.Response) error {
	w := ""
	if h := res.GetHeader("Warning"); h != nil {
		w = " (Warning: " + h.Value() + ")"
	}
	return fmt.Errorf("%w: %s: %d %s%s", ErrRejected, what, res.StatusCode, res.Reason, w)
}

// headerValues joins the values of every header name.
func headerValues(m sip.Message, name string) string {
	return strings.Join(imsheader.Values(m, name), ", ")
}

func itoa(n int) string { return strconv.Itoa(n) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
