// Package rfc4475 holds the SIP torture test messages of RFC 4475, written
// from the RFC's text in its own notation (testdata/*.sip, expanded by
// Expand), with the treatment the RFC describes for each of them, plus
// invalid variants that RFC 4475 does not spell out (testdata/variants:
// duplicated single-value header fields, out-of-range numbers, a NUL inside
// a header field, Request-URIs of other schemes).
//
// pkg/sipproxy checks its validating layer against every case; e2e sends
// every case to the P-CSCF, I-CSCF and S-CSCF and checks their answers.
package rfc4475

import (
	"embed"
	"fmt"
	"slices"
)

//go:embed testdata/*.sip testdata/variants/*.sip
var files embed.FS

// Want is what a SIP proxy does with a message.
type Want int

const (
	// Accept: the message passes parsing and validation and reaches the
	// function's logic, which may answer anything but a validation error
	// (400, 413, 416, 420, 505, 513) or may forward it (a 100 Trying or
	// another provisional proves it passed).
	Accept Want = iota
	// Reject: answered with one of Case.Codes by the proxy core before the
	// function's logic sees it.
	Reject
	// Drop: no answer at all (responses not addressed to us, messages with
	// nowhere to answer to).
	Drop
)

func (w Want) String() string {
	switch w {
	case Accept:
		return "accept"
	case Reject:
		return "reject"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("Want(%d)", int(w))
}

// Case is one torture message and its expected treatment by a proxy.
type Case struct {
	Name    string // RFC 4475 name (the file name), or the variant's
	Section string // RFC 4475 section; "" for variants
	Valid   bool   // RFC 4475 calls the message valid
	Want    Want
	Codes   []int  // Reject: the acceptable status codes
	Note    string // what the message exercises and why the treatment
}

// Message returns the wire bytes of the case.
func (c Case) Message() []byte {
	dir := "testdata/"
	if c.Section == "" {
		dir = "testdata/variants/"
	}
	text, err := files.ReadFile(dir + c.Name + ".sip")
	if err != nil {
		panic(err) // every case has its file (TestEveryFileHasACase)
	}
	b, err := Expand(string(text))
	if err != nil {
		panic(fmt.Sprintf("rfc4475: %s: %v", c.Name, err))
	}
	return b
}

// Cases returns every case: the 49 messages of RFC 4475 in the RFC's order,
// then the variants.
func Cases() []Case { return slices.Clone(cases) }

func accept(name, section, note string) Case {
	return Case{Name: name, Section: section, Valid: true, Want: Accept, Note: note}
}

func reject(name, section string, valid bool, note string, codes ...int) Case {
	return Case{Name: name, Section: section, Valid: valid, Want: Reject, Codes: codes, Note: note}
}

func drop(name, section string, valid bool, note string) Case {
	return Case{Name: name, Section: section, Valid: valid, Want: Drop, Note: note}
}

var cases = []Case{
	// 3.1.1 Valid messages (parser tests).
	accept("wsinv", "3.1.1.1", "line folding, white space around every separator (tag = x), compact forms, escaped quotes in display names, unknown headers"),
	accept("intmeth", "3.1.1.2", "unknown method made of every token character, case-sensitive (CSeq repeats it), quoted-pairs of BEL, NUL, DEL in a display name, UTF-8"),
	accept("esc01", "3.1.1.3", "valid % escapes in Request-URI, To, From, Contact"),
	accept("escnull", "3.1.1.4", "%00 escapes in URIs"),
	accept("esc02", "3.1.1.5", "% where it is not an escape: method RE%47IST%45R (unknown method), header name C%6Fntact (unknown header)"),
	accept("lwsdisp", "3.1.1.6", "no white space between display name and <"),
	accept("longreq", "3.1.1.7", "long header values, 35 Via entries under several compact and case forms"),
	accept("dblreq", "3.1.1.8", "a second request after the first one in the same datagram: octets beyond Content-Length are discarded (RFC 3261 §18.3)"),
	accept("semiuri", "3.1.1.9", "; in the user part of the Request-URI, folded Accept"),
	accept("transports", "3.1.1.10", "Via entries of transports we do not speak (SCTP, TLS, UNKNOWN)"),
	accept("mpart01", "3.1.1.11", "multipart/mixed body with binary content (CR, LF, NUL octets; the binary part is ours, of the kind of the RFC's S/MIME signature)"),
	drop("unreason", "3.1.1.12", true, "valid response with a UTF-8 reason phrase; its top Via is not ours (RFC 3261 §18.1.2)"),
	drop("noreason", "3.1.1.13", true, "valid response with an empty reason phrase; its top Via is not ours (RFC 3261 §18.1.2)"),

	// 3.1.2 Invalid messages.
	reject("badinv01", "3.1.2.1", false, "empty parameters in Via and Contact (;;,;,,)", 400),
	reject("clerr", "3.1.2.2", false, "Content-Length larger than the datagram (RFC 3261 §18.3)", 400),
	reject("ncl", "3.1.2.3", false, "negative Content-Length", 400),
	reject("scalar02", "3.1.2.4", false, "CSeq number above 2**31-1, Max-Forwards above 255, Expires above 2**32-1", 400),
	drop("scalarlg", "3.1.2.5", false, "response with out-of-range CSeq, Retry-After, Warning code"),
	reject("quotbal", "3.1.2.6", false, "unterminated quoted string in the To display name", 400),
	reject("ltgtruri", "3.1.2.7", false, "Request-URI enclosed in <>", 400),
	reject("lwsruri", "3.1.2.8", false, "white space inside the Request-URI", 400),
	reject("lwsstart", "3.1.2.9", false, "two SP between the Request-Line elements", 400),
	reject("trws", "3.1.2.10", false, "SP after SIP/2.0 at the end of the Request-Line", 400),
	reject("escruri", "3.1.2.11", false, "escaped headers (?Route=) in the Request-URI (RFC 3261 §19.1.5)", 400),
	reject("baddate", "3.1.2.12", false, "Date in a time zone other than GMT (RFC 3261 §25.1 SIP-date)", 400),
	reject("regbadct", "3.1.2.13", false, "Contact URI with ? and ; not enclosed in <> (RFC 3261 §20)", 400),
	reject("badaspec", "3.1.2.14", false, "spaces inside <> around the addr-spec; RFC 4475 lets a strict parser answer 400", 400),
	reject("baddn", "3.1.2.15", false, "display name with a comma, not quoted", 400),
	reject("badvers", "3.1.2.16", false, "protocol version SIP/7.0: 505, answered as SIP/2.0", 505),
	reject("mismatch01", "3.1.2.17", false, "CSeq method differs from the Request-Line method", 400),
	reject("mismatch02", "3.1.2.18", false, "unknown method with a different CSeq method: 400 or 501", 400, 501),
	drop("bigcode", "3.1.2.19", false, "response code 4294967301"),

	// 3.2 Transaction layer semantics.
	accept("badbranch", "3.2.1", "branch made of the magic cookie only: valid, matched as an RFC 2543 transaction"),

	// 3.3 Application layer semantics.
	reject("insuf", "3.3.1", false, "no Call-ID, From, To, Max-Forwards", 400),
	reject("unkscm", "3.3.2", true, "Request-URI of an unknown scheme: 416 (RFC 3261 §16.3 step 2)", 416),
	reject("novelsc", "3.3.3", true, "Request-URI of the soap.beep scheme: 416", 416),
	accept("unksm2", "3.3.4", "unknown schemes in To, From, Contact: not a parsing error"),
	reject("bext01", "3.3.5", true, "Proxy-Require with option tags we do not support: 420 (RFC 3261 §16.3 step 5)", 420),
	accept("invut", "3.3.6", "unknown Content-Type: a proxy does not look at the body"),
	accept("regaut01", "3.3.7", "Authorization of an unknown scheme"),
	reject("multi01", "3.3.8", false, "two Call-ID, CSeq, To, From and Max-Forwards", 400),
	reject("mcl01", "3.3.9", false, "two Content-Length", 400),
	drop("bcast", "3.3.10", true, "200 OK whose top Via is not ours (then 255.255.255.255)"),
	reject("zeromf", "3.3.11", true, "Max-Forwards 0 on an OPTIONS not addressed to us: 483 (RFC 3261 §16.3 step 3)", 483),
	accept("cparam01", "3.3.12", "Contact parameter outside <>: a header parameter"),
	accept("cparam02", "3.3.13", "URI parameter inside <>"),
	accept("regescrt", "3.3.14", "escaped Route header inside a Contact in <>"),
	accept("sdp01", "3.3.15", "Accept of a type nobody knows"),

	// 3.4 Backward compatibility.
	accept("inv2543", "3.4.1", "RFC 2543 INVITE: no From tag, no branch, no Max-Forwards, no Content-Length (UDP)"),

	// Variants (not in RFC 4475).
	reject("httpruri", "", false, "http: Request-URI: 416", 416),
	reject("colonruri", "", false, "Request-URI \"::::\" (no scheme)", 400),
	reject("dupcallid", "", false, "two Call-ID", 400),
	reject("dupcseq", "", false, "two CSeq", 400),
	reject("dupfrom", "", false, "two From (one in compact form)", 400),
	reject("dupto", "", false, "two To (one in compact form)", 400),
	reject("dupmaxfwd", "", false, "two Max-Forwards", 400),
	reject("dupcl", "", false, "two Content-Length (one in compact form)", 400),
	reject("nulheader", "", false, "NUL octet inside a header value (not in a quoted-pair)", 400),
	reject("nulfromtag", "", false, "NUL octet inside the From tag", 400),
	reject("viaport", "", false, "Via sent-by port 99999999", 400),
	reject("ruriport", "", false, "Request-URI port 99999999", 400),
	reject("contactport", "", false, "Contact port 99999999", 400),
	reject("expires", "", false, "Expires above 2**32-1", 400),
	reject("maxfwd256", "", false, "Max-Forwards 256", 400),
	reject("clhex", "", false, "Content-Length not a number", 400),
	accept("proxyreqok", "", "Proxy-Require: sec-agree is understood (TS 24.229 §5.2.2)"),
}
