package diamtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
)

const (
	realm    = "ims.mnc001.mcc001.3gppnetwork.org"
	hssHost  = "hss." + realm
	cscfHost = "scscf." + realm
	pcrfHost = "pcrf." + realm
	impu     = "sip:alice@" + realm
	impi     = "alice@" + realm
	server   = "sip:scscf." + realm + ":5080"
)

func node(t testing.TB, host string) *diameter.Node {
	t.Helper()
	n, err := diameter.New(diameter.Config{OriginHost: host, OriginRealm: realm,
		Apps: []diameter.App{diameter.AppCx, diameter.AppSh, diameter.AppRx}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func avp(id diameter.AVPCode, d datatype.Type) *diam.AVP { return diameter.NewAVP(id, d) }
func grp(id diameter.AVPCode, kids ...*diam.AVP) *diam.AVP {
	return diameter.Grouped(id, kids...)
}
func u32v(v uint32) datatype.Unsigned32        { return datatype.Unsigned32(v) }
func enum(v uint32) datatype.Enumerated        { return datatype.Enumerated(v) }
func utf(s string) datatype.UTF8String         { return datatype.UTF8String(s) }
func oct(s string) datatype.OctetString        { return datatype.OctetString(s) }
func ident(s string) datatype.DiameterIdentity { return datatype.DiameterIdentity(s) }

func wire(t testing.TB, m *diam.Message) []byte {
	t.Helper()
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goodMessages builds one conformant message of every command in the
// tables, each with as many of its AVPs as is practical, the way our code
// builds them (diameter.Node's NewRequest/Answer and NewAVP).
func goodMessages(t testing.TB) map[string][]byte {
	t.Helper()
	cscf, hss, pcrf := node(t, cscfHost), node(t, hssHost), node(t, pcrfHost)
	out := map[string][]byte{}
	add := func(name string, m *diam.Message) { out[name] = wire(t, m) }

	// Base protocol.
	cer := diam.NewMessage(diameter.CmdCapabilitiesExchange, diam.RequestFlag, 0, 1, 2, nil)
	cer.AddAVP(avp(diameter.AVPOriginHost, ident(cscfHost)))
	cer.AddAVP(avp(diameter.AVPOriginRealm, ident(realm)))
	cer.AddAVP(avp(diameter.AVPHostIPAddress, datatype.Address(net.IPv4(127, 0, 0, 1).To4())))
	cer.AddAVP(avp(diameter.AVPHostIPAddress, datatype.Address(net.ParseIP("::1"))))
	cer.AddAVP(avp(diameter.AVPVendorID, u32v(0)))
	cer.AddAVP(avp(diameter.AVPProductName, utf("imscore")))
	cer.AddAVP(avp(diameter.AVPOriginStateID, u32v(7)))
	cer.AddAVP(avp(diameter.AVPSupportedVendorID, u32v(diameter.Vendor3GPP)))
	cer.AddAVP(diameter.VendorSpecificAppID(diameter.AppCx))
	cer.AddAVP(avp(diameter.AVPAuthApplicationID, u32v(uint32(diameter.AppRx))))
	cer.AddAVP(avp(diameter.AVPFirmwareRevision, u32v(1)))
	add("CER", cer)
	cea := diam.NewMessage(diameter.CmdCapabilitiesExchange, 0, 0, 1, 2, nil)
	cea.AddAVP(avp(diameter.AVPResultCode, u32v(diameter.DiameterSuccess)))
	for _, a := range cer.AVP {
		cea.AddAVP(a)
	}
	add("CEA", cea)
	dwr := diam.NewMessage(diameter.CmdDeviceWatchdog, diam.RequestFlag, 0, 3, 4, nil)
	dwr.AddAVP(avp(diameter.AVPOriginHost, ident(cscfHost)))
	dwr.AddAVP(avp(diameter.AVPOriginRealm, ident(realm)))
	dwr.AddAVP(avp(diameter.AVPOriginStateID, u32v(7)))
	add("DWR", dwr)
	dwa := hss.Answer(dwr, diameter.DiameterSuccess)
	dwa.AddAVP(avp(diameter.AVPOriginStateID, u32v(9)))
	add("DWA", dwa)
	dpr := diam.NewMessage(diameter.CmdDisconnectPeer, diam.RequestFlag, 0, 5, 6, nil)
	dpr.AddAVP(avp(diameter.AVPOriginHost, ident(cscfHost)))
	dpr.AddAVP(avp(diameter.AVPOriginRealm, ident(realm)))
	dpr.AddAVP(avp(diameter.AVPDisconnectCause, enum(diameter.DisconnectRebooting)))
	add("DPR", dpr)
	add("DPA", hss.Answer(dpr, diameter.DiameterSuccess))

	// Cx.
	uar := cscf.NewRequest(diameter.CmdUserAuthorization, diameter.AppCx, realm, hssHost)
	uar.AddAVP(avp(diameter.AVPUserName, utf(impi)))
	uar.AddAVP(avp(diameter.AVPPublicIdentity, utf(impu)))
	uar.AddAVP(avp(diameter.AVPVisitedNetworkIdentifier, oct(realm)))
	uar.AddAVP(avp(diameter.AVPUserAuthorizationType, enum(diameter.UATRegistrationAndCapabilities)))
	uar.AddAVP(avp(diameter.AVPUARFlags, u32v(0)))
	add("UAR", uar)
	uaa := hss.AnswerExperimental(uar, diameter.DiameterFirstRegistration)
	uaa.AddAVP(grp(diameter.AVPServerCapabilities,
		avp(diameter.AVPMandatoryCapability, u32v(1)), avp(diameter.AVPOptionalCapability, u32v(2)),
		avp(diameter.AVPOptionalCapability, u32v(3)), avp(diameter.AVPServerName, utf(server))))
	uaa.AddAVP(grp(diameter.AVPSupportedFeatures, avp(diameter.AVPVendorID, u32v(diameter.Vendor3GPP)),
		avp(diameter.AVPFeatureListID, u32v(1)), avp(diameter.AVPFeatureList, u32v(1))))
	add("UAA", uaa)

	mar := cscf.NewRequest(diameter.CmdMultimediaAuth, diameter.AppCx, realm, "")
	mar.AddAVP(avp(diameter.AVPUserName, utf(impi)))
	mar.AddAVP(avp(diameter.AVPPublicIdentity, utf(impu)))
	mar.AddAVP(grp(diameter.AVPSIPAuthDataItem, avp(diameter.AVPSIPAuthenticationScheme, utf("Digest-AKAv1-MD5")),
		avp(diameter.AVPSIPAuthorization, oct(strings.Repeat("\x01", 30)))))
	mar.AddAVP(avp(diameter.AVPSIPNumberAuthItems, u32v(1)))
	mar.AddAVP(avp(diameter.AVPServerName, utf(server)))
	add("MAR", mar)
	maa := hss.Answer(mar, diameter.DiameterSuccess)
	maa.AddAVP(avp(diameter.AVPUserName, utf(impi)))
	maa.AddAVP(avp(diameter.AVPPublicIdentity, utf(impu)))
	maa.AddAVP(avp(diameter.AVPSIPNumberAuthItems, u32v(2)))
	maa.AddAVP(grp(diameter.AVPSIPAuthDataItem,
		avp(diameter.AVPSIPItemNumber, u32v(1)),
		avp(diameter.AVPSIPAuthenticationScheme, utf("Digest-AKAv1-MD5")),
		avp(diameter.AVPSIPAuthenticate, oct(strings.Repeat("\x02", 32))),
		avp(diameter.AVPSIPAuthorization, oct(strings.Repeat("\x03", 8))),
		avp(diameter.AVPConfidentialityKey, oct(strings.Repeat("\x04", 16))),
		avp(diameter.AVPIntegrityKey, oct(strings.Repeat("\x05", 16))),
		avp(diameter.AVPFramedIPAddress, oct("\x0a\x00\x00\x01")),
		avp(diameter.AVPLineIdentifier, oct("line-1"))))
	maa.AddAVP(grp(diameter.AVPSIPAuthDataItem,
		avp(diameter.AVPSIPItemNumber, u32v(2)),
		avp(diameter.AVPSIPAuthenticationScheme, utf("SIP Digest")),
		grp(diameter.AVPSIPDigestAuthenticate, avp(diameter.AVPDigestRealm, utf(realm)),
			avp(diameter.AVPDigestAlgorithm, utf("MD5")), avp(diameter.AVPDigestQoP, utf("auth")),
			avp(diameter.AVPDigestHA1, utf("0123456789abcdef0123456789abcdef")))))
	add("MAA", maa)

	sar := cscf.NewRequest(diameter.CmdServerAssignment, diameter.AppCx, realm, hssHost)
	sar.AddAVP(avp(diameter.AVPUserName, utf(impi)))
	sar.AddAVP(avp(diameter.AVPPublicIdentity, utf(impu)))
	sar.AddAVP(avp(diameter.AVPPublicIdentity, utf("tel:+15550001")))
	sar.AddAVP(avp(diameter.AVPServerName, utf(server)))
	sar.AddAVP(avp(diameter.AVPServerAssignmentType, enum(diameter.SATRegistration)))
	sar.AddAVP(avp(diameter.AVPUserDataAlreadyAvailable, enum(diameter.UserDataNotAvailable)))
	sar.AddAVP(avp(diameter.AVPMultipleRegistrationIndication, enum(0)))
	sar.AddAVP(avp(diameter.AVPSARFlags, u32v(0)))
	add("SAR", sar)
	saa := hss.Answer(sar, diameter.DiameterSuccess)
	saa.AddAVP(avp(diameter.AVPUserName, utf(impi)))
	saa.AddAVP(avp(diameter.AVPUserData, oct("<?xml version=\"1.0\"?><IMSSubscription/>")))
	saa.AddAVP(grp(diameter.AVPChargingInformation,
		avp(diameter.AVPPrimaryEventChargingFunctionName, datatype.DiameterURI("aaa://ecf1."+realm)),
		avp(diameter.AVPSecondaryEventChargingFunctionName, datatype.DiameterURI("aaa://ecf2."+realm)),
		avp(diameter.AVPPrimaryChargingCollectionFunctionName, datatype.DiameterURI("aaa://ccf1."+realm)),
		avp(diameter.AVPSecondaryChargingCollectionFunctionName, datatype.DiameterURI("aaa://ccf2."+realm))))
	saa.AddAVP(grp(diameter.AVPAssociatedIdentities, avp(diameter.AVPUserName, utf(impi)), avp(diameter.AVPUserName, utf("bob@"+realm))))
	saa.AddAVP(grp(diameter.AVPAssociatedRegisteredIdentities, avp(diameter.AVPUserName, utf(impi))))
	saa.AddAVP(avp(diameter.AVPLooseRouteIndication, enum(0)))
	saa.AddAVP(avp(diameter.AVPPriviledgedSenderIndication, enum(0)))
	add("SAA", saa)

	lir := cscf.NewRequest(diameter.CmdLocationInfo, diameter.AppCx, realm, "")
	lir.AddAVP(avp(diameter.AVPOriginatingRequest, enum(diameter.OriginatingRequestOriginating)))
	lir.AddAVP(avp(diameter.AVPPublicIdentity, utf(impu)))
	lir.AddAVP(avp(diameter.AVPUserAuthorizationType, enum(0)))
	lir.AddAVP(avp(diameter.AVPSessionPriority, enum(0)))
	add("LIR", lir)
	lia := hss.AnswerExperimental(lir, diameter.DiameterUnregisteredService)
	lia.AddAVP(avp(diameter.AVPServerName, utf(server)))
	lia.AddAVP(avp(diameter.AVPWildcardedPublicIdentity, utf("sip:!.*!@"+realm)))
	lia.AddAVP(avp(diameter.AVPLIAFlags, u32v(1)))
	add("LIA", lia)

	rtr := hss.NewRequest(diameter.CmdRegistrationTermination, diameter.AppCx, realm, cscfHost)
	rtr.AddAVP(avp(diameter.AVPUserName, utf(impi)))
	rtr.AddAVP(grp(diameter.AVPAssociatedIdentities, avp(diameter.AVPUserName, utf(impi))))
	rtr.AddAVP(avp(diameter.AVPPublicIdentity, utf(impu)))
	rtr.AddAVP(grp(diameter.AVPDeregistrationReason, avp(diameter.AVPReasonCode, enum(diameter.ReasonPermanentTermination)),
		avp(diameter.AVPReasonInfo, utf("administrative"))))
	rtr.AddAVP(avp(diameter.AVPRTRFlags, u32v(0)))
	add("RTR", rtr)
	rta := cscf.Answer(rtr, diameter.DiameterSuccess)
	rta.AddAVP(grp(diameter.AVPIdentityWithEmergencyRegistration, avp(diameter.AVPUserName, utf(impi)), avp(diameter.AVPPublicIdentity, utf(impu))))
	add("RTA", rta)

	ppr := hss.NewRequest(diameter.CmdPushProfile, diameter.AppCx, realm, cscfHost)
	ppr.AddAVP(avp(diameter.AVPUserName, utf(impi)))
	ppr.AddAVP(avp(diameter.AVPUserData, oct("<IMSSubscription/>")))
	ppr.AddAVP(grp(diameter.AVPAllowedWAFWWSFIdentities, avp(diameter.AVPWebRTCAuthenticationFunctionName, utf("waf"))))
	add("PPR", ppr)
	add("PPA", cscf.Answer(ppr, diameter.DiameterSuccess))

	// Sh.
	udr := cscf.NewRequest(diameter.CmdUserData, diameter.AppSh, realm, "")
	udr.AddAVP(grp(diameter.AVPUserIdentity, avp(diameter.AVPPublicIdentity, utf(impu))))
	udr.AddAVP(avp(diameter.AVPServiceIndication, oct("svc")))
	udr.AddAVP(avp(diameter.AVPDataReference, enum(diameter.DataRefRepositoryData)))
	udr.AddAVP(avp(diameter.AVPDataReference, enum(diameter.DataRefIMSUserState)))
	udr.AddAVP(avp(diameter.AVPIdentitySet, enum(0)))
	udr.AddAVP(avp(diameter.AVPRequestedDomain, enum(0)))
	udr.AddAVP(avp(diameter.AVPUDRFlags, u32v(0)))
	udr.AddAVP(grp(diameter.AVPCallReferenceInfo, avp(diameter.AVPCallReferenceNumber, oct("1")), avp(diameter.AVPASNumber, oct("2"))))
	add("UDR", udr)
	uda := hss.Answer(udr, diameter.DiameterSuccess)
	uda.AddAVP(avp(diameter.AVPShUserData, oct("<Sh-Data/>")))
	add("UDA", uda)
	pur := cscf.NewRequest(diameter.CmdProfileUpdate, diameter.AppSh, realm, hssHost)
	pur.AddAVP(grp(diameter.AVPUserIdentity, avp(diameter.AVPMSISDN, oct("\x51\x55\x00\x10"))))
	pur.AddAVP(avp(diameter.AVPDataReference, enum(diameter.DataRefRepositoryData)))
	pur.AddAVP(avp(diameter.AVPShUserData, oct("<Sh-Data/>")))
	add("PUR", pur)
	pua := hss.Answer(pur, diameter.DiameterSuccess)
	pua.AddAVP(grp(diameter.AVPRepositoryDataID, avp(diameter.AVPServiceIndication, oct("svc")), avp(diameter.AVPSequenceNumber, u32v(3))))
	pua.AddAVP(avp(diameter.AVPDataReference, enum(diameter.DataRefRepositoryData)))
	add("PUA", pua)
	snr := cscf.NewRequest(diameter.CmdSubscribeNotifications, diameter.AppSh, realm, "")
	snr.AddAVP(grp(diameter.AVPUserIdentity, avp(diameter.AVPPublicIdentity, utf(impu))))
	snr.AddAVP(avp(diameter.AVPSendDataIndication, enum(1)))
	snr.AddAVP(avp(diameter.AVPSubsReqType, enum(0)))
	snr.AddAVP(avp(diameter.AVPDataReference, enum(diameter.DataRefIMSUserState)))
	snr.AddAVP(avp(diameter.AVPExpiryTime, datatype.Time(time.Unix(1900000000, 0))))
	snr.AddAVP(avp(diameter.AVPOneTimeNotification, enum(0)))
	add("SNR", snr)
	sna := hss.AnswerExperimental(snr, diameter.DiameterErrorUserUnknown)
	sna.AddAVP(avp(diameter.AVPExpiryTime, datatype.Time(time.Unix(1900000000, 0))))
	add("SNA", sna)
	pnr := hss.NewRequest(diameter.CmdPushNotification, diameter.AppSh, realm, cscfHost)
	pnr.AddAVP(grp(diameter.AVPUserIdentity, avp(diameter.AVPPublicIdentity, utf(impu))))
	pnr.AddAVP(avp(diameter.AVPShUserData, oct("<Sh-Data/>")))
	add("PNR", pnr)
	add("PNA", cscf.Answer(pnr, diameter.DiameterSuccess))

	// Rx.
	aar := cscf.NewRequest(diameter.CmdAA, diameter.AppRx, realm, "")
	aar.AddAVP(avp(diameter.AVPAFApplicationIdentifier, oct("IMS Services")))
	aar.AddAVP(grp(diameter.AVPMediaComponentDescription,
		avp(diameter.AVPMediaComponentNumber, u32v(1)),
		grp(diameter.AVPMediaSubComponent, avp(diameter.AVPFlowNumber, u32v(1)),
			avp(diameter.AVPFlowDescription, datatype.IPFilterRule("permit out 17 from 10.0.0.1 4000 to 10.0.0.2 5000")),
			avp(diameter.AVPFlowDescription, datatype.IPFilterRule("permit in 17 from 10.0.0.2 5000 to 10.0.0.1 4000")),
			avp(diameter.AVPFlowUsage, enum(0)), avp(diameter.AVPFlowStatus, enum(diameter.FlowEnabled)),
			avp(diameter.AVPAFSignallingProtocol, enum(1))),
		avp(diameter.AVPMediaType, enum(diameter.MediaAudio)),
		avp(diameter.AVPMaxRequestedBandwidthUL, u32v(64000)), avp(diameter.AVPMaxRequestedBandwidthDL, u32v(64000)),
		avp(diameter.AVPMinRequestedBandwidthUL, u32v(8000)),
		avp(diameter.AVPFlowStatus, enum(diameter.FlowEnabled)),
		avp(diameter.AVPReservationPriority, enum(0)),
		avp(diameter.AVPRRBandwidth, u32v(0)), avp(diameter.AVPRSBandwidth, u32v(0)),
		avp(diameter.AVPCodecData, oct("uplink\noffer\nm=audio 4000 RTP/AVP 0\n")),
		avp(diameter.AVPCodecData, oct("downlink\nanswer\nm=audio 5000 RTP/AVP 0\n")),
		avp(diameter.AVPContentVersion, datatype.Unsigned64(1))))
	aar.AddAVP(avp(diameter.AVPServiceInfoStatus, enum(0)))
	aar.AddAVP(avp(diameter.AVPAFChargingIdentifier, oct("icid-1")))
	aar.AddAVP(avp(diameter.AVPSIPForkingIndication, enum(0)))
	aar.AddAVP(avp(diameter.AVPSpecificAction, enum(1)))
	aar.AddAVP(avp(diameter.AVPSpecificAction, enum(2)))
	aar.AddAVP(grp(diameter.AVPSubscriptionID, avp(diameter.AVPSubscriptionIDType, enum(2)), avp(diameter.AVPSubscriptionIDData, utf(impu))))
	aar.AddAVP(avp(diameter.AVPFramedIPAddress, oct("\x0a\x00\x00\x01")))
	aar.AddAVP(avp(diameter.AVPCalledStationID, utf("ims")))
	aar.AddAVP(avp(diameter.AVPServiceURN, oct("sos")))
	aar.AddAVP(avp(diameter.AVPRxRequestType, enum(diameter.RxRequestInitial)))
	aar.AddAVP(avp(diameter.AVPRequiredAccessInfo, enum(0)))
	aar.AddAVP(avp(diameter.AVPIPDomainID, oct("dom")))
	aar.AddAVP(avp(diameter.AVPAuthSessionState, enum(diameter.StateMaintained)))
	add("AAR", aar)
	aaa := pcrf.Answer(aar, diameter.DiameterSuccess)
	aaa.AddAVP(avp(diameter.AVPAuthApplicationID, u32v(uint32(diameter.AppRx))))
	aaa.AddAVP(grp(diameter.AVPAccessNetworkChargingIdentifier, avp(diameter.AVPAccessNetworkChargingIdentifierValue, oct("x")),
		grp(diameter.AVPFlows, avp(diameter.AVPMediaComponentNumber, u32v(1)), avp(diameter.AVPFlowNumber, u32v(1)))))
	aaa.AddAVP(avp(diameter.AVPAccessNetworkChargingAddress, datatype.Address(net.IPv4(10, 0, 0, 9).To4())))
	aaa.AddAVP(grp(diameter.AVPAcceptableServiceInfo, avp(diameter.AVPMaxRequestedBandwidthDL, u32v(1))))
	aaa.AddAVP(avp(diameter.AVPANGWAddress, datatype.Address(net.IPv4(10, 0, 0, 8).To4())))
	aaa.AddAVP(avp(diameter.AVPIPCANType, enum(5)))
	aaa.AddAVP(avp(diameter.AVPRATType, enum(1004)))
	aaa.AddAVP(avp(diameter.AVP3GPPSGSNMCCMNC, utf("00101")))
	aaa.AddAVP(avp(diameter.AVPRetryInterval, u32v(5)))
	aaa.AddAVP(avp(diameter.AVPClass, oct("c")))
	add("AAA", aaa)
	rar := pcrf.NewRequest(diameter.CmdReAuth, diameter.AppRx, realm, cscfHost)
	rar.AddAVP(avp(diameter.AVPSpecificAction, enum(2)))
	rar.AddAVP(avp(diameter.AVPAbortCause, enum(diameter.AbortBearerReleased)))
	rar.AddAVP(avp(diameter.AVP3GPPUserLocationInfo, oct("\x82\x00\xf1\x10")))
	rar.AddAVP(avp(diameter.AVP3GPPMSTimeZone, oct("\x40\x00")))
	rar.AddAVP(avp(diameter.AVPReAuthRequestType, enum(0)))
	add("RAR", rar)
	raa := cscf.Answer(rar, diameter.DiameterSuccess)
	raa.AddAVP(avp(diameter.AVPServiceURN, oct("sos")))
	add("RAA", raa)
	str := cscf.NewRequest(diameter.CmdSessionTermination, diameter.AppRx, realm, "")
	str.AddAVP(avp(diameter.AVPTerminationCause, enum(diameter.TerminationDiameterLogout)))
	str.AddAVP(avp(diameter.AVPRequiredAccessInfo, enum(0)))
	add("STR", str)
	sta := pcrf.Answer(str, diameter.DiameterSuccess)
	sta.AddAVP(avp(diameter.AVP3GPPUserLocationInfo, oct("\x82\x00\xf1\x10")))
	add("STA", sta)
	asr := pcrf.NewRequest(diameter.CmdAbortSession, diameter.AppRx, realm, cscfHost)
	asr.AddAVP(avp(diameter.AVPAbortCause, enum(diameter.AbortBearerReleased)))
	add("ASR", asr)
	add("ASA", cscf.Answer(asr, diameter.DiameterSuccess))
	return out
}

func TestSpecTablesParse(t *testing.T) {
	s := TheSpec()
	for _, c := range []string{"CER", "CEA", "DWR", "DWA", "DPR", "DPA",
		"UAR", "UAA", "MAR", "MAA", "SAR", "SAA", "LIR", "LIA", "RTR", "RTA", "PPR", "PPA",
		"UDR", "UDA", "PUR", "PUA", "SNR", "SNA", "PNR", "PNA",
		"AAR", "AAA", "STR", "STA", "ASR", "ASA", "RAR", "RAA"} {
		f, ok := s.Command(c)
		if !ok {
			t.Errorf("command %s missing from the tables", c)
			continue
		}
		if f.Request != (c[2] == 'R') {
			t.Errorf("%s: Request=%v", c, f.Request)
		}
		if f.App != appBase {
			if r, ok := f.Rule(diameter.AVPSessionID); !ok || !r.Fixed || f.Rules[0].AVP != diameter.AVPSessionID {
				t.Errorf("%s: Session-Id is not the fixed first AVP", c)
			}
		}
	}
	if r, _ := s.AnswerMessage.Rule(diameter.AVPSessionID); r.Min != 0 || r.Max != 1 || !r.Fixed {
		t.Errorf("answer-message Session-Id rule %+v, want 0*1 < >", r)
	}
	if f, _ := s.Command("CER"); func() bool { r, _ := f.Rule(diameter.AVPHostIPAddress); return r.Min != 1 || r.Max != 0 }() {
		t.Errorf("CER 1* { Host-IP-Address } parsed wrongly")
	}
	if f, _ := s.Command("RAR"); func() bool { r, _ := f.Rule(diameter.AVPSpecificAction); return r.Min != 1 || r.Max != 0 }() {
		t.Errorf("RAR *{ Specific-Action } parsed wrongly")
	}
	if f, _ := s.Command("AAA"); func() bool { r, _ := f.Rule(diameter.AVPANGWAddress); return r.Min != 0 || r.Max != 2 }() {
		t.Errorf("AAA 0*2[ AN-GW-Address ] parsed wrongly")
	}
	if f, _ := s.Command("UDA"); func() bool { _, ok := f.Rule(diameter.AVPShUserData); return !ok }() {
		t.Errorf("UDA's User-Data is not Sh's 702")
	}
	if f, _ := s.Command("SAA"); func() bool { _, ok := f.Rule(diameter.AVPUserData); return !ok }() {
		t.Errorf("SAA's User-Data is not Cx's 606")
	}
	if g := s.Grouped[diameter.AVPVendorSpecificApplicationID]; g == nil || g.AnyAVP {
		t.Errorf("Vendor-Specific-Application-Id format %+v", g)
	}
}

func TestGoodMessagesConform(t *testing.T) {
	msgs := goodMessages(t)
	if n := len(TheSpec().Commands); len(msgs) != n {
		t.Errorf("%d good messages for %d commands", len(msgs), n)
	}
	for name, w := range msgs {
		if got := CommandName(w); got != name {
			t.Errorf("%s: CommandName %q", name, got)
		}
		if vs := Check(w); len(vs) != 0 {
			t.Errorf("%s: unexpected violations:\n%s\n%s", name, joinV(vs), Dump(w))
		}
	}
}

func joinV(vs []Violation) string {
	var s []string
	for _, v := range vs {
		s = append(s, "  "+v.String())
	}
	return strings.Join(s, "\n")
}

// tree is a message split into its header and AVP tree, for mutation.
type tree struct {
	hdr  []byte
	avps []*rawAVP
}

func split(t testing.TB, w []byte) *tree {
	t.Helper()
	avps, err := parseAVPs(w[20:])
	if err != nil {
		t.Fatal(err)
	}
	var expand func([]*rawAVP)
	expand = func(list []*rawAVP) {
		for _, a := range list {
			if d, ok := TheSpec().AVPs[a.id()]; ok && d.Type == Grouped {
				kids, err := parseAVPs(a.Data)
				if err != nil {
					t.Fatal(err)
				}
				a.Kids = kids
				expand(kids)
			}
		}
	}
	expand(avps)
	return &tree{hdr: append([]byte(nil), w[:20]...), avps: avps}
}

func (tr *tree) bytes() []byte {
	body := encodeAVPs(tr.avps)
	out := append(append([]byte(nil), tr.hdr...), body...)
	l := uint32(len(out))
	out[1], out[2], out[3] = byte(l>>16), byte(l>>8), byte(l)
	return out
}

func (tr *tree) clone(t testing.TB) *tree { return split(t, tr.bytes()) }

// each visits every AVP of the tree (not inside Failed-AVP) with its
// index path.
func (tr *tree) each(f func(path []int, a *rawAVP)) {
	var walk func(prefix []int, list []*rawAVP)
	walk = func(prefix []int, list []*rawAVP) {
		for i, a := range list {
			p := append(append([]int(nil), prefix...), i)
			f(p, a)
			if a.id() != diameter.AVPFailedAVP {
				walk(p, a.Kids)
			}
		}
	}
	walk(nil, tr.avps)
}

func (tr *tree) at(path []int) *rawAVP {
	list := tr.avps
	var a *rawAVP
	for _, i := range path {
		a = list[i]
		list = a.Kids
	}
	return a
}

// TestEveryAVPFlagOrVendorChangeIsReported changes, in every good message,
// each AVP's V bit (adding or removing the Vendor-Id), its Vendor-Id, its
// M bit (where the table has a rule for it), its P bit and, for fixed-size
// types, its length, one at a time, and requires a violation for each.
func TestEveryAVPFlagOrVendorChangeIsReported(t *testing.T) {
	s := TheSpec()
	total := 0
	for name, w := range goodMessages(t) {
		base := split(t, w)
		base.each(func(path []int, orig *rawAVP) {
			d := s.AVPs[orig.id()]
			type mutation struct {
				what string
				f    func(a *rawAVP)
			}
			muts := []mutation{
				{"flip V", func(a *rawAVP) {
					if a.Flags&avpV != 0 {
						a.Flags &^= avpV
						a.Vendor = 0
					} else {
						a.Flags |= avpV
						a.Vendor = diameter.Vendor3GPP
					}
				}},
				{"set P", func(a *rawAVP) { a.Flags |= avpP }},
				{"set a reserved bit", func(a *rawAVP) { a.Flags |= 0x01 }},
			}
			if orig.Flags&avpV != 0 {
				muts = append(muts, mutation{"change Vendor-Id", func(a *rawAVP) { a.Vendor++ }})
			} else {
				muts = append(muts, mutation{"add a Vendor-Id without V", nil}) // placeholder, skipped below
			}
			if d.M != May {
				muts = append(muts, mutation{"flip M", func(a *rawAVP) { a.Flags ^= avpM }})
			}
			switch d.Type {
			case Unsigned32, Integer32, Enumerated, Time, Unsigned64, Integer64:
				muts = append(muts, mutation{"truncate data", func(a *rawAVP) { a.Data = a.Data[:len(a.Data)-1] }},
					mutation{"extend data", func(a *rawAVP) { a.Data = append(append([]byte(nil), a.Data...), 0, 0, 0, 0) }})
			}
			for _, m := range muts {
				if m.f == nil {
					continue
				}
				tr := base.clone(t)
				m.f(tr.at(path))
				total++
				if vs := Check(tr.bytes()); len(vs) == 0 {
					t.Errorf("%s: %s of %s at %v: no violation reported\n%s", name, m.what, d, path, Dump(tr.bytes()))
				}
			}
		})
	}
	if total < 500 {
		t.Errorf("only %d mutations tried", total)
	}
	t.Logf("%d single-AVP mutations, each reported", total)
}

// find the index of the first top-level AVP id.
func (tr *tree) index(id diameter.AVPCode) int {
	for i, a := range tr.avps {
		if a.id() == id {
			return i
		}
	}
	return -1
}

func (tr *tree) remove(id diameter.AVPCode) {
	if i := tr.index(id); i >= 0 {
		tr.avps = append(tr.avps[:i], tr.avps[i+1:]...)
	}
}

func u32bytes(v uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return b[:]
}

// TestMutationsReported makes one named mistake at a time in a good
// message and requires the check that names it.
func TestMutationsReported(t *testing.T) {
	good := goodMessages(t)
	cases := []struct {
		msg, name, check string
		mutate           func(t *testing.T, tr *tree)
	}{
		{"UAR", "V bit cleared on Public-Identity", "avp-vendor", func(t *testing.T, tr *tree) {
			a := tr.avps[tr.index(diameter.AVPPublicIdentity)]
			a.Flags &^= avpV
		}},
		{"MAA", "User-Name with a 3GPP Vendor-Id", "avp-vendor", func(t *testing.T, tr *tree) {
			a := tr.avps[tr.index(diameter.AVPUserName)]
			a.Flags |= avpV
			a.Vendor = diameter.Vendor3GPP
		}},
		{"UAR", "M bit cleared on Public-Identity", "avp-m-bit", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPPublicIdentity)].Flags &^= avpM
		}},
		{"UAR", "M bit set on UAR-Flags (Rel-6+ AVP)", "avp-m-bit", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPUARFlags)].Flags |= avpM
		}},
		{"CER", "M bit set on Product-Name", "avp-m-bit", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPProductName)].Flags |= avpM
		}},
		{"LIR", "Public-Identity with the ETSI vendor", "avp-vendor", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPPublicIdentity)].Vendor = diameter.VendorETSI
		}},
		{"UAR", "required Visited-Network-Identifier dropped", "missing", func(t *testing.T, tr *tree) {
			tr.remove(diameter.AVPVisitedNetworkIdentifier)
		}},
		{"UAR", "Vendor-Specific-Application-Id dropped", "missing", func(t *testing.T, tr *tree) {
			tr.remove(diameter.AVPVendorSpecificApplicationID)
		}},
		{"RTR", "Destination-Host dropped", "missing", func(t *testing.T, tr *tree) {
			tr.remove(diameter.AVPDestinationHost)
		}},
		{"UAR", "User-Name duplicated (max 1)", "too-many", func(t *testing.T, tr *tree) {
			tr.avps = append(tr.avps, tr.avps[tr.index(diameter.AVPUserName)])
		}},
		{"MAR", "SIP-Auth-Data-Item duplicated (max 1 in MAR)", "too-many", func(t *testing.T, tr *tree) {
			tr.avps = append(tr.avps, tr.avps[tr.index(diameter.AVPSIPAuthDataItem)])
		}},
		{"UAR", "Session-Id moved to second place", "fixed-position", func(t *testing.T, tr *tree) {
			tr.avps[0], tr.avps[1] = tr.avps[1], tr.avps[0]
		}},
		{"UAR", "Session-Id missing", "missing", func(t *testing.T, tr *tree) { tr.remove(diameter.AVPSessionID) }},
		{"UAR", "Auth-Session-State STATE_MAINTAINED", "auth-session-state", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPAuthSessionState)].Data = u32bytes(0)
		}},
		{"UDR", "Vendor-Specific-Application-Id naming Cx in an Sh message", "vsai", func(t *testing.T, tr *tree) {
			v := tr.avps[tr.index(diameter.AVPVendorSpecificApplicationID)]
			for _, k := range v.Kids {
				if k.id() == diameter.AVPAuthApplicationID {
					k.Data = u32bytes(uint32(diameter.AppCx))
				}
			}
		}},
		{"SAR", "Vendor-Specific-Application-Id with Vendor-Id 0", "vsai", func(t *testing.T, tr *tree) {
			v := tr.avps[tr.index(diameter.AVPVendorSpecificApplicationID)]
			v.Kids[0].Data = u32bytes(0)
		}},
		{"SAR", "Vendor-Specific-Application-Id with an extra AVP", "not-allowed", func(t *testing.T, tr *tree) {
			v := tr.avps[tr.index(diameter.AVPVendorSpecificApplicationID)]
			v.Kids = append(v.Kids, &rawAVP{Code: 265, Flags: avpM, Data: u32bytes(10415)})
		}},
		{"AAR", "Subscription-Id with an extra AVP (no *[AVP])", "not-allowed", func(t *testing.T, tr *tree) {
			v := tr.avps[tr.index(diameter.AVPSubscriptionID)]
			v.Kids = append(v.Kids, &rawAVP{Code: 1, Flags: avpM, Data: []byte("x")})
		}},
		{"AAR", "three Codec-Data (0*2)", "too-many", func(t *testing.T, tr *tree) {
			mcd := tr.avps[tr.index(diameter.AVPMediaComponentDescription)]
			for _, k := range mcd.Kids {
				if k.id() == diameter.AVPCodecData {
					mcd.Kids = append(mcd.Kids, k)
					break
				}
			}
		}},
		{"AAR", "Auth-Application-Id of Cx", "auth-application-id", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPAuthApplicationID)].Data = u32bytes(uint32(diameter.AppCx))
		}},
		{"MAA", "Unsigned32 SIP-Number-Auth-Items of 8 bytes", "avp-data", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPSIPNumberAuthItems)].Data = make([]byte, 8)
		}},
		{"UAA", "Result-Code added next to Experimental-Result", "result", func(t *testing.T, tr *tree) {
			tr.avps = append(tr.avps, &rawAVP{Code: 268, Flags: avpM, Data: u32bytes(2001)})
		}},
		{"UAA", "Experimental-Result removed", "result", func(t *testing.T, tr *tree) { tr.remove(diameter.AVPExperimentalResult) }},
		{"UAA", "Experimental-Result with vendor 0", "experimental-result-vendor", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPExperimentalResult)].Kids[0].Data = u32bytes(0)
		}},
		{"MAA", "E bit set on a 2001 answer", "header-e-bit", func(t *testing.T, tr *tree) { tr.hdr[4] |= flagE }},
		{"DWA", "3004 without the E bit", "header-e-bit", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPResultCode)].Data = u32bytes(diameter.DiameterTooBusy)
		}},
		{"UAR", "P bit cleared on a PXY command", "header-p-bit", func(t *testing.T, tr *tree) { tr.hdr[4] &^= flagP }},
		{"CER", "P bit set on CER", "header-p-bit", func(t *testing.T, tr *tree) { tr.hdr[4] |= flagP }},
		{"UAR", "E bit set on a request", "header-e-bit", func(t *testing.T, tr *tree) { tr.hdr[4] |= flagE }},
		{"UAA", "T bit set on an answer", "header-t-bit", func(t *testing.T, tr *tree) { tr.hdr[4] |= flagT }},
		{"UAR", "version 2", "header-version", func(t *testing.T, tr *tree) { tr.hdr[0] = 2 }},
		{"UAR", "Session-Id of another host", "session-id", func(t *testing.T, tr *tree) {
			tr.avps[0].Data = []byte("other.example;1;2")
		}},
		{"UAR", "unknown AVP with the M bit", "unknown-avp", func(t *testing.T, tr *tree) {
			tr.avps = append(tr.avps, &rawAVP{Code: 9999, Flags: avpV | avpM, Vendor: 10415, Data: []byte("x")})
		}},
		{"DPR", "Origin-Host that is not an FQDN", "avp-data", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPOriginHost)].Data = []byte("bad host")
		}},
		{"SAA", "Charging-Information with a non-URI", "avp-data", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPChargingInformation)].Kids[0].Data = []byte("ecf1.example")
		}},
		{"MAA", "non-zero padding", "avp-padding", func(t *testing.T, tr *tree) {}},
		{"AAR", "Framed-IP-Address of 16 octets", "avp-data", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPFramedIPAddress)].Data = make([]byte, 16)
		}},
		{"AAR", "Framed-IPv6-Prefix with a non-zero Reserved octet", "avp-data", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPFramedIPAddress)] = &rawAVP{Code: 97, Flags: avpM, Data: append([]byte{1, 128}, make([]byte, 16)...)}
		}},
		{"AAR", "Framed-IPv6-Prefix /64 with interface bits set", "avp-data", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPFramedIPAddress)] = &rawAVP{Code: 97, Flags: avpM, Data: []byte{0, 64, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 1}}
		}},
		{"AAR", "Framed-IPv6-Prefix /128 with 8 prefix octets", "avp-data", func(t *testing.T, tr *tree) {
			tr.avps[tr.index(diameter.AVPFramedIPAddress)] = &rawAVP{Code: 97, Flags: avpM, Data: []byte{0, 128, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0}}
		}},
		{"RAR", "no Specific-Action (*{ })", "missing", func(t *testing.T, tr *tree) { tr.remove(diameter.AVPSpecificAction) }},
		{"CEA", "Vendor-Specific-Application-Id with both application ids", "vsai", func(t *testing.T, tr *tree) {
			v := tr.avps[tr.index(diameter.AVPVendorSpecificApplicationID)]
			v.Kids = append(v.Kids, &rawAVP{Code: 259, Flags: avpM, Data: u32bytes(1)})
		}},
	}
	for _, c := range cases {
		t.Run(c.msg+"/"+c.name, func(t *testing.T) {
			tr := split(t, good[c.msg])
			c.mutate(t, tr)
			w := tr.bytes()
			if c.check == "avp-padding" {
				// An OctetString whose length is not a multiple of 4:
				// SIP-Authorization of 8 bytes? Use Origin-Host instead.
				w = padWithJunk(t, w)
			}
			vs := Check(w)
			for _, v := range vs {
				if v.Check == c.check {
					return
				}
			}
			t.Errorf("no %q violation; got:\n%s\n%s", c.check, joinV(vs), Dump(w))
		})
	}
}

// padWithJunk writes 0xff into the padding of the first AVP that has any.
func padWithJunk(t *testing.T, w []byte) []byte {
	w = append([]byte(nil), w...)
	for off := 20; off < len(w); {
		l := int(binary.BigEndian.Uint32(w[off+4:]) & 0xffffff)
		padded := (l + 3) &^ 3
		if padded > l {
			w[off+l] = 0xff
			return w
		}
		off += padded
	}
	t.Fatal("no AVP with padding")
	return nil
}

func TestDumpNamesAVPs(t *testing.T) {
	d := Dump(goodMessages(t)["MAA"])
	for _, want := range []string{"MAA:", "SIP-Auth-Data-Item(612) vendor 10415 [VM-]", "    Integrity-Key(626) vendor 10415 [VM-] len 16",
		"User-Name(1) [-M-]", "Digest-HA1(121)"} {
		if !strings.Contains(d, want) {
			t.Errorf("dump lacks %q:\n%s", want, d)
		}
	}
}

func TestReport(t *testing.T) {
	good := goodMessages(t)
	tr := split(t, good["UAA"])
	tr.avps[tr.index(diameter.AVPServerCapabilities)].Flags &^= avpM
	bad := tr.bytes()
	var out bytes.Buffer
	msgs := []Observed{{Host: hssHost, Wire: good["UAA"]}, {Host: hssHost, Wire: bad}, {Host: hssHost, Wire: bad},
		{Host: cscfHost, Wire: good["UAR"]}}
	if !Report(msgs, Options{Output: &out, MaxReports: 1}, true) {
		t.Fatalf("bad UAA not reported:\n%s", out.String())
	}
	for _, want := range []string{`UAA sent by "hss.`, "Server-Capabilities(603, vendor 10415): M bit clear, must be set", "and 1 more message", "conformance FAILED"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if !Report(msgs[:1], Options{Output: &out, Expect: []string{"UAA", "RTR"}}, true) {
		t.Errorf("missing RTR not reported")
	}
	if !strings.Contains(out.String(), "never made a checked node send RTR") {
		t.Errorf("report: %s", out.String())
	}
	out.Reset()
	if Report(msgs, Options{Output: &out, Hosts: []string{cscfHost}, Expect: []string{"UAR"}}, true) {
		t.Errorf("host filter: %s", out.String())
	}
	out.Reset()
	if Report(msgs, Options{Output: &out, Skip: func(h, c string, w []byte) bool { return bytes.Equal(w, bad) }}, true) {
		t.Errorf("Skip: %s", out.String())
	}
	if Report(msgs[:1], Options{Output: &out, Expect: []string{"RTR"}}, false) {
		t.Errorf("partial run must not require expected commands")
	}
	_ = fmt.Sprint()
}

func TestCheckPair(t *testing.T) {
	good := goodMessages(t)
	for _, p := range [][2]string{{"UAR", "UAA"}, {"MAR", "MAA"}, {"RTR", "RTA"}, {"UDR", "UDA"}, {"AAR", "AAA"}, {"RAR", "RAA"}, {"DPR", "DPA"}} {
		if vs := CheckPair(good[p[0]], good[p[1]]); len(vs) != 0 {
			t.Errorf("%s/%s: %s", p[0], p[1], joinV(vs))
		}
	}
	cases := []struct {
		name, check string
		mutate      func(tr *tree)
	}{
		{"other Session-Id", "answer-session-id", func(tr *tree) { tr.avps[0].Data = []byte(cscfHost + ";1;99") }},
		{"no Session-Id", "answer-session-id", func(tr *tree) { tr.remove(diameter.AVPSessionID) }},
		{"Session-Id not first", "fixed-position", func(tr *tree) { tr.avps[0], tr.avps[1] = tr.avps[1], tr.avps[0] }},
		{"P bit cleared", "answer-header", func(tr *tree) { tr.hdr[4] &^= flagP }},
		{"other Hop-by-Hop", "answer-header", func(tr *tree) { tr.hdr[15]++ }},
		{"other application", "answer-header", func(tr *tree) { tr.hdr[11]++ }},
		{"Proxy-Info added", "answer-proxy-info", func(tr *tree) {
			tr.avps = append(tr.avps, &rawAVP{Code: 284, Flags: avpM, Kids: []*rawAVP{
				{Code: 280, Flags: avpM, Data: []byte("proxy.example")}, {Code: 33, Flags: avpM, Data: []byte("s")}}})
		}},
	}
	for _, c := range cases {
		tr := split(t, good["UAA"])
		c.mutate(tr)
		vs := CheckPair(good["UAR"], tr.bytes())
		found := false
		for _, v := range vs {
			found = found || v.Check == c.check
		}
		if !found {
			t.Errorf("%s: no %q violation, got:\n%s", c.name, c.check, joinV(vs))
		}
	}
	// Report pairs answers with recorded requests.
	tr := split(t, good["UAA"])
	tr.avps[0].Data = []byte(cscfHost + ";1;99")
	var out bytes.Buffer
	if !Report([]Observed{{Host: cscfHost, Wire: good["UAR"]}, {Host: hssHost, Wire: tr.bytes()}}, Options{Output: &out}, true) ||
		!strings.Contains(out.String(), "answer-session-id") {
		t.Errorf("Report did not pair the UAA with its UAR:\n%s", out.String())
	}
}
