package diamtest

// The tables in this file are written from the specifications, not
// generated from pkg/diameter/dict/*.xml: conform.go checks what our nodes
// send against them, and spec_test.go checks the embedded dictionaries
// against them, so a wrong flag, vendor or type in either place fails a
// test.
//
// Sources (clause numbers of the editions named):
//   - RFC 6733 §4.5 (base AVP table), §3 and §7.2 (header bits, E bit and
//     answer-message), §5.3-5.5 (CER/CEA, DPR/DPA, DWR/DWA), §6.11
//     (Vendor-Specific-Application-Id), §7.5-7.6 (Failed-AVP,
//     Experimental-Result), §8 (session AVPs).
//   - RFC 7944 §9.1 (DRMP: neither M nor V).
//   - TS 29.229 (Rel-16/17) §6.1 (Cx command ABNFs), §6.3 table 6.3.1 (Cx
//     AVP flag rules) and the clauses after it for grouped AVPs; AVPs added
//     after Rel-5 carry V only, M must not be set (§6.3 NOTE and §7.1.1).
//   - TS 29.329 (Rel-16) §6.1 (Sh command ABNFs), §6.3 table 6.3.1 (Sh AVP
//     flag rules); Sh re-uses Cx AVPs (Public-Identity, Server-Name,
//     Supported-Features, Wildcarded-Public-Identity, Wildcarded-IMPU,
//     Session-Priority) with the Cx definitions.
//   - TS 29.214 (Rel-15) §5.6 (Rx command ABNFs), §5.3 table 5.3.0.1 (Rx AVP
//     flag rules), §5.4 table 5.4.1 (re-used AVPs).
//   - TS 29.212 §5.3 (IP-CAN-Type, RAT-Type, Session-Release-Cause,
//     Pre-emption-*, AN-GW-Address, ToS-Traffic-Class,
//     User-Location-Info-Time, NetLoc-Access-Support), TS 29.273 (AN-Trusted),
//     TS 32.299 (Calling-Party-Address, Event-Charging-TimeStamp),
//     TS 29.061 §16.4.7 (3GPP-* RADIUS-derived AVPs).
//   - RFC 4006 §8.46-8.48, §8.34 (Subscription-Id*, Final-Unit-Action).
//   - RFC 7155 §4.4.10.5 and §4.2 (Framed-IP-Address, Framed-IPv6-Prefix,
//     Framed-Interface-Id, Called-Station-Id).
//   - RFC 4590 (Digest-* attributes) with the Diameter flag rules of RFC
//     4740 §9.5 (as TS 29.229 §6.3.36 uses them).
//   - ETSI TS 183 017 (Reservation-Priority, vendor ETSI 13019) and ETSI TS
//     183 033 (Line-Identifier, vendor ETSI 13019).
//
// Cross-checked against Wireshark's dictionaries (/usr/share/wireshark/
// diameter/*.xml) and freeDiameter's 3GPP table (dict_dcca_3gpp.csv, a
// transcription of the same spec tables); where those disagree with each
// other and the spec text could not be settled, the M rule is May and the
// entry says why (Note), so the checker asserts nothing it cannot source.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/imscore/imscore/pkg/diameter"
)

// FlagRule is a specification's rule for one AVP header bit.
type FlagRule uint8

// Flag rules: a bit the table lists under "Must", "Must not" or "May"
// (neither column).
const (
	May FlagRule = iota
	Must
	MustNot
)

func (r FlagRule) String() string {
	switch r {
	case Must:
		return "must"
	case MustNot:
		return "must-not"
	}
	return "may"
}

// DataType is an AVP data format (RFC 6733 §4.2, §4.3).
type DataType string

// Data types used by our AVPs. The names are those of the specification
// tables (and of go-diameter's XML dictionaries).
const (
	OctetString      DataType = "OctetString"
	Integer32        DataType = "Integer32"
	Integer64        DataType = "Integer64"
	Unsigned32       DataType = "Unsigned32"
	Unsigned64       DataType = "Unsigned64"
	Float32          DataType = "Float32"
	Float64          DataType = "Float64"
	Grouped          DataType = "Grouped"
	Address          DataType = "Address"
	Time             DataType = "Time"
	UTF8String       DataType = "UTF8String"
	DiameterIdentity DataType = "DiameterIdentity"
	DiameterURI      DataType = "DiameterURI"
	Enumerated       DataType = "Enumerated"
	IPFilterRule     DataType = "IPFilterRule"
)

// AVPSpec is what a specification says about one AVP.
type AVPSpec struct {
	Name   string
	Code   uint32
	Vendor uint32 // Vendor-Id; 0 for IETF AVPs (V bit must not be set)
	Type   DataType
	M, V   FlagRule // P must never be set (RFC 6733 §4.1: reserved, "SHOULD be set to 0")
	Ref    string   // defining clause
	Note   string   // why a rule is weaker than the table, if it is
}

// ID is the AVP's identity (code and Vendor-Id) as pkg/diameter names it.
func (s AVPSpec) ID() diameter.AVPCode { return diameter.AVPOf(s.Code, s.Vendor) }

func (s AVPSpec) String() string {
	if s.Vendor == 0 {
		return fmt.Sprintf("%s(%d)", s.Name, s.Code)
	}
	return fmt.Sprintf("%s(%d, vendor %d)", s.Name, s.Code, s.Vendor)
}

const (
	v3GPP = diameter.Vendor3GPP
	vETSI = diameter.VendorETSI
)

// ietf is an IETF AVP whose table says "M must, V must not".
func ietf(name string, code uint32, t DataType, ref string) AVPSpec {
	return AVPSpec{Name: name, Code: code, Type: t, M: Must, V: MustNot, Ref: ref}
}

// ietfNoM is an IETF AVP whose table says "M and V must not".
func ietfNoM(name string, code uint32, t DataType, ref string) AVPSpec {
	return AVPSpec{Name: name, Code: code, Type: t, M: MustNot, V: MustNot, Ref: ref}
}

// mv is a vendor AVP whose table says "M, V must".
func mv(name string, code, vendor uint32, t DataType, ref string) AVPSpec {
	return AVPSpec{Name: name, Code: code, Vendor: vendor, Type: t, M: Must, V: Must, Ref: ref}
}

// vOnly is a vendor AVP whose table says "V must, M must not".
func vOnly(name string, code, vendor uint32, t DataType, ref string) AVPSpec {
	return AVPSpec{Name: name, Code: code, Vendor: vendor, Type: t, M: MustNot, V: Must, Ref: ref}
}

// vMayM is a vendor AVP whose table says "V must, M may".
func vMayM(name string, code, vendor uint32, t DataType, ref, note string) AVPSpec {
	return AVPSpec{Name: name, Code: code, Vendor: vendor, Type: t, M: May, V: Must, Ref: ref, Note: note}
}

// AVPs is the specification table of every AVP our dictionaries define and
// our code may send or receive.
var AVPs = []AVPSpec{
	// RFC 6733 §4.5 (Diameter base protocol AVPs). Error-Message,
	// Error-Reporting-Host, Firmware-Revision and Product-Name are the only
	// ones without M ("MUST NOT: V, M").
	ietf("User-Name", 1, UTF8String, "RFC 6733 §8.14"),
	ietf("Class", 25, OctetString, "RFC 6733 §8.20"),
	ietf("Session-Timeout", 27, Unsigned32, "RFC 6733 §8.13"),
	ietf("Proxy-State", 33, OctetString, "RFC 6733 §6.7.4"),
	ietf("Acct-Session-Id", 44, OctetString, "RFC 6733 §9.8.4"),
	ietf("Acct-Multi-Session-Id", 50, UTF8String, "RFC 6733 §9.8.5"),
	ietf("Event-Timestamp", 55, Time, "RFC 6733 §8.21"),
	ietf("Acct-Interim-Interval", 85, Unsigned32, "RFC 6733 §9.8.2"),
	ietf("Host-IP-Address", 257, Address, "RFC 6733 §5.3.5"),
	ietf("Auth-Application-Id", 258, Unsigned32, "RFC 6733 §6.8"),
	ietf("Acct-Application-Id", 259, Unsigned32, "RFC 6733 §6.9"),
	ietf("Vendor-Specific-Application-Id", 260, Grouped, "RFC 6733 §6.11"),
	ietf("Redirect-Host-Usage", 261, Enumerated, "RFC 6733 §6.13"),
	ietf("Redirect-Max-Cache-Time", 262, Unsigned32, "RFC 6733 §6.14"),
	ietf("Session-Id", 263, UTF8String, "RFC 6733 §8.8"),
	ietf("Origin-Host", 264, DiameterIdentity, "RFC 6733 §6.3"),
	ietf("Supported-Vendor-Id", 265, Unsigned32, "RFC 6733 §5.3.6"),
	ietf("Vendor-Id", 266, Unsigned32, "RFC 6733 §5.3.3"),
	ietfNoM("Firmware-Revision", 267, Unsigned32, "RFC 6733 §5.3.4"),
	ietf("Result-Code", 268, Unsigned32, "RFC 6733 §7.1"),
	ietfNoM("Product-Name", 269, UTF8String, "RFC 6733 §5.3.7"),
	ietf("Session-Binding", 270, Unsigned32, "RFC 6733 §8.17"),
	ietf("Session-Server-Failover", 271, Enumerated, "RFC 6733 §8.18"),
	ietf("Multi-Round-Time-Out", 272, Unsigned32, "RFC 6733 §8.19"),
	ietf("Disconnect-Cause", 273, Enumerated, "RFC 6733 §5.4.3"),
	ietf("Auth-Request-Type", 274, Enumerated, "RFC 6733 §8.7"),
	ietf("Auth-Grace-Period", 276, Unsigned32, "RFC 6733 §8.10"),
	ietf("Auth-Session-State", 277, Enumerated, "RFC 6733 §8.11"),
	ietf("Origin-State-Id", 278, Unsigned32, "RFC 6733 §8.16"),
	ietf("Failed-AVP", 279, Grouped, "RFC 6733 §7.5"),
	ietf("Proxy-Host", 280, DiameterIdentity, "RFC 6733 §6.7.3"),
	ietfNoM("Error-Message", 281, UTF8String, "RFC 6733 §7.3"),
	ietf("Route-Record", 282, DiameterIdentity, "RFC 6733 §6.7.1"),
	ietf("Destination-Realm", 283, DiameterIdentity, "RFC 6733 §6.6"),
	ietf("Proxy-Info", 284, Grouped, "RFC 6733 §6.7.2"),
	ietf("Re-Auth-Request-Type", 285, Enumerated, "RFC 6733 §8.12"),
	ietf("Accounting-Sub-Session-Id", 287, Unsigned64, "RFC 6733 §9.8.6"),
	ietf("Authorization-Lifetime", 291, Unsigned32, "RFC 6733 §8.9"),
	ietf("Redirect-Host", 292, DiameterURI, "RFC 6733 §6.12"),
	ietf("Destination-Host", 293, DiameterIdentity, "RFC 6733 §6.5"),
	ietfNoM("Error-Reporting-Host", 294, DiameterIdentity, "RFC 6733 §7.4"),
	ietf("Termination-Cause", 295, Enumerated, "RFC 6733 §8.15"),
	ietf("Origin-Realm", 296, DiameterIdentity, "RFC 6733 §6.4"),
	ietf("Experimental-Result", 297, Grouped, "RFC 6733 §7.6"),
	ietf("Experimental-Result-Code", 298, Unsigned32, "RFC 6733 §7.7"),
	ietf("Inband-Security-Id", 299, Unsigned32, "RFC 6733 §6.10"),
	ietf("Accounting-Record-Type", 480, Enumerated, "RFC 6733 §9.8.1"),
	ietf("Accounting-Realtime-Required", 483, Enumerated, "RFC 6733 §9.8.7"),
	ietf("Accounting-Record-Number", 485, Unsigned32, "RFC 6733 §9.8.3"),
	ietfNoM("DRMP", 301, Enumerated, "RFC 7944 §9.1"),

	// RFC 7155 (NASREQ) AVPs used by Cx (SIP-Auth-Data-Item) and Rx.
	ietf("Framed-IP-Address", 8, OctetString, "RFC 7155 §4.4.10.5.1"),
	ietf("Called-Station-Id", 30, UTF8String, "RFC 7155 §4.2.5"),
	ietf("Framed-Interface-Id", 96, Unsigned64, "RFC 7155 §4.4.10.5.5"),
	ietf("Framed-IPv6-Prefix", 97, OctetString, "RFC 7155 §4.4.10.5.2"),

	// RFC 4590 attributes as Diameter AVPs (flag rules of RFC 4740 §9.5),
	// inside SIP-Digest-Authenticate (TS 29.229 §6.3.36).
	ietf("Digest-Realm", 104, UTF8String, "RFC 4590 §3.4.3; RFC 4740 §9.5"),
	ietf("Digest-QoP", 110, UTF8String, "RFC 4590 §3.4.9; RFC 4740 §9.5"),
	ietf("Digest-Algorithm", 111, UTF8String, "RFC 4590 §3.4.10; RFC 4740 §9.5"),
	ietf("Digest-HA1", 121, UTF8String, "RFC 4590 §3.4.20; RFC 4740 §9.5"),

	// RFC 4006 (credit control) AVPs used by Rx.
	ietf("Subscription-Id", 443, Grouped, "RFC 4006 §8.46"),
	ietf("Subscription-Id-Data", 444, UTF8String, "RFC 4006 §8.48"),
	ietf("Final-Unit-Action", 449, Enumerated, "RFC 4006 §8.35"),
	ietf("Subscription-Id-Type", 450, Enumerated, "RFC 4006 §8.47"),

	// TS 29.229 table 6.3.1 (Cx). 600-626 and 633 are Rel-5 AVPs: M, V.
	// Supported-Features: V must, M may. The rest (Rel-6 and later): V
	// must, M must not.
	mv("Visited-Network-Identifier", 600, v3GPP, OctetString, "TS 29.229 §6.3.1"),
	mv("Public-Identity", 601, v3GPP, UTF8String, "TS 29.229 §6.3.2"),
	mv("Server-Name", 602, v3GPP, UTF8String, "TS 29.229 §6.3.3"),
	mv("Server-Capabilities", 603, v3GPP, Grouped, "TS 29.229 §6.3.4"),
	mv("Mandatory-Capability", 604, v3GPP, Unsigned32, "TS 29.229 §6.3.5"),
	mv("Optional-Capability", 605, v3GPP, Unsigned32, "TS 29.229 §6.3.6"),
	mv("User-Data", 606, v3GPP, OctetString, "TS 29.229 §6.3.7"),
	mv("SIP-Number-Auth-Items", 607, v3GPP, Unsigned32, "TS 29.229 §6.3.8"),
	mv("SIP-Authentication-Scheme", 608, v3GPP, UTF8String, "TS 29.229 §6.3.9"),
	mv("SIP-Authenticate", 609, v3GPP, OctetString, "TS 29.229 §6.3.10"),
	mv("SIP-Authorization", 610, v3GPP, OctetString, "TS 29.229 §6.3.11"),
	mv("SIP-Authentication-Context", 611, v3GPP, OctetString, "TS 29.229 §6.3.12"),
	mv("SIP-Auth-Data-Item", 612, v3GPP, Grouped, "TS 29.229 §6.3.13"),
	mv("SIP-Item-Number", 613, v3GPP, Unsigned32, "TS 29.229 §6.3.14"),
	mv("Server-Assignment-Type", 614, v3GPP, Enumerated, "TS 29.229 §6.3.15"),
	mv("Deregistration-Reason", 615, v3GPP, Grouped, "TS 29.229 §6.3.16"),
	mv("Reason-Code", 616, v3GPP, Enumerated, "TS 29.229 §6.3.17"),
	mv("Reason-Info", 617, v3GPP, UTF8String, "TS 29.229 §6.3.18"),
	mv("Charging-Information", 618, v3GPP, Grouped, "TS 29.229 §6.3.19"),
	mv("Primary-Event-Charging-Function-Name", 619, v3GPP, DiameterURI, "TS 29.229 §6.3.20"),
	mv("Secondary-Event-Charging-Function-Name", 620, v3GPP, DiameterURI, "TS 29.229 §6.3.21"),
	mv("Primary-Charging-Collection-Function-Name", 621, v3GPP, DiameterURI, "TS 29.229 §6.3.22"),
	mv("Secondary-Charging-Collection-Function-Name", 622, v3GPP, DiameterURI, "TS 29.229 §6.3.23"),
	mv("User-Authorization-Type", 623, v3GPP, Enumerated, "TS 29.229 §6.3.24"),
	mv("User-Data-Already-Available", 624, v3GPP, Enumerated, "TS 29.229 §6.3.26"),
	mv("Confidentiality-Key", 625, v3GPP, OctetString, "TS 29.229 §6.3.27"),
	mv("Integrity-Key", 626, v3GPP, OctetString, "TS 29.229 §6.3.28"),
	vMayM("Supported-Features", 628, v3GPP, Grouped, "TS 29.229 §6.3.29", ""),
	vOnly("Feature-List-ID", 629, v3GPP, Unsigned32, "TS 29.229 §6.3.30"),
	vOnly("Feature-List", 630, v3GPP, Unsigned32, "TS 29.229 §6.3.31"),
	vOnly("Supported-Applications", 631, v3GPP, Grouped, "TS 29.229 §6.3.32"),
	vOnly("Associated-Identities", 632, v3GPP, Grouped, "TS 29.229 §6.3.33"),
	mv("Originating-Request", 633, v3GPP, Enumerated, "TS 29.229 §6.3.34"),
	vOnly("Wildcarded-Public-Identity", 634, v3GPP, UTF8String, "TS 29.229 §6.3.35"),
	vOnly("SIP-Digest-Authenticate", 635, v3GPP, Grouped, "TS 29.229 §6.3.36"),
	vOnly("Wildcarded-IMPU", 636, v3GPP, UTF8String, "TS 29.229 §6.3.43"),
	vOnly("UAR-Flags", 637, v3GPP, Unsigned32, "TS 29.229 §6.3.44"),
	vOnly("Loose-Route-Indication", 638, v3GPP, Enumerated, "TS 29.229 §6.3.45"),
	vOnly("SCSCF-Restoration-Info", 639, v3GPP, Grouped, "TS 29.229 §6.3.46"),
	vOnly("Path", 640, v3GPP, OctetString, "TS 29.229 §6.3.47"),
	vOnly("Contact", 641, v3GPP, OctetString, "TS 29.229 §6.3.48"),
	vOnly("Subscription-Info", 642, v3GPP, Grouped, "TS 29.229 §6.3.49"),
	vOnly("Call-ID-SIP-Header", 643, v3GPP, OctetString, "TS 29.229 §6.3.49.1"),
	vOnly("From-SIP-Header", 644, v3GPP, OctetString, "TS 29.229 §6.3.49.2"),
	vOnly("To-SIP-Header", 645, v3GPP, OctetString, "TS 29.229 §6.3.49.3"),
	vOnly("Record-Route", 646, v3GPP, OctetString, "TS 29.229 §6.3.49.4"),
	vOnly("Associated-Registered-Identities", 647, v3GPP, Grouped, "TS 29.229 §6.3.50"),
	vOnly("Multiple-Registration-Indication", 648, v3GPP, Enumerated, "TS 29.229 §6.3.51"),
	vOnly("Restoration-Info", 649, v3GPP, Grouped, "TS 29.229 §6.3.52"),
	vOnly("Session-Priority", 650, v3GPP, Enumerated, "TS 29.229 §6.3.56"),
	vOnly("Identity-with-Emergency-Registration", 651, v3GPP, Grouped, "TS 29.229 §6.3.57"),
	vOnly("Priviledged-Sender-Indication", 652, v3GPP, Enumerated, "TS 29.229 §6.3.58"),
	vOnly("LIA-Flags", 653, v3GPP, Unsigned32, "TS 29.229 §6.3.59"),
	vOnly("Initial-CSeq-Sequence-Number", 654, v3GPP, Unsigned32, "TS 29.229 §6.3.62"),
	vOnly("SAR-Flags", 655, v3GPP, Unsigned32, "TS 29.229 §6.3.63"),
	vOnly("Allowed-WAF-WWSF-Identities", 656, v3GPP, Grouped, "TS 29.229 §6.3.64"),
	vOnly("WebRTC-Authentication-Function-Name", 657, v3GPP, UTF8String, "TS 29.229 §6.3.65"),
	vOnly("WebRTC-Web-Server-Function-Name", 658, v3GPP, UTF8String, "TS 29.229 §6.3.66"),
	vOnly("RTR-Flags", 659, v3GPP, Unsigned32, "TS 29.229 §6.3.69"),
	vOnly("P-CSCF-Subscription-Info", 660, v3GPP, Grouped, "TS 29.229 §6.3.70"),
	vOnly("Registration-Time-Out", 661, v3GPP, Time, "TS 29.229 §6.3.71"),
	vMayM("Line-Identifier", 500, vETSI, OctetString, "ETSI TS 183 033 (in SIP-Auth-Data-Item, TS 29.229 §6.3.13)",
		"M not asserted: ETSI TS 183 033 and Wireshark allow M, TS 29.229 lists it among re-used AVPs without a rule we could source"),

	// TS 29.329 table 6.3.1 (Sh). 700-707 and 711 are Rel-6-era base Sh
	// AVPs with M, V; the later ones V only.
	mv("User-Identity", 700, v3GPP, Grouped, "TS 29.329 §6.3.1"),
	mv("MSISDN", 701, v3GPP, OctetString, "TS 29.329 §6.3.2"),
	mv("User-Data", 702, v3GPP, OctetString, "TS 29.329 §6.3.3"),
	mv("Data-Reference", 703, v3GPP, Enumerated, "TS 29.329 §6.3.4"),
	mv("Service-Indication", 704, v3GPP, OctetString, "TS 29.329 §6.3.5"),
	mv("Subs-Req-Type", 705, v3GPP, Enumerated, "TS 29.329 §6.3.6"),
	mv("Requested-Domain", 706, v3GPP, Enumerated, "TS 29.329 §6.3.7"),
	mv("Current-Location", 707, v3GPP, Enumerated, "TS 29.329 §6.3.8"),
	vOnly("Identity-Set", 708, v3GPP, Enumerated, "TS 29.329 §6.3.10"),
	vOnly("Expiry-Time", 709, v3GPP, Time, "TS 29.329 §6.3.16"),
	vOnly("Send-Data-Indication", 710, v3GPP, Enumerated, "TS 29.329 §6.3.17"),
	mv("DSAI-Tag", 711, v3GPP, OctetString, "TS 29.329 §6.3.18"),
	vOnly("One-Time-Notification", 712, v3GPP, Enumerated, "TS 29.329 §6.3.22"),
	vOnly("Requested-Nodes", 713, v3GPP, Unsigned32, "TS 29.329 §6.3.7A"),
	vOnly("Serving-Node-Indication", 714, v3GPP, Enumerated, "TS 29.329 §6.3.23"),
	vOnly("Repository-Data-ID", 715, v3GPP, Grouped, "TS 29.329 §6.3.24"),
	vOnly("Sequence-Number", 716, v3GPP, Unsigned32, "TS 29.329 §6.3.25"),
	vOnly("Pre-paging-Supported", 717, v3GPP, Enumerated, "TS 29.329 §6.3.26"),
	vOnly("Local-Time-Zone-Indication", 718, v3GPP, Enumerated, "TS 29.329 §6.3.27"),
	vOnly("UDR-Flags", 719, v3GPP, Unsigned32, "TS 29.329 §6.3.28"),
	vOnly("Call-Reference-Info", 720, v3GPP, Grouped, "TS 29.329 §6.3.29"),
	vOnly("Call-Reference-Number", 721, v3GPP, OctetString, "TS 29.329 §6.3.30"),
	vOnly("AS-Number", 722, v3GPP, OctetString, "TS 29.329 §6.3.31"),

	// TS 29.214 table 5.3.0.1 (Rx specific AVPs): the Rel-6/7 ones M, V;
	// the later ones V only.
	mv("Abort-Cause", 500, v3GPP, Enumerated, "TS 29.214 §5.3.1"),
	mv("Access-Network-Charging-Address", 501, v3GPP, Address, "TS 29.214 §5.3.2"),
	mv("Access-Network-Charging-Identifier", 502, v3GPP, Grouped, "TS 29.214 §5.3.3"),
	mv("Access-Network-Charging-Identifier-Value", 503, v3GPP, OctetString, "TS 29.214 §5.3.4"),
	mv("AF-Application-Identifier", 504, v3GPP, OctetString, "TS 29.214 §5.3.5"),
	mv("AF-Charging-Identifier", 505, v3GPP, OctetString, "TS 29.214 §5.3.6"),
	mv("Flow-Description", 507, v3GPP, IPFilterRule, "TS 29.214 §5.3.8"),
	mv("Flow-Number", 509, v3GPP, Unsigned32, "TS 29.214 §5.3.9"),
	mv("Flows", 510, v3GPP, Grouped, "TS 29.214 §5.3.10"),
	mv("Flow-Status", 511, v3GPP, Enumerated, "TS 29.214 §5.3.11"),
	mv("Flow-Usage", 512, v3GPP, Enumerated, "TS 29.214 §5.3.12"),
	mv("Specific-Action", 513, v3GPP, Enumerated, "TS 29.214 §5.3.13"),
	mv("Max-Requested-Bandwidth-DL", 515, v3GPP, Unsigned32, "TS 29.214 §5.3.14"),
	mv("Max-Requested-Bandwidth-UL", 516, v3GPP, Unsigned32, "TS 29.214 §5.3.15"),
	mv("Media-Component-Description", 517, v3GPP, Grouped, "TS 29.214 §5.3.16"),
	mv("Media-Component-Number", 518, v3GPP, Unsigned32, "TS 29.214 §5.3.17"),
	mv("Media-Sub-Component", 519, v3GPP, Grouped, "TS 29.214 §5.3.18"),
	mv("Media-Type", 520, v3GPP, Enumerated, "TS 29.214 §5.3.19"),
	mv("RR-Bandwidth", 521, v3GPP, Unsigned32, "TS 29.214 §5.3.20"),
	mv("RS-Bandwidth", 522, v3GPP, Unsigned32, "TS 29.214 §5.3.21"),
	mv("SIP-Forking-Indication", 523, v3GPP, Enumerated, "TS 29.214 §5.3.22"),
	mv("Codec-Data", 524, v3GPP, OctetString, "TS 29.214 §5.3.7"),
	mv("Service-URN", 525, v3GPP, OctetString, "TS 29.214 §5.3.23"),
	mv("Acceptable-Service-Info", 526, v3GPP, Grouped, "TS 29.214 §5.3.24"),
	mv("Service-Info-Status", 527, v3GPP, Enumerated, "TS 29.214 §5.3.25"),
	vOnly("MPS-Identifier", 528, v3GPP, OctetString, "TS 29.214 §5.3.30"),
	vOnly("AF-Signalling-Protocol", 529, v3GPP, Enumerated, "TS 29.214 §5.3.26"),
	vOnly("Sponsored-Connectivity-Data", 530, v3GPP, Grouped, "TS 29.214 §5.3.27"),
	vOnly("Sponsor-Identity", 531, v3GPP, UTF8String, "TS 29.214 §5.3.28"),
	vOnly("Application-Service-Provider-Identity", 532, v3GPP, UTF8String, "TS 29.214 §5.3.29"),
	vOnly("Rx-Request-Type", 533, v3GPP, Enumerated, "TS 29.214 §5.3.31"),
	vOnly("Min-Requested-Bandwidth-DL", 534, v3GPP, Unsigned32, "TS 29.214 §5.3.32"),
	vOnly("Min-Requested-Bandwidth-UL", 535, v3GPP, Unsigned32, "TS 29.214 §5.3.33"),
	vOnly("Required-Access-Info", 536, v3GPP, Enumerated, "TS 29.214 §5.3.34"),
	vOnly("IP-Domain-Id", 537, v3GPP, OctetString, "TS 29.214 §5.3.35"),
	vOnly("GCS-Identifier", 538, v3GPP, OctetString, "TS 29.214 §5.3.36"),
	vOnly("Sharing-Key-DL", 539, v3GPP, Unsigned32, "TS 29.214 §5.3.37"),
	vOnly("Sharing-Key-UL", 540, v3GPP, Unsigned32, "TS 29.214 §5.3.38"),
	vOnly("Retry-Interval", 541, v3GPP, Unsigned32, "TS 29.214 §5.3.39"),
	vOnly("Sponsoring-Action", 542, v3GPP, Enumerated, "TS 29.214 §5.3.40"),
	vOnly("Max-Supported-Bandwidth-DL", 543, v3GPP, Unsigned32, "TS 29.214 §5.3.41"),
	vOnly("Max-Supported-Bandwidth-UL", 544, v3GPP, Unsigned32, "TS 29.214 §5.3.42"),
	vOnly("Min-Desired-Bandwidth-DL", 545, v3GPP, Unsigned32, "TS 29.214 §5.3.43"),
	vOnly("Min-Desired-Bandwidth-UL", 546, v3GPP, Unsigned32, "TS 29.214 §5.3.44"),
	vOnly("MCPTT-Identifier", 547, v3GPP, OctetString, "TS 29.214 §5.3.45"),
	vOnly("Service-Authorization-Info", 548, v3GPP, Unsigned32, "TS 29.214 §5.3.46"),
	vOnly("Media-Component-Status", 549, v3GPP, Unsigned32, "TS 29.214 §5.3.48"),
	vOnly("Priority-Sharing-Indicator", 550, v3GPP, Enumerated, "TS 29.214 §5.3.47"),
	vOnly("AF-Requested-Data", 551, v3GPP, Unsigned32, "TS 29.214 §5.3.50"),
	vOnly("Content-Version", 552, v3GPP, Unsigned64, "TS 29.214 §5.3.49"),
	vOnly("Pre-emption-Control-Info", 553, v3GPP, Unsigned32, "TS 29.214 §5.3.51"),
	vOnly("Extended-Max-Requested-BW-DL", 554, v3GPP, Unsigned32, "TS 29.214 §5.3.52"),
	vOnly("Extended-Max-Requested-BW-UL", 555, v3GPP, Unsigned32, "TS 29.214 §5.3.53"),
	vOnly("MCVideo-Identifier", 562, v3GPP, OctetString, "TS 29.214 §5.3.45a"),

	// AVPs Rx re-uses (TS 29.214 §5.4 table 5.4.1): flags of their defining
	// specifications unless the table overrides them.
	mv("Calling-Party-Address", 831, v3GPP, UTF8String, "TS 32.299 §7.2.36 (re-used by TS 29.214 §5.4)"),
	mv("ToS-Traffic-Class", 1014, v3GPP, OctetString, "TS 29.212 §5.3.15"),
	mv("IP-CAN-Type", 1027, v3GPP, Enumerated, "TS 29.212 §5.3.27"),
	vOnly("RAT-Type", 1032, v3GPP, Enumerated, "TS 29.212 §5.3.31"),
	mv("Session-Release-Cause", 1045, v3GPP, Enumerated, "TS 29.212 §5.3.44"),
	vOnly("Pre-emption-Capability", 1047, v3GPP, Enumerated, "TS 29.212 §5.3.46"),
	vOnly("Pre-emption-Vulnerability", 1048, v3GPP, Enumerated, "TS 29.212 §5.3.47"),
	vOnly("AN-GW-Address", 1050, v3GPP, Address, "TS 29.212 §5.3.49"),
	mv("Event-Charging-TimeStamp", 1258, v3GPP, Time, "TS 32.299 §7.2.52a (re-used by TS 29.214 §5.4)"),
	vMayM("AN-Trusted", 1503, v3GPP, Enumerated, "TS 29.273 §5.2.3.9 (re-used by TS 29.214 §5.4)",
		"M not asserted: TS 29.273 lists M, V; Wireshark has M must-not; the Rx re-use table's rule could not be sourced"),
	vOnly("User-Location-Info-Time", 2812, v3GPP, Time, "TS 29.212 §5.3.101"),
	vOnly("NetLoc-Access-Support", 2824, v3GPP, Unsigned32, "TS 29.212 §5.3.111"),
	vMayM("3GPP-SGSN-MCC-MNC", 18, v3GPP, UTF8String, "TS 29.061 §16.4.7.2 (re-used by TS 29.214 §5.4)", noteRADIUS),
	vMayM("3GPP-User-Location-Info", 22, v3GPP, OctetString, "TS 29.061 §16.4.7.2 (re-used by TS 29.214 §5.4)", noteRADIUS),
	vMayM("3GPP-MS-TimeZone", 23, v3GPP, OctetString, "TS 29.061 §16.4.7.2 (re-used by TS 29.214 §5.4)", noteRADIUS),
	vMayM("Reservation-Priority", 458, vETSI, Enumerated, "ETSI TS 183 017 §7.3.9 (re-used by TS 29.214 §5.4)",
		"M not asserted: ETSI TS 183 017 allows it, Wireshark has M must-not"),
}

const noteRADIUS = "M not asserted: TS 29.061 lists these RADIUS-derived AVPs without M for Diameter, while TS 29.214 §5.4 says re-used 3GPP RADIUS VSAs are translated with M set (Wireshark and freeDiameter set M)"

// Applications of the command tables (header Application-Id).
const (
	appBase = 0
	appCx   = uint32(diameter.AppCx)
	appSh   = uint32(diameter.AppSh)
	appRx   = uint32(diameter.AppRx)
)

// appDoc names the specification whose AVP names an ABNF of app uses first
// (Sh's "User-Data" is 702, Cx's is 606).
var appDoc = map[uint32]string{appBase: "RFC", appCx: "TS 29.229", appSh: "TS 29.329", appRx: "TS 29.214"}

// Occurrence is one line of a command or grouped AVP ABNF.
type Occurrence struct {
	AVP      diameter.AVPCode
	Name     string
	Fixed    bool // < AVP >: fixed position (only Session-Id, first)
	Required bool // { AVP }
	Min, Max int  // Max 0 means unbounded
}

// ABNF is a command code format (RFC 6733 §3.2) or a grouped AVP format
// (RFC 6733 §4.4).
type ABNF struct {
	Name     string // "UAR", or the grouped AVP's name
	Long     string // "User-Authorization-Request"
	Code     uint32
	App      uint32
	Request  bool // REQ
	Proxy    bool // PXY
	Rules    []Occurrence
	AnyAVP   bool   // *[ AVP ]: AVPs not listed are allowed
	Ref      string // defining clause
	Text     string // the ABNF as written
	rulesMap map[diameter.AVPCode]*Occurrence
}

// Rule returns the occurrence rule of a in the ABNF, if listed.
func (f *ABNF) Rule(a diameter.AVPCode) (Occurrence, bool) {
	r, ok := f.rulesMap[a]
	if !ok {
		return Occurrence{}, false
	}
	return *r, true
}

// commandText holds the command ABNFs as the specifications write them
// (OC-Supported-Features, OC-OLR and Load of RFC 7683 and RFC 8583, which
// we neither define nor send, are left out: *[ AVP ] covers them).
var commandText = []struct{ short, ref, text string }{
	// RFC 6733 §5.3.1, §5.3.2, §5.5.1, §5.5.2, §5.4.1, §5.4.2.
	{"CER", "RFC 6733 §5.3.1", `
<Capabilities-Exchange-Request> ::= < Diameter Header: 257, REQ >
	{ Origin-Host }
	{ Origin-Realm }
	1* { Host-IP-Address }
	{ Vendor-Id }
	{ Product-Name }
	[ Origin-State-Id ]
	* [ Supported-Vendor-Id ]
	* [ Auth-Application-Id ]
	* [ Inband-Security-Id ]
	* [ Acct-Application-Id ]
	* [ Vendor-Specific-Application-Id ]
	[ Firmware-Revision ]
	* [ AVP ]`},
	{"CEA", "RFC 6733 §5.3.2", `
<Capabilities-Exchange-Answer> ::= < Diameter Header: 257 >
	{ Result-Code }
	{ Origin-Host }
	{ Origin-Realm }
	1* { Host-IP-Address }
	{ Vendor-Id }
	{ Product-Name }
	[ Origin-State-Id ]
	[ Error-Message ]
	[ Failed-AVP ]
	* [ Supported-Vendor-Id ]
	* [ Auth-Application-Id ]
	* [ Inband-Security-Id ]
	* [ Acct-Application-Id ]
	* [ Vendor-Specific-Application-Id ]
	[ Firmware-Revision ]
	* [ AVP ]`},
	{"DWR", "RFC 6733 §5.5.1", `
<Device-Watchdog-Request> ::= < Diameter Header: 280, REQ >
	{ Origin-Host }
	{ Origin-Realm }
	[ Origin-State-Id ]
	* [ AVP ]`},
	{"DWA", "RFC 6733 §5.5.2", `
<Device-Watchdog-Answer> ::= < Diameter Header: 280 >
	{ Result-Code }
	{ Origin-Host }
	{ Origin-Realm }
	[ Error-Message ]
	[ Failed-AVP ]
	[ Origin-State-Id ]
	* [ AVP ]`},
	{"DPR", "RFC 6733 §5.4.1", `
<Disconnect-Peer-Request> ::= < Diameter Header: 282, REQ >
	{ Origin-Host }
	{ Origin-Realm }
	{ Disconnect-Cause }
	* [ AVP ]`},
	{"DPA", "RFC 6733 §5.4.2", `
<Disconnect-Peer-Answer> ::= < Diameter Header: 282 >
	{ Result-Code }
	{ Origin-Host }
	{ Origin-Realm }
	[ Error-Message ]
	[ Failed-AVP ]
	* [ AVP ]`},

	// TS 29.229 §6.1.1-6.1.12 (Cx). The Vendor-Specific-Application-Id is
	// still required ({ }), NOTE in §6.1.
	{"UAR", "TS 29.229 §6.1.1", `
< User-Authorization-Request> ::= < Diameter Header: 300, REQ, PXY, 16777216 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	[ Destination-Host ]
	{ Destination-Realm }
	{ User-Name }
	*[ Supported-Features ]
	{ Public-Identity }
	{ Visited-Network-Identifier }
	[ User-Authorization-Type ]
	[ UAR-Flags ]
	*[ AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"UAA", "TS 29.229 §6.1.2", `
< User-Authorization-Answer> ::= < Diameter Header: 300, PXY, 16777216 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	[ Result-Code ]
	[ Experimental-Result ]
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	*[ Supported-Features ]
	[ Server-Name ]
	[ Server-Capabilities ]
	*[ AVP ]
	[ Failed-AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"SAR", "TS 29.229 §6.1.3", `
< Server-Assignment-Request> ::= < Diameter Header: 301, REQ, PXY, 16777216 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	[ Destination-Host ]
	{ Destination-Realm }
	[ User-Name ]
	*[ Supported-Features ]
	*[ Public-Identity ]
	[ Wildcarded-Public-Identity ]
	{ Server-Name }
	{ Server-Assignment-Type }
	{ User-Data-Already-Available }
	[ SCSCF-Restoration-Info ]
	[ Multiple-Registration-Indication ]
	[ Session-Priority ]
	[ SAR-Flags ]
	*[ AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"SAA", "TS 29.229 §6.1.4", `
< Server-Assignment-Answer> ::= < Diameter Header: 301, PXY, 16777216 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	[ Result-Code ]
	[ Experimental-Result ]
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	[ User-Name ]
	*[ Supported-Features ]
	[ User-Data ]
	[ Charging-Information ]
	[ Associated-Identities ]
	[ Loose-Route-Indication ]
	*[ SCSCF-Restoration-Info ]
	[ Associated-Registered-Identities ]
	[ Server-Name ]
	[ Wildcarded-Public-Identity ]
	[ Priviledged-Sender-Indication ]
	[ Allowed-WAF-WWSF-Identities ]
	*[ AVP ]
	[ Failed-AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"LIR", "TS 29.229 §6.1.5", `
< Location-Info-Request> ::= < Diameter Header: 302, REQ, PXY, 16777216 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	[ Destination-Host ]
	{ Destination-Realm }
	[ Originating-Request ]
	*[ Supported-Features ]
	{ Public-Identity }
	[ User-Authorization-Type ]
	[ Session-Priority ]
	*[ AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"LIA", "TS 29.229 §6.1.6", `
< Location-Info-Answer> ::= < Diameter Header: 302, PXY, 16777216 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	[ Result-Code ]
	[ Experimental-Result ]
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	*[ Supported-Features ]
	[ Server-Name ]
	[ Server-Capabilities ]
	[ Wildcarded-Public-Identity ]
	[ LIA-Flags ]
	*[ AVP ]
	[ Failed-AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"MAR", "TS 29.229 §6.1.7", `
< Multimedia-Auth-Request > ::= < Diameter Header: 303, REQ, PXY, 16777216 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	{ Destination-Realm }
	[ Destination-Host ]
	{ User-Name }
	*[ Supported-Features ]
	{ Public-Identity }
	{ SIP-Auth-Data-Item }
	{ SIP-Number-Auth-Items }
	{ Server-Name }
	*[ AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"MAA", "TS 29.229 §6.1.8", `
< Multimedia-Auth-Answer > ::= < Diameter Header: 303, PXY, 16777216 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	[ Result-Code ]
	[ Experimental-Result ]
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	[ User-Name ]
	*[ Supported-Features ]
	[ Public-Identity ]
	[ SIP-Number-Auth-Items ]
	*[ SIP-Auth-Data-Item ]
	*[ AVP ]
	[ Failed-AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"RTR", "TS 29.229 §6.1.9", `
<Registration-Termination-Request> ::= < Diameter Header: 304, REQ, PXY, 16777216 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	{ Destination-Host }
	{ Destination-Realm }
	{ User-Name }
	[ Associated-Identities ]
	*[ Supported-Features ]
	*[ Public-Identity ]
	{ Deregistration-Reason }
	[ RTR-Flags ]
	*[ AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"RTA", "TS 29.229 §6.1.10", `
<Registration-Termination-Answer> ::= < Diameter Header: 304, PXY, 16777216 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	[ Result-Code ]
	[ Experimental-Result ]
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	[ Associated-Identities ]
	*[ Supported-Features ]
	*[ Identity-with-Emergency-Registration ]
	*[ AVP ]
	[ Failed-AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"PPR", "TS 29.229 §6.1.11", `
< Push-Profile-Request > ::= < Diameter Header: 305, REQ, PXY, 16777216 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	{ Destination-Host }
	{ Destination-Realm }
	{ User-Name }
	*[ Supported-Features ]
	[ User-Data ]
	[ Charging-Information ]
	[ SIP-Auth-Data-Item ]
	[ Allowed-WAF-WWSF-Identities ]
	*[ AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"PPA", "TS 29.229 §6.1.12", `
< Push-Profile-Answer > ::= < Diameter Header: 305, PXY, 16777216 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	[ Result-Code ]
	[ Experimental-Result ]
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	*[ Supported-Features ]
	*[ AVP ]
	[ Failed-AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},

	// TS 29.329 §6.1.1-6.1.8 (Sh).
	{"UDR", "TS 29.329 §6.1.1", `
< User-Data-Request > ::= < Diameter Header: 306, REQ, PXY, 16777217 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	[ Destination-Host ]
	{ Destination-Realm }
	*[ Supported-Features ]
	{ User-Identity }
	[ Wildcarded-Public-Identity ]
	[ Wildcarded-IMPU ]
	[ Server-Name ]
	*[ Service-Indication ]
	*{ Data-Reference }
	*[ Identity-Set ]
	[ Requested-Domain ]
	[ Current-Location ]
	*[ DSAI-Tag ]
	[ Session-Priority ]
	[ User-Name ]
	[ Requested-Nodes ]
	[ Serving-Node-Indication ]
	[ Pre-paging-Supported ]
	[ Local-Time-Zone-Indication ]
	[ UDR-Flags ]
	[ Call-Reference-Info ]
	*[ AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"UDA", "TS 29.329 §6.1.2", `
< User-Data-Answer > ::= < Diameter Header: 306, PXY, 16777217 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	[ Result-Code ]
	[ Experimental-Result ]
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	*[ Supported-Features ]
	[ Wildcarded-Public-Identity ]
	[ Wildcarded-IMPU ]
	[ User-Data ]
	*[ AVP ]
	[ Failed-AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"PUR", "TS 29.329 §6.1.3", `
< Profile-Update-Request > ::= < Diameter Header: 307, REQ, PXY, 16777217 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	[ Destination-Host ]
	{ Destination-Realm }
	*[ Supported-Features ]
	{ User-Identity }
	[ Wildcarded-Public-Identity ]
	[ Wildcarded-IMPU ]
	[ User-Name ]
	{ Data-Reference }
	{ User-Data }
	*[ AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"PUA", "TS 29.329 §6.1.4", `
< Profile-Update-Answer > ::= < Diameter Header: 307, PXY, 16777217 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	[ Result-Code ]
	[ Experimental-Result ]
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	[ Wildcarded-Public-Identity ]
	[ Wildcarded-IMPU ]
	[ Repository-Data-ID ]
	[ Data-Reference ]
	*[ Supported-Features ]
	*[ AVP ]
	[ Failed-AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"SNR", "TS 29.329 §6.1.5", `
< Subscribe-Notifications-Request > ::= < Diameter Header: 308, REQ, PXY, 16777217 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	[ Destination-Host ]
	{ Destination-Realm }
	*[ Supported-Features ]
	{ User-Identity }
	[ Wildcarded-Public-Identity ]
	[ Wildcarded-IMPU ]
	*[ Service-Indication ]
	[ Send-Data-Indication ]
	[ Server-Name ]
	{ Subs-Req-Type }
	*{ Data-Reference }
	*[ Identity-Set ]
	[ Expiry-Time ]
	*[ DSAI-Tag ]
	[ One-Time-Notification ]
	[ User-Name ]
	*[ AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"SNA", "TS 29.329 §6.1.6", `
< Subscribe-Notifications-Answer > ::= < Diameter Header: 308, PXY, 16777217 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	{ Auth-Session-State }
	[ Result-Code ]
	[ Experimental-Result ]
	{ Origin-Host }
	{ Origin-Realm }
	[ Wildcarded-Public-Identity ]
	[ Wildcarded-IMPU ]
	*[ Supported-Features ]
	[ User-Data ]
	[ Expiry-Time ]
	*[ AVP ]
	[ Failed-AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"PNR", "TS 29.329 §6.1.7", `
< Push-Notification-Request > ::= < Diameter Header: 309, REQ, PXY, 16777217 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	{ Destination-Host }
	{ Destination-Realm }
	*[ Supported-Features ]
	{ User-Identity }
	[ Wildcarded-Public-Identity ]
	[ Wildcarded-IMPU ]
	[ User-Name ]
	{ User-Data }
	*[ AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},
	{"PNA", "TS 29.329 §6.1.8", `
< Push-Notification-Answer > ::= < Diameter Header: 309, PXY, 16777217 >
	< Session-Id >
	[ DRMP ]
	{ Vendor-Specific-Application-Id }
	[ Result-Code ]
	[ Experimental-Result ]
	{ Auth-Session-State }
	{ Origin-Host }
	{ Origin-Realm }
	*[ Supported-Features ]
	*[ AVP ]
	[ Failed-AVP ]
	*[ Proxy-Info ]
	*[ Route-Record ]`},

	// TS 29.214 §5.6.1-5.6.8 (Rx). The application id is in
	// Auth-Application-Id (§5.6: no Vendor-Specific-Application-Id).
	{"AAR", "TS 29.214 §5.6.2", `
<AA-Request> ::= < Diameter Header: 265, REQ, PXY, 16777236 >
	< Session-Id >
	[ DRMP ]
	{ Auth-Application-Id }
	{ Origin-Host }
	{ Origin-Realm }
	{ Destination-Realm }
	[ Destination-Host ]
	[ IP-Domain-Id ]
	[ Auth-Session-State ]
	[ AF-Application-Identifier ]
	*[ Media-Component-Description ]
	[ Service-Info-Status ]
	[ AF-Charging-Identifier ]
	[ SIP-Forking-Indication ]
	*[ Specific-Action ]
	*[ Subscription-Id ]
	*[ Supported-Features ]
	[ Reservation-Priority ]
	[ Framed-IP-Address ]
	[ Framed-IPv6-Prefix ]
	[ Called-Station-Id ]
	[ Service-URN ]
	[ Sponsored-Connectivity-Data ]
	[ MPS-Identifier ]
	[ GCS-Identifier ]
	[ MCPTT-Identifier ]
	[ MCVideo-Identifier ]
	*[ Calling-Party-Address ]
	[ Rx-Request-Type ]
	*[ Required-Access-Info ]
	[ AF-Requested-Data ]
	[ Pre-emption-Control-Info ]
	[ Origin-State-Id ]
	*[ Proxy-Info ]
	*[ Route-Record ]
	*[ AVP ]`},
	{"AAA", "TS 29.214 §5.6.3", `
<AA-Answer> ::= < Diameter Header: 265, PXY, 16777236 >
	< Session-Id >
	[ DRMP ]
	{ Auth-Application-Id }
	{ Origin-Host }
	{ Origin-Realm }
	[ Result-Code ]
	[ Experimental-Result ]
	[ Auth-Session-State ]
	*[ Access-Network-Charging-Identifier ]
	[ Access-Network-Charging-Address ]
	[ Acceptable-Service-Info ]
	0*2[ AN-GW-Address ]
	[ AN-Trusted ]
	[ Service-Authorization-Info ]
	[ IP-CAN-Type ]
	[ NetLoc-Access-Support ]
	[ RAT-Type ]
	*[ Flows ]
	*[ Supported-Features ]
	*[ Subscription-Id ]
	[ 3GPP-SGSN-MCC-MNC ]
	*[ Class ]
	[ Error-Message ]
	[ Error-Reporting-Host ]
	[ Failed-AVP ]
	[ Retry-Interval ]
	[ Origin-State-Id ]
	*[ Redirect-Host ]
	[ Redirect-Host-Usage ]
	[ Redirect-Max-Cache-Time ]
	*[ Proxy-Info ]
	*[ AVP ]`},
	{"RAR", "TS 29.214 §5.6.4", `
<RA-Request> ::= < Diameter Header: 258, REQ, PXY, 16777236 >
	< Session-Id >
	[ DRMP ]
	{ Origin-Host }
	{ Origin-Realm }
	{ Destination-Realm }
	{ Destination-Host }
	{ Auth-Application-Id }
	*{ Specific-Action }
	*[ Access-Network-Charging-Identifier ]
	[ Access-Network-Charging-Address ]
	0*2[ AN-GW-Address ]
	[ AN-Trusted ]
	*[ Flows ]
	*[ Subscription-Id ]
	[ Abort-Cause ]
	[ IP-CAN-Type ]
	[ NetLoc-Access-Support ]
	[ RAT-Type ]
	[ Sponsored-Connectivity-Data ]
	[ 3GPP-User-Location-Info ]
	[ User-Location-Info-Time ]
	[ 3GPP-MS-TimeZone ]
	[ 3GPP-SGSN-MCC-MNC ]
	[ Origin-State-Id ]
	*[ Class ]
	*[ Proxy-Info ]
	*[ Route-Record ]
	*[ AVP ]`},
	{"RAA", "TS 29.214 §5.6.5", `
<RA-Answer> ::= < Diameter Header: 258, PXY, 16777236 >
	< Session-Id >
	[ DRMP ]
	{ Origin-Host }
	{ Origin-Realm }
	[ Result-Code ]
	[ Experimental-Result ]
	*[ Media-Component-Description ]
	[ Service-URN ]
	[ Origin-State-Id ]
	*[ Class ]
	[ Error-Message ]
	[ Error-Reporting-Host ]
	*[ Redirect-Host ]
	[ Redirect-Host-Usage ]
	[ Redirect-Max-Cache-Time ]
	[ Failed-AVP ]
	*[ Proxy-Info ]
	*[ AVP ]`},
	{"STR", "TS 29.214 §5.6.6", `
<ST-Request> ::= < Diameter Header: 275, REQ, PXY, 16777236 >
	< Session-Id >
	[ DRMP ]
	{ Origin-Host }
	{ Origin-Realm }
	{ Destination-Realm }
	{ Auth-Application-Id }
	{ Termination-Cause }
	[ Destination-Host ]
	*[ Required-Access-Info ]
	*[ Class ]
	[ Origin-State-Id ]
	*[ Proxy-Info ]
	*[ Route-Record ]
	*[ AVP ]`},
	{"STA", "TS 29.214 §5.6.7", `
<ST-Answer> ::= < Diameter Header: 275, PXY, 16777236 >
	< Session-Id >
	[ DRMP ]
	{ Origin-Host }
	{ Origin-Realm }
	[ Result-Code ]
	[ Error-Message ]
	[ Error-Reporting-Host ]
	[ Failed-AVP ]
	[ Sponsored-Connectivity-Data ]
	[ Origin-State-Id ]
	[ 3GPP-User-Location-Info ]
	[ User-Location-Info-Time ]
	[ 3GPP-MS-TimeZone ]
	[ 3GPP-SGSN-MCC-MNC ]
	[ NetLoc-Access-Support ]
	*[ Class ]
	*[ Redirect-Host ]
	[ Redirect-Host-Usage ]
	[ Redirect-Max-Cache-Time ]
	*[ Proxy-Info ]
	*[ AVP ]`},
	{"ASR", "TS 29.214 §5.6.8", `
<AS-Request> ::= < Diameter Header: 274, REQ, PXY, 16777236 >
	< Session-Id >
	[ DRMP ]
	{ Origin-Host }
	{ Origin-Realm }
	{ Destination-Realm }
	{ Destination-Host }
	{ Auth-Application-Id }
	{ Abort-Cause }
	[ Origin-State-Id ]
	*[ Proxy-Info ]
	*[ Route-Record ]
	*[ AVP ]`},
	{"ASA", "TS 29.214 §5.6.9", `
<AS-Answer> ::= < Diameter Header: 274, PXY, 16777236 >
	< Session-Id >
	[ DRMP ]
	{ Origin-Host }
	{ Origin-Realm }
	[ Result-Code ]
	[ Origin-State-Id ]
	[ Error-Message ]
	[ Error-Reporting-Host ]
	[ Failed-AVP ]
	*[ Redirect-Host ]
	[ Redirect-Host-Usage ]
	[ Redirect-Max-Cache-Time ]
	*[ Proxy-Info ]
	*[ AVP ]`},
}

// answerMessageText is the format of every answer with the E bit (RFC 6733
// §7.2): it replaces the command's own answer ABNF. Its header is written
// "ERR [PXY]" in the RFC; the P bit is checked against the command's own
// ABNF instead.
const answerMessageText = `
<answer-message> ::= < Diameter Header: 0, ERR >
	0*1< Session-Id >
	{ Origin-Host }
	{ Origin-Realm }
	{ Result-Code }
	[ Origin-State-Id ]
	[ Error-Message ]
	[ Error-Reporting-Host ]
	[ Failed-AVP ]
	[ Experimental-Result ]
	*[ Proxy-Info ]
	*[ AVP ]`

// groupedText holds grouped AVP formats. Failed-AVP (1* { AVP }) is not
// here: it carries copies of offending AVPs, which are not checked.
var groupedText = []struct {
	app       uint32
	ref, text string
}{
	{appBase, "RFC 6733 §6.11", `
Vendor-Specific-Application-Id ::= < AVP Header: 260 >
	{ Vendor-Id }
	[ Auth-Application-Id ]
	[ Acct-Application-Id ]`},
	{appBase, "RFC 6733 §7.6", `
Experimental-Result ::= < AVP Header: 297 >
	{ Vendor-Id }
	{ Experimental-Result-Code }`},
	{appBase, "RFC 6733 §6.7.2", `
Proxy-Info ::= < AVP Header: 284 >
	{ Proxy-Host }
	{ Proxy-State }
	* [ AVP ]`},

	{appCx, "TS 29.229 §6.3.4", `
Server-Capabilities ::= < AVP Header: 603 10415 >
	*[ Mandatory-Capability ]
	*[ Optional-Capability ]
	*[ Server-Name ]
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.13", `
SIP-Auth-Data-Item ::= < AVP Header : 612 10415 >
	[ SIP-Item-Number ]
	[ SIP-Authentication-Scheme ]
	[ SIP-Authenticate ]
	[ SIP-Authorization ]
	[ SIP-Authentication-Context ]
	[ Confidentiality-Key ]
	[ Integrity-Key ]
	[ SIP-Digest-Authenticate ]
	[ Framed-IP-Address ]
	[ Framed-IPv6-Prefix ]
	[ Framed-Interface-Id ]
	*[ Line-Identifier ]
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.16", `
Deregistration-Reason ::= < AVP Header: 615 10415 >
	{ Reason-Code }
	[ Reason-Info ]
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.19", `
Charging-Information ::= < AVP Header: 618 10415 >
	[ Primary-Event-Charging-Function-Name ]
	[ Secondary-Event-Charging-Function-Name ]
	[ Primary-Charging-Collection-Function-Name ]
	[ Secondary-Charging-Collection-Function-Name ]
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.29", `
Supported-Features ::= < AVP Header: 628 10415 >
	{ Vendor-Id }
	{ Feature-List-ID }
	{ Feature-List }
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.32", `
Supported-Applications ::= < AVP Header: 631 10415 >
	*[ Auth-Application-Id ]
	*[ Acct-Application-Id ]
	*[ Vendor-Specific-Application-Id ]
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.33", `
Associated-Identities ::= < AVP Header: 632 10415 >
	*[ User-Name ]
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.36", `
SIP-Digest-Authenticate ::= < AVP Header: 635 10415 >
	{ Digest-Realm }
	[ Digest-Algorithm ]
	{ Digest-QoP }
	{ Digest-HA1 }
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.46", `
SCSCF-Restoration-Info ::= < AVP Header: 639 10415 >
	{ User-Name }
	1*{ Restoration-Info }
	[ SIP-Authentication-Scheme ]
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.49", `
Subscription-Info ::= < AVP Header: 642 10415 >
	{ Call-ID-SIP-Header }
	{ From-SIP-Header }
	{ To-SIP-Header }
	{ Record-Route }
	{ Contact }
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.50", `
Associated-Registered-Identities ::= < AVP Header: 647 10415 >
	*[ User-Name ]
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.52", `
Restoration-Info ::= < AVP Header: 649 10415 >
	{ Path }
	{ Contact }
	[ Initial-CSeq-Sequence-Number ]
	[ Call-ID-SIP-Header ]
	[ Subscription-Info ]
	[ P-CSCF-Subscription-Info ]
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.57", `
Identity-with-Emergency-Registration ::= < AVP Header: 651 10415 >
	{ User-Name }
	{ Public-Identity }
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.64", `
Allowed-WAF-WWSF-Identities ::= < AVP Header: 656 10415 >
	*[ WebRTC-Authentication-Function-Name ]
	*[ WebRTC-Web-Server-Function-Name ]
	*[ AVP ]`},
	{appCx, "TS 29.229 §6.3.70", `
P-CSCF-Subscription-Info ::= < AVP Header: 660 10415 >
	{ Call-ID-SIP-Header }
	{ From-SIP-Header }
	{ To-SIP-Header }
	{ Contact }
	*[ AVP ]`},

	{appSh, "TS 29.329 §6.3.1", `
User-Identity ::= < AVP header: 700 10415 >
	[ Public-Identity ]
	[ MSISDN ]
	*[ AVP ]`},
	{appSh, "TS 29.329 §6.3.24", `
Repository-Data-ID ::= < AVP header: 715 10415 >
	{ Service-Indication }
	{ Sequence-Number }
	*[ AVP ]`},
	{appSh, "TS 29.329 §6.3.29", `
Call-Reference-Info ::= < AVP header: 720 10415 >
	{ Call-Reference-Number }
	{ AS-Number }
	*[ AVP ]`},

	{appRx, "RFC 4006 §8.46", `
Subscription-Id ::= < AVP Header: 443 >
	{ Subscription-Id-Type }
	{ Subscription-Id-Data }`},
	{appRx, "TS 29.214 §5.3.3", `
Access-Network-Charging-Identifier ::= < AVP Header: 502 10415 >
	{ Access-Network-Charging-Identifier-Value }
	*[ Flows ]
	*[ AVP ]`},
	{appRx, "TS 29.214 §5.3.10", `
Flows ::= < AVP Header: 510 10415 >
	{ Media-Component-Number }
	*[ Flow-Number ]
	*[ Content-Version ]
	[ Final-Unit-Action ]
	[ Media-Component-Status ]
	*[ AVP ]`},
	{appRx, "TS 29.214 §5.3.16", `
Media-Component-Description ::= < AVP Header: 517 10415 >
	{ Media-Component-Number }
	*[ Media-Sub-Component ]
	[ AF-Application-Identifier ]
	[ Media-Type ]
	[ Max-Requested-Bandwidth-UL ]
	[ Max-Requested-Bandwidth-DL ]
	[ Max-Supported-Bandwidth-UL ]
	[ Max-Supported-Bandwidth-DL ]
	[ Min-Desired-Bandwidth-UL ]
	[ Min-Desired-Bandwidth-DL ]
	[ Min-Requested-Bandwidth-UL ]
	[ Min-Requested-Bandwidth-DL ]
	[ Extended-Max-Requested-BW-UL ]
	[ Extended-Max-Requested-BW-DL ]
	[ Flow-Status ]
	[ Priority-Sharing-Indicator ]
	[ Pre-emption-Capability ]
	[ Pre-emption-Vulnerability ]
	[ Reservation-Priority ]
	[ RS-Bandwidth ]
	[ RR-Bandwidth ]
	0*2[ Codec-Data ]
	[ Sharing-Key-DL ]
	[ Sharing-Key-UL ]
	[ Content-Version ]
	*[ AVP ]`},
	{appRx, "TS 29.214 §5.3.18", `
Media-Sub-Component ::= < AVP Header: 519 10415 >
	{ Flow-Number }
	0*2[ Flow-Description ]
	[ Flow-Status ]
	[ Flow-Usage ]
	[ Max-Requested-Bandwidth-UL ]
	[ Max-Requested-Bandwidth-DL ]
	[ Extended-Max-Requested-BW-UL ]
	[ Extended-Max-Requested-BW-DL ]
	[ AF-Signalling-Protocol ]
	[ ToS-Traffic-Class ]
	*[ AVP ]`},
	{appRx, "TS 29.214 §5.3.24", `
Acceptable-Service-Info ::= < AVP Header: 526 10415 >
	*[ Media-Component-Description ]
	[ Max-Requested-Bandwidth-DL ]
	[ Max-Requested-Bandwidth-UL ]
	[ Extended-Max-Requested-BW-DL ]
	[ Extended-Max-Requested-BW-UL ]
	*[ AVP ]`},
	{appRx, "TS 29.214 §5.3.27", `
Sponsored-Connectivity-Data ::= < AVP Header: 530 10415 >
	[ Sponsor-Identity ]
	[ Application-Service-Provider-Identity ]
	[ Sponsoring-Action ]
	*[ AVP ]`},
}

// Spec is the parsed specification: AVPs by identity, command ABNFs by
// (app, code, request), grouped AVP formats by identity.
type Spec struct {
	AVPs          map[diameter.AVPCode]AVPSpec
	Commands      []*ABNF
	AnswerMessage *ABNF
	Grouped       map[diameter.AVPCode]*ABNF
	byCode        map[cmdKey]*ABNF
	byShort       map[string]*ABNF
	codes         map[uint32][]AVPSpec // AVP code -> every vendor's entry
}

type cmdKey struct {
	app, code uint32
	req       bool
}

var (
	specOnce sync.Once
	spec     *Spec
	specErr  error
)

// TheSpec returns the parsed tables; it panics if a table does not parse
// (a programming error caught by the package's tests).
func TheSpec() *Spec {
	specOnce.Do(func() { spec, specErr = buildSpec() })
	if specErr != nil {
		panic(specErr)
	}
	return spec
}

// Command returns the ABNF of a command by its short name ("UAR").
func (s *Spec) Command(short string) (*ABNF, bool) {
	f, ok := s.byShort[strings.ToUpper(short)]
	return f, ok
}

// CommandFor returns the ABNF of the command (app, code, request).
func (s *Spec) CommandFor(app, code uint32, request bool) (*ABNF, bool) {
	f, ok := s.byCode[cmdKey{app, code, request}]
	return f, ok
}

// CommandNames lists the short names of every command in the table.
func (s *Spec) CommandNames() []string {
	out := make([]string, 0, len(s.Commands))
	for _, c := range s.Commands {
		out = append(out, c.Name)
	}
	return out
}

func buildSpec() (*Spec, error) {
	s := &Spec{
		AVPs:    map[diameter.AVPCode]AVPSpec{},
		Grouped: map[diameter.AVPCode]*ABNF{},
		byCode:  map[cmdKey]*ABNF{},
		byShort: map[string]*ABNF{},
		codes:   map[uint32][]AVPSpec{},
	}
	for _, a := range AVPs {
		if old, dup := s.AVPs[a.ID()]; dup {
			return nil, fmt.Errorf("diamtest: AVP %s listed twice (%s)", a, old)
		}
		s.AVPs[a.ID()] = a
		s.codes[a.Code] = append(s.codes[a.Code], a)
	}
	for _, c := range commandText {
		f, err := s.parse(c.text, appOfCommand(c.text))
		if err != nil {
			return nil, fmt.Errorf("diamtest: %s: %w", c.short, err)
		}
		f.Name, f.Ref = c.short, c.ref
		k := cmdKey{f.App, f.Code, f.Request}
		if _, dup := s.byCode[k]; dup {
			return nil, fmt.Errorf("diamtest: command %s listed twice", c.short)
		}
		s.byCode[k], s.byShort[c.short] = f, f
		s.Commands = append(s.Commands, f)
	}
	am, err := s.parse(answerMessageText, appBase)
	if err != nil {
		return nil, fmt.Errorf("diamtest: answer-message: %w", err)
	}
	am.Name, am.Ref = "answer-message", "RFC 6733 §7.2"
	s.AnswerMessage = am
	for _, g := range groupedText {
		f, err := s.parse(g.text, g.app)
		if err != nil {
			return nil, fmt.Errorf("diamtest: grouped %s: %w", firstLine(g.text), err)
		}
		f.Ref = g.ref
		id, ok := s.lookup(f.Name, g.app)
		if !ok {
			return nil, fmt.Errorf("diamtest: grouped AVP %q is not in the AVP table", f.Name)
		}
		if d := s.AVPs[id]; d.Type != Grouped || d.Code != f.Code {
			return nil, fmt.Errorf("diamtest: grouped format %s has code %d, table says %s %s", f.Name, f.Code, d, d.Type)
		}
		s.Grouped[id] = f
	}
	return s, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// appOfCommand reads the application id from a command header line (0 when
// the header names none: base protocol).
func appOfCommand(text string) uint32 {
	h := firstLine(text)
	i, j := strings.Index(h, "Header:"), strings.LastIndexByte(h, '>')
	if i < 0 || j < i {
		return 0
	}
	parts := strings.Split(h[i+len("Header:"):j], ",")
	if len(parts) > 1 {
		if n, err := strconv.ParseUint(strings.TrimSpace(parts[len(parts)-1]), 10, 32); err == nil {
			return uint32(n)
		}
	}
	return 0
}

// lookup resolves an AVP name as used in an ABNF of app: the entry from the
// application's own specification first (Sh's "User-Data" is 702), then any
// other.
func (s *Spec) lookup(name string, app uint32) (diameter.AVPCode, bool) {
	var found []AVPSpec
	for _, a := range AVPs {
		if a.Name == name {
			found = append(found, a)
		}
	}
	switch len(found) {
	case 0:
		return 0, false
	case 1:
		return found[0].ID(), true
	}
	doc := appDoc[app]
	for _, a := range found {
		if strings.HasPrefix(a.Ref, doc) {
			return a.ID(), true
		}
	}
	return found[0].ID(), true
}

// parse reads one ABNF in the specifications' notation: a header line
// "<Name> ::= < Diameter Header: code[, REQ][, PXY][, app] >" or
// "Name ::= < AVP Header: code [vendor] >", then one occurrence per line:
// "< X >", "{ X }", "[ X ]", optionally preceded by "n*m" repetition.
func (s *Spec) parse(text string, app uint32) (*ABNF, error) {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	f := &ABNF{App: app, Text: strings.TrimSpace(text), rulesMap: map[diameter.AVPCode]*Occurrence{}}
	head := lines[0]
	name, def, ok := strings.Cut(head, "::=")
	if !ok {
		return nil, fmt.Errorf("header %q lacks ::=", head)
	}
	f.Long = strings.Trim(strings.TrimSpace(name), "<> ")
	f.Name = f.Long
	def = strings.TrimSpace(def)
	def = strings.TrimPrefix(def, "<")
	def = strings.TrimSuffix(def, ">")
	kind, args, ok := strings.Cut(def, ":")
	if !ok {
		return nil, fmt.Errorf("header %q", head)
	}
	kind = strings.ToLower(strings.TrimSpace(kind))
	switch kind {
	case "diameter header":
		for i, p := range strings.Split(args, ",") {
			p = strings.Trim(strings.TrimSpace(p), "[]")
			switch {
			case i == 0:
				n, err := strconv.ParseUint(p, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("command code %q", p)
				}
				f.Code = uint32(n)
			case p == "REQ":
				f.Request = true
			case p == "PXY":
				f.Proxy = true
			case p == "ERR" || p == "":
			default:
				n, err := strconv.ParseUint(p, 10, 32)
				if err != nil || uint32(n) != app {
					return nil, fmt.Errorf("header element %q", p)
				}
			}
		}
	case "avp header":
		fs := strings.Fields(args)
		if len(fs) == 0 {
			return nil, fmt.Errorf("AVP header %q", head)
		}
		n, err := strconv.ParseUint(fs[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("AVP code %q", fs[0])
		}
		f.Code = uint32(n)
	default:
		return nil, fmt.Errorf("header %q", head)
	}
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		o, err := parseOccurrence(l)
		if err != nil {
			return nil, err
		}
		if o.Name == "AVP" {
			f.AnyAVP = true
			continue
		}
		id, ok := s.lookup(o.Name, app)
		if !ok {
			return nil, fmt.Errorf("AVP %q of %q is not in the AVP table", o.Name, l)
		}
		o.AVP = id
		if _, dup := f.rulesMap[id]; dup {
			return nil, fmt.Errorf("AVP %q listed twice", o.Name)
		}
		f.Rules = append(f.Rules, o)
	}
	for i := range f.Rules {
		f.rulesMap[f.Rules[i].AVP] = &f.Rules[i]
	}
	return f, nil
}

// parseOccurrence reads "[n]*[m] <X>|{X}|[X]" (RFC 6733 §3.2).
func parseOccurrence(l string) (Occurrence, error) {
	var o Occurrence
	i := strings.IndexAny(l, "<{[")
	if i < 0 {
		return o, fmt.Errorf("occurrence %q", l)
	}
	rep := strings.ReplaceAll(l[:i], " ", "")
	body := strings.TrimSpace(l[i:])
	open, close := body[0], body[len(body)-1]
	o.Name = strings.TrimSpace(body[1 : len(body)-1])
	switch {
	case open == '<' && close == '>':
		o.Fixed, o.Required = true, true
	case open == '{' && close == '}':
		o.Required = true
	case open == '[' && close == ']':
	default:
		return o, fmt.Errorf("occurrence %q", l)
	}
	o.Min, o.Max = 0, 1
	if o.Required {
		o.Min = 1
	}
	if rep != "" {
		lo, hi, star := strings.Cut(rep, "*")
		if !star {
			return o, fmt.Errorf("repetition %q", l)
		}
		o.Max = 0
		if lo != "" {
			n, err := strconv.Atoi(lo)
			if err != nil {
				return o, fmt.Errorf("repetition %q", l)
			}
			o.Min = n
		}
		if hi != "" {
			n, err := strconv.Atoi(hi)
			if err != nil {
				return o, fmt.Errorf("repetition %q", l)
			}
			o.Max = n
		}
		if o.Required && lo == "" {
			o.Min = 1 // "*{ X }": at least one (RFC 6733 §3.2: "{ }" is required)
		}
		o.Required = o.Min > 0
	}
	return o, nil
}

// AVPByCode returns every table entry with code (one per vendor).
func (s *Spec) AVPByCode(code uint32) []AVPSpec { return s.codes[code] }

// Name returns the table name of id, or "AVP <code>/<vendor>".
func (s *Spec) Name(id diameter.AVPCode) string {
	if a, ok := s.AVPs[id]; ok {
		return a.String()
	}
	return fmt.Sprintf("AVP %d (vendor %d)", id.Code(), id.Vendor())
}

// sortedIDs is the table in code order, for stable output.
func (s *Spec) sortedIDs() []diameter.AVPCode {
	ids := make([]diameter.AVPCode, 0, len(s.AVPs))
	for id := range s.AVPs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}
