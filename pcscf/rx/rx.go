// Package rx is the P-CSCF's (AF's) Rx client (TS 29.214, application
// 16777236) on pkg/diameter: AAR with Media-Component-Descriptions derived
// from an SDP offer/answer (TS 29.214 annex B / TS 29.213 §6), STR when a
// session ends, and ASR from the PCRF answered with ASA and reported to
// the caller, which tears the call down.
package rx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/diameter"
)

// Config of the Rx client.
type Config struct {
	OriginHost  string // e.g. pcscf.<domain>
	OriginRealm string
	PCRFAddr    string // host:port (TCP)
	PCRFHost    string // expected Origin-Host of the PCRF ("" any)
	PCRFRealm   string // Destination-Realm
	Timeout     time.Duration
	Logger      *zap.Logger
	// Latency, when set, is told each AAR's and STR's time from sending to
	// its answer or failure (command "AAR" or "STR").
	Latency func(command string, d time.Duration)
}

// Client sends AAR/STR and serves ASR.
type Client struct {
	cfg     Config
	node    *diameter.Node
	peer    *diameter.Peer
	onAbort func(sessionID string)
	onRAR   func(ReAuth)
	count   func(cmd, result string)

	mu       sync.Mutex
	sessions map[string]bool // Session-Ids with a successful AAA and no STR yet
}

// Specific-Action values (TS 29.214 §5.3.13).
const (
	ActionChargingCorrelationExchange = 1
	ActionIndicationOfLossOfBearer    = 2
	ActionIndicationOfRecoveryBearer  = 3
	ActionIndicationOfReleaseOfBearer = 4
	ActionIPCANChange                 = 6
	ActionAccessNetworkInfoReport     = 12
)

// actionNames names the Specific-Action values of TS 29.214 §5.3.13 (5,
// INDICATION_OF_ESTABLISHMENT_OF_BEARER, is void).
var actionNames = map[uint32]string{
	ActionChargingCorrelationExchange: "CHARGING_CORRELATION_EXCHANGE",
	ActionIndicationOfLossOfBearer:    "INDICATION_OF_LOSS_OF_BEARER",
	ActionIndicationOfRecoveryBearer:  "INDICATION_OF_RECOVERY_OF_BEARER",
	ActionIndicationOfReleaseOfBearer: "INDICATION_OF_RELEASE_OF_BEARER",
	ActionIPCANChange:                 "IP-CAN_CHANGE",
	7:                                 "INDICATION_OF_OUT_OF_CREDIT",
	8:                                 "INDICATION_OF_SUCCESSFUL_RESOURCES_ALLOCATION",
	9:                                 "INDICATION_OF_FAILED_RESOURCES_ALLOCATION",
	10:                                "INDICATION_OF_LIMITED_PCC_DEPLOYMENT",
	11:                                "USAGE_REPORT",
	ActionAccessNetworkInfoReport:     "ACCESS_NETWORK_INFO_REPORT",
	13:                                "INDICATION_OF_RECOVERY_FROM_LIMITED_PCC_DEPLOYMENT",
	14:                                "INDICATION_OF_ACCESS_NETWORK_INFO_REPORTING_FAILURE",
	15:                                "INDICATION_OF_TRANSFER_POLICY_EXPIRED",
	16:                                "PLMN_CHANGE",
}

// SubscribedActions are the Specific-Actions every AAR (signalling and
// media, initial and update) subscribes to, the set Kamailio's ims_qos
// sends (TS 29.214 §4.4.1, §4.4.5a, §5.3.13): charging correlation, loss,
// recovery and release of the bearer, IP-CAN type change and access
// network information reports. The last goes with Required-Access-Info
// USER_LOCATION and MS_TIME_ZONE (§5.3.34): what the PCRF is to report.
var SubscribedActions = []uint32{
	ActionChargingCorrelationExchange, ActionIndicationOfLossOfBearer,
	ActionIndicationOfRecoveryBearer, ActionIndicationOfReleaseOfBearer,
	ActionIPCANChange, ActionAccessNetworkInfoReport,
}

// Required-Access-Info values (TS 29.214 §5.3.34).
const (
	RequiredUserLocation = 0
	RequiredMSTimeZone   = 1
)

// subscriptionAVPs are the Specific-Action and Required-Access-Info AVPs
// of SubscribedActions.
func subscriptionAVPs() []*diam.AVP {
	var out []*diam.AVP
	for _, a := range SubscribedActions {
		out = append(out, diameter.NewAVP(diameter.AVPSpecificAction, datatype.Enumerated(a)))
	}
	for _, r := range []uint32{RequiredUserLocation, RequiredMSTimeZone} {
		out = append(out, diameter.NewAVP(diameter.AVPRequiredAccessInfo, datatype.Enumerated(r)))
	}
	return out
}

// ReAuth is what a Re-Auth-Request for an open session tells the AF (TS
// 29.214 §5.6.4, §4.4.6): the Specific-Actions that happened and the
// access network information that comes with IP-CAN_CHANGE and
// ACCESS_NETWORK_INFO_REPORT.
type ReAuth struct {
	SessionID string
	Actions   []uint32
	// Flows are the media components the loss or release concerns
	// (Flows AVPs: their Media-Component-Numbers; 0 is the signalling).
	Flows []uint32
	// IPCANType and RATType (TS 29.212 §5.3.27, §5.3.31), -1 when absent.
	IPCANType, RATType int64
	// UserLocationInfo, MSTimeZone: 3GPP-User-Location-Info and
	// 3GPP-MS-TimeZone octets (TS 29.061 §16.4.7.2); SGSNMCCMNC:
	// 3GPP-SGSN-MCC-MNC.
	UserLocationInfo, MSTimeZone []byte
	SGSNMCCMNC                   string
}

// Has reports whether the RAR carries Specific-Action a.
func (r ReAuth) Has(a uint32) bool {
	for _, x := range r.Actions {
		if x == a {
			return true
		}
	}
	return false
}

// ActionNames names r's Specific-Actions.
func (r ReAuth) ActionNames() []string {
	out := make([]string, len(r.Actions))
	for i, a := range r.Actions {
		out[i] = ActionName(a)
	}
	return out
}

// parseReAuth reads a RAR's Specific-Actions, Flows and access network
// information.
func parseReAuth(req *diam.Message) ReAuth {
	r := ReAuth{SessionID: diameter.String(req, diameter.AVPSessionID), IPCANType: -1, RATType: -1}
	for _, a := range diameter.FindIn(req.AVP, diameter.AVPSpecificAction) {
		if v, ok := diameter.AsUint32(a); ok {
			r.Actions = append(r.Actions, v)
		}
	}
	for _, a := range diameter.FindIn(req.AVP, diameter.AVPFlows, diameter.AVPMediaComponentNumber) {
		if v, ok := diameter.AsUint32(a); ok {
			r.Flows = append(r.Flows, v)
		}
	}
	if v, ok := diameter.Uint32(req, diameter.AVPIPCANType); ok {
		r.IPCANType = int64(v)
	}
	if v, ok := diameter.Uint32(req, diameter.AVPRATType); ok {
		r.RATType = int64(v)
	}
	if a := diameter.Find(req, diameter.AVP3GPPUserLocationInfo); a != nil {
		r.UserLocationInfo, _ = diameter.AsBytes(a)
	}
	if a := diameter.Find(req, diameter.AVP3GPPMSTimeZone); a != nil {
		r.MSTimeZone, _ = diameter.AsBytes(a)
	}
	r.SGSNMCCMNC = diameter.String(req, diameter.AVP3GPPSGSNMCCMNC)
	return r
}

// Subscription-Id-Type END_USER_SIP_URI (RFC 4006 §8.47).
const subscriptionSIPURI = 2

// New builds a client; onAbort is called (on its own goroutine) with the
// Session-Id of each ASR; count (may be nil) counts results.
func New(cfg Config, onAbort func(string), count func(cmd, result string)) (*Client, error) {
	if cfg.PCRFAddr == "" || cfg.OriginHost == "" || cfg.OriginRealm == "" {
		return nil, errors.New("rx: PCRF address, origin host and realm are required")
	}
	if cfg.PCRFRealm == "" {
		cfg.PCRFRealm = cfg.OriginRealm
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if count == nil {
		count = func(string, string) {}
	}
	n, err := diameter.New(diameter.Config{
		OriginHost: cfg.OriginHost, OriginRealm: cfg.OriginRealm,
		Apps: []diameter.App{diameter.AppRx}, Logger: cfg.Logger, VendorID: diameter.Vendor3GPP,
	})
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, node: n, onAbort: onAbort, count: count, sessions: map[string]bool{}}
	n.Handle(diameter.CmdAbortSession, diameter.AppRx, c.handleASR)
	n.Handle(diameter.CmdReAuth, diameter.AppRx, c.handleRAR)
	return c, nil
}

// OnReAuth sets the function called (on its own goroutine, after the
// RAA) with what each RAR for an open session reports. Set it before
// Start.
func (c *Client) OnReAuth(f func(ReAuth)) { c.onRAR = f }

// isOpen tells whether sid is a session this client opened or restored.
func (c *Client) isOpen(sid string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions[sid]
}

// handleRAR answers a Re-Auth-Request (TS 29.214 §4.4.6.x, §5.6.3):
// RAA 2001 for an open session, whose report (ReAuth) then goes to
// OnReAuth's function; 5002 DIAMETER_UNKNOWN_SESSION_ID otherwise.
func (c *Client) handleRAR(ctx context.Context, conn *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	r := parseReAuth(req)
	if !c.isOpen(r.SessionID) {
		c.count("RAR", "unknown_session")
		return c.node.Answer(req, diameter.DiameterUnknownSessionID), nil
	}
	c.count("RAR", "received")
	if c.onRAR != nil {
		go c.onRAR(r)
	}
	return c.node.Answer(req, diameter.DiameterSuccess), nil
}

// ActionName names a Specific-Action value (TS 29.214 §5.3.13); an
// unknown one is its number.
func ActionName(a uint32) string {
	if n, ok := actionNames[a]; ok {
		return n
	}
	return strconv.Itoa(int(a))
}

// Start connects to the PCRF in the background.
func (c *Client) Start(ctx context.Context) error {
	p, err := c.node.Connect(context.Background(), diameter.PeerConfig{Addr: c.cfg.PCRFAddr, Host: c.cfg.PCRFHost, Realm: c.cfg.PCRFRealm})
	if err != nil {
		return err
	}
	c.peer = p
	return nil
}

// WaitOpen waits for the PCRF connection.
func (c *Client) WaitOpen(ctx context.Context) error { return c.peer.WaitOpen(ctx) }

// Ready reports whether the PCRF peer is open.
func (c *Client) Ready() bool { return c.node.Ready() }

// Close disconnects.
func (c *Client) Close(ctx context.Context) error { return c.node.Close(ctx) }

// handleASR answers an Abort-Session-Request (TS 29.214 §4.4.4, §5.6.7):
// ASA 2001 for an open session, whose release is then reported to
// onAbort; 5002 DIAMETER_UNKNOWN_SESSION_ID otherwise.
func (c *Client) handleASR(ctx context.Context, conn *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	sid := diameter.String(req, diameter.AVPSessionID)
	if !c.isOpen(sid) {
		c.count("ASR", "unknown_session")
		return c.node.Answer(req, diameter.DiameterUnknownSessionID), nil
	}
	c.count("ASR", "received")
	if c.onAbort != nil {
		go c.onAbort(sid)
	}
	return c.node.Answer(req, diameter.DiameterSuccess), nil
}

// Restore marks sids as open sessions without sending anything: the
// Session-Ids a restarted P-CSCF reloaded with its contacts. The PCRF's
// ASR and RAR for them are then answered 2001 and reported as for
// sessions opened by this process, instead of 5002.
func (c *Client) Restore(sids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sid := range sids {
		c.sessions[sid] = true
	}
}

// Session describes one SIP session for an AAR.
type Session struct {
	ICID  string // AF-Charging-Identifier
	IMPU  string // Subscription-Id (END_USER_SIP_URI)
	UEIP  net.IP // Framed-IP-Address (IPv4) or Framed-IPv6-Prefix (IPv6)
	Offer *SDP
	// Answer is the SDP answer, nil for preliminary service information
	// at the offer; the UE's side is Offer when UEOffered.
	Answer    *SDP
	UEOffered bool
}

// RejectedError is the error of an AAR whose AAA carries a result other
// than 2xxx: the PCRF refused the service information (TS 29.214 §4.4.1),
// as opposed to a transport failure or timeout (PCRF absent/unreachable).
type RejectedError struct {
	Command      string // "AAR"
	Code         uint32 // Result-Code or Experimental-Result-Code
	Experimental bool
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("rx: %s rejected by the PCRF (result %d)", e.Command, e.Code)
}

// AAR sends an initial AA-Request for s and returns its Session-Id. An
// answer other than 2xxx is a *RejectedError (the Session-Id is still
// returned; the PCRF holds no session for it); no answer is another error.
func (c *Client) AAR(ctx context.Context, s Session) (string, error) {
	return c.sendAAR(ctx, "", BuildAAR(s))
}

// AARUpdate sends an AA-Request on the existing Rx session sid with the
// service information of s, after the media of the session changed
// (re-INVITE/UPDATE offer/answer; TS 29.214 §4.4.1, TS 24.229 §5.2.7).
// Errors as AAR; a rejected update leaves sid open (the PCRF keeps the
// session: ending it is the caller's decision, with STR).
func (c *Client) AARUpdate(ctx context.Context, sid string, s Session) error {
	_, err := c.sendAAR(ctx, sid, BuildAAR(s))
	return err
}

// sendAAR sends an AAR with avps on session sid ("" for a new session)
// and returns its Session-Id.
func (c *Client) sendAAR(ctx context.Context, sid string, avps []*diam.AVP) (string, error) {
	req := c.node.NewRequest(diameter.CmdAA, diameter.AppRx, c.cfg.PCRFRealm, c.cfg.PCRFHost)
	if sid != "" {
		replaceSessionID(req, sid)
	} else {
		sid = diameter.String(req, diameter.AVPSessionID)
	}
	for _, a := range avps {
		req.AddAVP(a)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	ans, err := c.send(ctx, "AAR", req)
	if err != nil {
		c.count("AAR", "error")
		return "", fmt.Errorf("rx: AAR: %w", err)
	}
	code, exp, _ := diameter.Result(ans)
	c.count("AAR", strconv.Itoa(int(code)))
	if !diameter.IsSuccess(ans) {
		return sid, &RejectedError{Command: "AAR", Code: code, Experimental: exp}
	}
	c.mu.Lock()
	c.sessions[sid] = true
	c.mu.Unlock()
	return sid, nil
}

// send sends req and tells cfg.Latency how long its answer took.
func (c *Client) send(ctx context.Context, cmd string, req *diam.Message) (*diam.Message, error) {
	if c.cfg.Latency == nil {
		return c.node.Send(ctx, req)
	}
	t0 := time.Now()
	ans, err := c.node.Send(ctx, req)
	c.cfg.Latency(cmd, time.Since(t0))
	return ans, err
}

// STR ends the Rx session sid (Termination-Cause DIAMETER_LOGOUT, TS
// 29.214 §4.4.4). An STA other than 2xxx is an error.
func (c *Client) STR(ctx context.Context, sid string) error {
	c.mu.Lock()
	delete(c.sessions, sid)
	c.mu.Unlock()
	req := c.node.NewRequest(diameter.CmdSessionTermination, diameter.AppRx, c.cfg.PCRFRealm, c.cfg.PCRFHost)
	replaceSessionID(req, sid)
	req.AddAVP(diameter.NewAVP(diameter.AVPTerminationCause, datatype.Enumerated(diameter.TerminationDiameterLogout)))
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	ans, err := c.send(ctx, "STR", req)
	if err != nil {
		c.count("STR", "error")
		return fmt.Errorf("rx: STR: %w", err)
	}
	code, _, _ := diameter.Result(ans)
	c.count("STR", strconv.Itoa(int(code)))
	if !diameter.IsSuccess(ans) {
		return fmt.Errorf("rx: STA result %d", code)
	}
	return nil
}

// SignallingFlow is one SIP signalling flow between the UE and the
// P-CSCF (addresses and ports of both ends, transport "udp" or "tcp").
type SignallingFlow struct {
	UEIP      string
	UEPort    int
	PCSCFIP   string
	PCSCFPort int
	Transport string
}

// SignallingSession describes a registered contact for an AAR about its
// signalling flows.
type SignallingSession struct {
	IMPU  string // Subscription-Id (END_USER_SIP_URI)
	UEIP  net.IP // Framed-IP-Address (IPv4) or Framed-IPv6-Prefix (IPv6)
	Flows []SignallingFlow
}

// AF-Signalling-Protocol SIP and Flow-Usage AF_SIGNALLING (TS 29.214
// §5.3.26, §5.3.12).
const (
	signallingProtocolSIP = 1
	flowUsageAFSignalling = 2
)

// BuildSignallingAAR returns the Rx-specific AVPs of an AAR for the SIP
// signalling of a registered UE (TS 29.214 §4.4.5a): one
// Media-Component-Description with Media-Component-Number 0 and, per
// flow, a Media-Sub-Component (Flow-Number 1.., Flow-Usage AF_SIGNALLING,
// AF-Signalling-Protocol SIP) with "permit out <proto> from <P-CSCF ip>
// <port> to <UE ip> <port>" (downlink) and "permit in <proto> from <UE ip>
// <port> to <P-CSCF ip> <port>" (uplink); then the Specific-Actions of
// SubscribedActions with Required-Access-Info, Subscription-Id and
// Framed-IP-Address or, for an IPv6 UE, Framed-IPv6-Prefix.
func BuildSignallingAAR(s SignallingSession) []*diam.AVP {
	v := diameter.NewAVP
	kids := []*diam.AVP{v(diameter.AVPMediaComponentNumber, datatype.Unsigned32(0))}
	for i, f := range s.Flows {
		proto := 17
		if strings.EqualFold(f.Transport, "tcp") {
			proto = 6
		}
		ue, pc := filterAddr(f.UEIP), filterAddr(f.PCSCFIP)
		kids = append(kids, diameter.Grouped(diameter.AVPMediaSubComponent,
			v(diameter.AVPFlowNumber, datatype.Unsigned32(i+1)),
			v(diameter.AVPFlowDescription, datatype.IPFilterRule(fmt.Sprintf("permit out %d from %s %d to %s %d", proto, pc, f.PCSCFPort, ue, f.UEPort))),
			v(diameter.AVPFlowDescription, datatype.IPFilterRule(fmt.Sprintf("permit in %d from %s %d to %s %d", proto, ue, f.UEPort, pc, f.PCSCFPort))),
			v(diameter.AVPFlowUsage, datatype.Enumerated(flowUsageAFSignalling)),
			v(diameter.AVPAFSignallingProtocol, datatype.Enumerated(signallingProtocolSIP))))
	}
	out := []*diam.AVP{diameter.Grouped(diameter.AVPMediaComponentDescription, kids...)}
	out = append(out, subscriptionAVPs()...)
	if s.IMPU != "" {
		out = append(out, diameter.Grouped(diameter.AVPSubscriptionID,
			diameter.NewAVP(diameter.AVPSubscriptionIDType, datatype.Enumerated(subscriptionSIPURI)),
			diameter.NewAVP(diameter.AVPSubscriptionIDData, datatype.UTF8String(s.IMPU))))
	}
	if a := framedAddress(s.UEIP); a != nil {
		out = append(out, a)
	}
	return out
}

// framedAddress returns the AVP that carries the UE's address for the
// PCRF's session binding (TS 29.214 §5.6.1, TS 29.213 §8.2): for an IPv4
// address Framed-IP-Address (RFC 7155, 4 octets); for an IPv6 address
// Framed-IPv6-Prefix (RFC 7155, encoded as RFC 3162 §2.3: Reserved octet
// 0, Prefix-Length octet, prefix), here the UE's whole address as a /128
// prefix, as Kamailio's ims_qos sends it: the PCRF finds it within the
// /64 (or other) prefix it holds for the IP-CAN session. nil when ip is
// nil or not an address.
func framedAddress(ip net.IP) *diam.AVP {
	if ip4 := ip.To4(); ip4 != nil {
		return diameter.NewAVP(diameter.AVPFramedIPAddress, datatype.OctetString(ip4))
	}
	ip6 := ip.To16()
	if ip6 == nil {
		return nil
	}
	b := make([]byte, 2, 2+net.IPv6len)
	b[1] = 8 * net.IPv6len // Prefix-Length 128
	return diameter.NewAVP(diameter.AVPFramedIPv6Prefix, datatype.OctetString(append(b, ip6...)))
}

// filterAddr is addr as an IPFilterRule address (RFC 6733 §4.3.1:
// dotted quad or canonical IPv6 form, no brackets): IP literals are
// rewritten canonically (SDP may write 2001:DB8:0:0::7), "" becomes "any",
// anything else is left as it is.
func filterAddr(addr string) string {
	addr = strings.Trim(addr, "[]")
	if addr == "" {
		return "any"
	}
	if ip := net.ParseIP(addr); ip != nil {
		return ip.String()
	}
	return addr
}

// AARSignalling sends an AAR for the signalling flows of a registered UE
// (TS 29.214 §4.4.5a) and returns its Session-Id; errors as AAR.
func (c *Client) AARSignalling(ctx context.Context, s SignallingSession) (string, error) {
	return c.sendAAR(ctx, "", BuildSignallingAAR(s))
}

func replaceSessionID(m *diam.Message, sid string) {
	for _, a := range m.AVP {
		if diameter.AVPSessionID.Is(a) {
			a.Data = datatype.UTF8String(sid)
			m.Header.MessageLength = uint32(m.Len()) // sid may differ in length
			return
		}
	}
}

// BuildAAR returns the Rx-specific AVPs of an AAR for s: one
// Media-Component-Description per m= line of the offer/answer, then
// Subscription-Id, the UE address, the event subscription
// (SubscribedActions) and Service-Info-Status. With the answer
// (s.Answer) it is FINAL_SERVICE_INFORMATION; without it (the AAR at the
// SDP offer, TS 29.214 §4.4.1) PRELIMINARY_SERVICE_INFORMATION, built from
// the offer alone (see mediaComponent).
func BuildAAR(s Session) []*diam.AVP {
	v := diameter.NewAVP
	var out []*diam.AVP
	out = append(out, v(diameter.AVPAFApplicationIdentifier, datatype.OctetString("IMS Services")))
	if s.ICID != "" {
		out = append(out, v(diameter.AVPAFChargingIdentifier, datatype.OctetString(s.ICID)))
	}
	if s.Offer != nil {
		n := len(s.Offer.Media)
		if s.Answer != nil && len(s.Answer.Media) < n {
			n = len(s.Answer.Media)
		}
		for i := 0; i < n; i++ {
			out = append(out, mediaComponent(i, s))
		}
	}
	if s.IMPU != "" {
		out = append(out, diameter.Grouped(diameter.AVPSubscriptionID,
			diameter.NewAVP(diameter.AVPSubscriptionIDType, datatype.Enumerated(subscriptionSIPURI)),
			diameter.NewAVP(diameter.AVPSubscriptionIDData, datatype.UTF8String(s.IMPU))))
	}
	if a := framedAddress(s.UEIP); a != nil {
		out = append(out, a)
	}
	out = append(out, subscriptionAVPs()...)
	status := ServiceInfoFinal
	if s.Answer == nil {
		status = ServiceInfoPreliminary
	}
	out = append(out, v(diameter.AVPServiceInfoStatus, datatype.Enumerated(status)))
	return out
}

// Service-Info-Status values (TS 29.214 §5.3.25).
const (
	ServiceInfoFinal       = 0 // FINAL_SERVICE_INFORMATION
	ServiceInfoPreliminary = 1 // PRELIMINARY_SERVICE_INFORMATION
)

func mediaType(m string) uint32 {
	switch strings.ToLower(m) {
	case "audio":
		return diameter.MediaAudio
	case "video":
		return diameter.MediaVideo
	case "text":
		return diameter.MediaText
	case "message":
		return diameter.MediaMessage
	case "application":
		return 3
	}
	return diameter.MediaData
}

// mediaComponent builds Media-Component-Description i (TS 29.214 §5.3.16,
// derivation of TS 29.213 §6.2): Max-Requested-Bandwidth-DL from the b=AS
// of the UE's SDP (what the UE asks to receive), -UL from the remote
// side's, both in bit/s; Flow-Status from the direction attribute of the
// UE's media line; two Media-Sub-Components, RTP (flow 1, the m= ports)
// and RTCP (flow 2, the ports and addresses of a=rtcp, RFC 3605, else
// the m= ports + 1), each with a downlink filter "permit out 17
// from <remote ip> <remote port> to <UE ip> <UE port>" and an uplink one
// "permit in 17 from <UE ip> <UE port> to <remote ip> <remote port>"
// (TS 29.214 §5.3.8: "out" is downlink, "in" uplink).
//
// Without an answer (preliminary service information) the side that has
// not answered yet is "any" in the filters, both bandwidths come from the
// offer's b=AS, the UE's direction is the offer's (the UE offered) or its
// reverse (RFC 3264 §6: sendonly is answered recvonly), and there is one
// Codec-Data, the offer's.
func mediaComponent(i int, s Session) *diam.AVP {
	v := diameter.NewAVP
	ue, other := s.Offer, s.Answer
	if !s.UEOffered {
		ue, other = s.Answer, s.Offer
	}
	kids := []*diam.AVP{
		v(diameter.AVPMediaComponentNumber, datatype.Unsigned32(i+1)),
		v(diameter.AVPMediaType, datatype.Enumerated(mediaType(s.Offer.Media[i].Type))),
	}
	ul, dl := bandwidthAS(other, i), bandwidthAS(ue, i)
	if other == nil {
		ul = dl
	}
	if ue == nil {
		dl = ul
	}
	if ul > 0 {
		kids = append(kids, v(diameter.AVPMaxRequestedBandwidthUL, datatype.Unsigned32(ul*1000)))
	}
	if dl > 0 {
		kids = append(kids, v(diameter.AVPMaxRequestedBandwidthDL, datatype.Unsigned32(dl*1000)))
	}
	kids = append(kids, v(diameter.AVPFlowStatus, datatype.Enumerated(flowStatus(ue, other, i))))
	offer, answer := "uplink\noffer\n", "downlink\nanswer\n"
	if !s.UEOffered {
		offer, answer = "downlink\noffer\n", "uplink\nanswer\n"
	}
	kids = append(kids, v(diameter.AVPCodecData, datatype.OctetString(offer+s.Offer.Media[i].Text())))
	if s.Answer != nil {
		kids = append(kids, v(diameter.AVPCodecData, datatype.OctetString(answer+s.Answer.Media[i].Text())))
	}
	uRTP, uRTCP := endpoints(ue, i)
	oRTP, oRTCP := endpoints(other, i)
	for f, ends := range [][2]endpoint{{uRTP, oRTP}, {uRTCP, oRTCP}} {
		u, o := ends[0], ends[1]
		sub := []*diam.AVP{
			v(diameter.AVPFlowNumber, datatype.Unsigned32(f+1)),
			v(diameter.AVPFlowDescription, datatype.IPFilterRule(fmt.Sprintf("permit out 17 from %s to %s", o, u))),
			v(diameter.AVPFlowDescription, datatype.IPFilterRule(fmt.Sprintf("permit in 17 from %s to %s", u, o))),
		}
		if f == 1 {
			sub = append(sub, v(diameter.AVPFlowUsage, datatype.Enumerated(1))) // RTCP
		}
		kids = append(kids, diameter.Grouped(diameter.AVPMediaSubComponent, sub...))
	}
	return diameter.Grouped(diameter.AVPMediaComponentDescription, kids...)
}

// bandwidthAS is the b=AS (kbit/s) of media i of sdp, 0 when sdp is nil
// or has none.
func bandwidthAS(sdp *SDP, i int) int {
	if sdp == nil {
		return 0
	}
	return sdp.Media[i].BandwidthAS
}

// flowStatus is the Flow-Status of media i (TS 29.213 §6.2): from the
// direction of the UE's media line (ue), or without it (no answer from
// the UE yet) from the reverse of the offer's; REMOVED when a side has
// port 0.
func flowStatus(ue, other *SDP, i int) uint32 {
	var dir string
	if ue != nil {
		dir = ue.MediaDirection(i)
	} else {
		dir = map[string]string{"sendonly": "recvonly", "recvonly": "sendonly"}[other.MediaDirection(i)]
	}
	if (ue != nil && ue.Media[i].Port == 0) || (other != nil && other.Media[i].Port == 0) {
		return diameter.FlowRemoved
	}
	switch dir {
	case "sendonly":
		return diameter.FlowEnabledUplink
	case "recvonly":
		return diameter.FlowEnabledDownlink
	case "inactive":
		return diameter.FlowDisabled
	}
	return diameter.FlowEnabled
}

// endpoint is one end of a flow in an IPFilterRule: "<ip> <port>", or
// "any" when that side is not known yet.
type endpoint struct {
	ip   string
	port int
}

func (e endpoint) String() string {
	if e.ip == "any" {
		return "any"
	}
	return e.ip + " " + strconv.Itoa(e.port)
}

// endpoints returns the RTP and RTCP ends of media i of sdp ("any" for a
// nil sdp).
func endpoints(sdp *SDP, i int) (rtp, rtcp endpoint) {
	if sdp == nil {
		return endpoint{ip: "any"}, endpoint{ip: "any"}
	}
	port, addr := sdp.RTCP(i)
	return endpoint{filterAddr(sdp.MediaAddr(i)), sdp.Media[i].Port}, endpoint{filterAddr(addr), port}
}
