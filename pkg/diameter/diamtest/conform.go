package diamtest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/fiorix/go-diameter/v4/diam/dict"

	"github.com/imscore/imscore/pkg/diameter"
)

// Violation is one deviation of a message from the specification tables.
type Violation struct {
	Command string // short name ("UAA"), or "cmd <code> app <id>" when unknown
	Path    string // AVP path ("SIP-Auth-Data-Item(612, vendor 10415) > Integrity-Key(626, vendor 10415)"); "" for the header
	Check   string // which rule: "header-p-bit", "avp-m-bit", "missing", ...
	Ref     string // clause of the rule
	Msg     string
}

func (v Violation) String() string {
	var b strings.Builder
	b.WriteString(v.Command)
	if v.Path != "" {
		b.WriteString(" ")
		b.WriteString(v.Path)
	}
	fmt.Fprintf(&b, ": %s [%s", v.Msg, v.Check)
	if v.Ref != "" {
		b.WriteString("; ")
		b.WriteString(v.Ref)
	}
	b.WriteString("]")
	return b.String()
}

// Header flag bits (RFC 6733 §3) and AVP flag bits (RFC 6733 §4.1).
const (
	flagR = 0x80
	flagP = 0x40
	flagE = 0x20
	flagT = 0x10

	avpV = 0x80
	avpM = 0x40
	avpP = 0x20
)

// rawAVP is one AVP as it is on the wire.
type rawAVP struct {
	Code   uint32
	Flags  uint8
	Vendor uint32 // only meaningful with the V bit
	Data   []byte
	Pad    []byte
	Kids   []*rawAVP // parsed children of a grouped AVP
}

func (a *rawAVP) id() diameter.AVPCode {
	if a.Flags&avpV == 0 {
		return diameter.AVPOf(a.Code, 0)
	}
	return diameter.AVPOf(a.Code, a.Vendor)
}

// parseAVPs splits b into AVPs (RFC 6733 §4.1); an error names the first
// malformed one.
func parseAVPs(b []byte) ([]*rawAVP, error) {
	var out []*rawAVP
	for off := 0; off < len(b); {
		if len(b)-off < 8 {
			return out, fmt.Errorf("%d trailing bytes at offset %d, shorter than an AVP header", len(b)-off, off)
		}
		a := &rawAVP{Code: binary.BigEndian.Uint32(b[off:]), Flags: b[off+4]}
		l := int(binary.BigEndian.Uint32(b[off+4:]) & 0xffffff)
		hl := 8
		if a.Flags&avpV != 0 {
			hl = 12
			if len(b)-off < 12 {
				return out, fmt.Errorf("AVP %d at offset %d: V bit set but no room for a Vendor-Id", a.Code, off)
			}
			a.Vendor = binary.BigEndian.Uint32(b[off+8:])
		}
		if l < hl || off+l > len(b) {
			return out, fmt.Errorf("AVP %d at offset %d: length %d (header %d, %d bytes left)", a.Code, off, l, hl, len(b)-off)
		}
		a.Data = b[off+hl : off+l]
		padded := (l + 3) &^ 3
		if off+padded > len(b) {
			return out, fmt.Errorf("AVP %d at offset %d: length %d, padding runs past the end", a.Code, off, l)
		}
		a.Pad = b[off+l : off+padded]
		out = append(out, a)
		off += padded
	}
	return out, nil
}

// encodeAVPs is the inverse of parseAVPs (children of grouped AVPs are
// encoded from Kids when set, otherwise Data is used as is).
func encodeAVPs(avps []*rawAVP) []byte {
	var buf bytes.Buffer
	for _, a := range avps {
		data := a.Data
		if a.Kids != nil {
			data = encodeAVPs(a.Kids)
		}
		hl := 8
		if a.Flags&avpV != 0 {
			hl = 12
		}
		var h [12]byte
		binary.BigEndian.PutUint32(h[0:], a.Code)
		binary.BigEndian.PutUint32(h[4:], uint32(hl+len(data)))
		h[4] = a.Flags
		binary.BigEndian.PutUint32(h[8:], a.Vendor)
		buf.Write(h[:hl])
		buf.Write(data)
		buf.Write(make([]byte, (4-len(data)%4)%4))
	}
	return buf.Bytes()
}

var (
	parserOnce sync.Once
	allParser  *dict.Parser
	parserErr  error
)

func allAppsParser() (*dict.Parser, error) {
	parserOnce.Do(func() {
		allParser, parserErr = diameter.NewParser(diameter.AppCx, diameter.AppSh, diameter.AppRx)
	})
	return allParser, parserErr
}

// IsRequest reports whether wire holds a request (R bit).
func IsRequest(wire []byte) bool { return len(wire) > 4 && wire[4]&flagR != 0 }

// AppID returns the header's Application-Id of wire.
func AppID(wire []byte) uint32 {
	if len(wire) < 12 {
		return 0
	}
	return binary.BigEndian.Uint32(wire[8:12])
}

// CommandName returns the short name ("UAR", "CEA") of the message in
// wire, or "cmd <code> app <id> request|answer" when the tables lack it.
func CommandName(wire []byte) string {
	if len(wire) < 20 {
		return "short message"
	}
	code := binary.BigEndian.Uint32(wire[4:8]) & 0xffffff
	app := binary.BigEndian.Uint32(wire[8:12])
	req := wire[4]&flagR != 0
	if f, ok := TheSpec().CommandFor(app, code, req); ok {
		return f.Name
	}
	kind := "answer"
	if req {
		kind = "request"
	}
	return fmt.Sprintf("cmd %d app %d %s", code, app, kind)
}

// checker accumulates violations of one message.
type checker struct {
	s    *Spec
	cmd  string
	app  uint32
	code uint32
	out  []Violation
	vapp bool // Cx/Sh/Rx: 3GPP vendor-specific application
}

func (c *checker) add(path, check, ref, format string, args ...any) {
	c.out = append(c.out, Violation{Command: c.cmd, Path: path, Check: check, Ref: ref, Msg: fmt.Sprintf(format, args...)})
}

// Check decodes one Diameter message (header and body, as written on the
// wire) and reports every deviation from the specification tables: header
// (version, length, R/P/E/T and reserved bits), the command's ABNF
// (fixed-position Session-Id, required AVPs, maximum occurrences, AVPs not
// allowed where the ABNF has no *[AVP]; answers with the E bit follow the
// answer-message ABNF), every AVP down grouped ones (known to the table,
// Vendor-Id, V and M bits per the table, P bit clear, reserved bits clear,
// data of the table's type, zero padding), grouped AVP ABNFs, and the
// semantics: Result-Code or Experimental-Result (exactly one) in answers,
// E bit iff a 3xxx Result-Code, Auth-Session-State NO_STATE_MAINTAINED in
// Cx/Sh requests, Vendor-Specific-Application-Id {Vendor-Id 10415,
// Auth-Application-Id = header application} in Cx/Sh messages,
// Auth-Application-Id = header application, Experimental-Result Vendor-Id
// 10415 in 3GPP applications, Session-Id of requests starting with the
// sender's Origin-Host. It also decodes the message with pkg/diameter's
// parser holding every application. No violation: nil.
func Check(wire []byte) []Violation {
	s := TheSpec()
	c := &checker{s: s, cmd: CommandName(wire)}
	if len(wire) < 20 {
		c.add("", "header-length", "RFC 6733 §3", "%d bytes, shorter than the 20-byte header", len(wire))
		return c.out
	}
	if wire[0] != 1 {
		c.add("", "header-version", "RFC 6733 §3", "version %d, want 1", wire[0])
	}
	if l := int(binary.BigEndian.Uint32(wire[0:4]) & 0xffffff); l != len(wire) || l%4 != 0 {
		c.add("", "header-length", "RFC 6733 §3", "Message Length %d, message has %d bytes (must match and be a multiple of 4)", l, len(wire))
	}
	flags := wire[4]
	code := binary.BigEndian.Uint32(wire[4:8]) & 0xffffff
	c.app = binary.BigEndian.Uint32(wire[8:12])
	c.code = code
	c.vapp = c.app == appCx || c.app == appSh || c.app == appRx
	req := flags&flagR != 0

	f, known := s.CommandFor(c.app, code, req)
	// An error answer (E bit) to a command we do not know, e.g. 3001
	// DIAMETER_COMMAND_UNSUPPORTED, is an answer-message (RFC 6733 §7.2):
	// check it as such; no dictionary can decode its command.
	errorAnswer := !req && flags&flagE != 0
	if !known && !errorAnswer {
		c.add("", "unknown-command", "", "command %d of application %d (R=%v) is not in the specification table", code, c.app, req)
	}
	if known {
		if p, err := allAppsParser(); err != nil {
			c.add("", "decode", "", "cannot build the dictionary parser: %v", err)
		} else if _, err := diameter.Decode(wire, p); err != nil {
			c.add("", "decode", "", "pkg/diameter cannot decode the message: %v", err)
		}
	}

	avps, err := parseAVPs(wire[20:])
	if err != nil {
		c.add("", "avp-framing", "RFC 6733 §4.1", "%v", err)
	}

	// Header bits (RFC 6733 §3).
	if flags&0x0f != 0 {
		c.add("", "header-reserved-bits", "RFC 6733 §3", "reserved command flag bits set (flags 0x%02x)", flags)
	}
	if known && (flags&flagP != 0) != f.Proxy {
		c.add("", "header-p-bit", f.Ref, "P bit %v, the command ABNF says %s", flags&flagP != 0, map[bool]string{true: "PXY (set)", false: "no PXY (clear)"}[f.Proxy])
	}
	if req && flags&flagE != 0 {
		c.add("", "header-e-bit", "RFC 6733 §3", "E bit set in a request")
	}
	if !req && flags&flagT != 0 {
		c.add("", "header-t-bit", "RFC 6733 §3", "T bit set in an answer")
	}

	// Every AVP, recursively.
	c.walk(avps, "", false)

	// The command's ABNF; an answer with the E bit follows answer-message.
	switch {
	case errorAnswer:
		c.occurrences(s.AnswerMessage, avps, "")
	case known:
		c.occurrences(f, avps, "")
	}

	c.semantics(avps, req, flags)
	return c.out
}

// walk checks each AVP of list (path: parent path) and recurses into
// grouped ones. Inside Failed-AVP (inFailed) only the framing is checked:
// it carries copies of the AVPs a peer got wrong.
func (c *checker) walk(list []*rawAVP, path string, inFailed bool) {
	for _, a := range list {
		c.checkAVP(a, path, inFailed)
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + " > " + name
}

func (c *checker) checkAVP(a *rawAVP, parent string, inFailed bool) {
	s := c.s
	id := a.id()
	d, known := s.AVPs[id]
	name := s.Name(id)
	if !known {
		name = fmt.Sprintf("AVP %d (flags 0x%02x, vendor %d)", a.Code, a.Flags, a.Vendor)
	}
	path := join(parent, name)
	if !inFailed {
		if a.Flags&0x1f != 0 {
			c.add(path, "avp-reserved-bits", "RFC 6733 §4.1", "reserved AVP flag bits set (flags 0x%02x)", a.Flags)
		}
		if a.Flags&avpP != 0 {
			c.add(path, "avp-p-bit", "RFC 6733 §4.1", "P bit set (it is reserved and SHOULD be 0)")
		}
		for _, b := range a.Pad {
			if b != 0 {
				c.add(path, "avp-padding", "RFC 6733 §4", "non-zero padding bytes % x", a.Pad)
				break
			}
		}
	}
	if !known {
		if !inFailed {
			c.unknownAVP(a, path)
		}
		return // its data type is unknown: nothing to descend into
	}
	if !inFailed {
		if d.V == Must && a.Flags&avpV == 0 {
			c.add(path, "avp-v-bit", d.Ref, "V bit clear, must be set (Vendor-Id %d)", d.Vendor)
		}
		if d.V == MustNot && a.Flags&avpV != 0 {
			c.add(path, "avp-v-bit", d.Ref, "V bit set (Vendor-Id %d), must not be set", a.Vendor)
		}
		if d.M == Must && a.Flags&avpM == 0 {
			c.add(path, "avp-m-bit", d.Ref, "M bit clear, must be set")
		}
		if d.M == MustNot && a.Flags&avpM != 0 {
			c.add(path, "avp-m-bit", d.Ref, "M bit set, must not be set")
		}
		c.checkData(a, d, path)
	}
	if d.Type != Grouped {
		return
	}
	kids, err := parseAVPs(a.Data)
	if err != nil {
		c.add(path, "avp-grouped-framing", "RFC 6733 §4.4", "grouped data does not parse as AVPs: %v", err)
		return
	}
	failed := inFailed || id == diameter.AVPFailedAVP
	c.walk(kids, path, failed)
	if failed {
		if id == diameter.AVPFailedAVP && !inFailed && len(kids) == 0 {
			c.add(path, "missing", "RFC 6733 §7.5", "Failed-AVP holds no AVP (1* {AVP})")
		}
		return
	}
	if g, ok := s.Grouped[id]; ok {
		c.occurrences(g, kids, path)
	}
	c.groupedSemantics(id, kids, path)
}

// unknownAVP reports an AVP the table lacks, naming the table's entries
// with the same code when it is a vendor mix-up.
func (c *checker) unknownAVP(a *rawAVP, path string) {
	others := c.s.AVPByCode(a.Code)
	if len(others) == 0 {
		m := ""
		if a.Flags&avpM != 0 {
			m = " with the M bit (a receiver must reject the message, RFC 6733 §4.1)"
		}
		c.add(path, "unknown-avp", "", "AVP code %d vendor %d is not in the specification table%s", a.Code, a.Vendor, m)
		return
	}
	var names []string
	for _, o := range others {
		v := "V must not be set, no Vendor-Id"
		if o.Vendor != 0 {
			v = fmt.Sprintf("V set, Vendor-Id %d", o.Vendor)
		}
		names = append(names, fmt.Sprintf("%s (%s)", o, v))
	}
	got := "V bit clear (vendor 0)"
	if a.Flags&avpV != 0 {
		got = fmt.Sprintf("V bit set, Vendor-Id %d", a.Vendor)
	}
	c.add(path, "avp-vendor", others[0].Ref, "code %d sent with %s; the specification defines code %d only as %s",
		a.Code, got, a.Code, strings.Join(names, ", "))
}

// checkData checks that the data decodes as the table's type (RFC 6733
// §4.2, §4.3).
func (c *checker) checkData(a *rawAVP, d AVPSpec, path string) {
	n := len(a.Data)
	bad := func(format string, args ...any) {
		c.add(path, "avp-data", "RFC 6733 §4.2-4.3; "+d.Ref, "%s: %s", d.Type, fmt.Sprintf(format, args...))
	}
	switch d.Type {
	case Integer32, Unsigned32, Float32, Enumerated, Time:
		if n != 4 {
			bad("data length %d, want 4", n)
		}
	case Integer64, Unsigned64, Float64:
		if n != 8 {
			bad("data length %d, want 8", n)
		}
	case Address:
		switch {
		case n < 2:
			bad("data length %d, shorter than the address family", n)
		case binary.BigEndian.Uint16(a.Data) == 1 && n != 6:
			bad("IPv4 address with %d address bytes, want 4", n-2)
		case binary.BigEndian.Uint16(a.Data) == 2 && n != 18:
			bad("IPv6 address with %d address bytes, want 16", n-2)
		}
	case UTF8String:
		if !utf8.Valid(a.Data) {
			bad("not valid UTF-8: % x", a.Data)
		}
	case DiameterIdentity:
		if n == 0 {
			bad("empty")
		}
		for _, ch := range a.Data {
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '-' || ch == '_') {
				bad("%q is not an FQDN or realm", a.Data)
				break
			}
		}
	case DiameterURI:
		if !bytes.HasPrefix(a.Data, []byte("aaa://")) && !bytes.HasPrefix(a.Data, []byte("aaas://")) {
			bad("%q does not start with aaa:// or aaas://", a.Data)
		}
	case IPFilterRule:
		if !bytes.HasPrefix(a.Data, []byte("permit ")) && !bytes.HasPrefix(a.Data, []byte("deny ")) {
			bad("%q does not start with \"permit \" or \"deny \"", a.Data)
		}
	}
	c.checkAddressData(a, d, path)
}

// checkAddressData checks the OctetString layout of the RFC 7155 address
// AVPs: Framed-IP-Address holds an IPv4 address (4 octets, as the RADIUS
// attribute), Framed-IPv6-Prefix the RADIUS layout of RFC 3162 §2.3:
// Reserved (0), Prefix-Length (0-128), then at most 16 prefix octets that
// hold the whole prefix and nothing set past it.
func (c *checker) checkAddressData(a *rawAVP, d AVPSpec, path string) {
	n := len(a.Data)
	switch d.ID() {
	case diameter.AVPFramedIPAddress:
		if n != 4 {
			c.add(path, "avp-data", d.Ref, "%d octets, an IPv4 address has 4", n)
		}
	case diameter.AVPFramedIPv6Prefix:
		ref := d.Ref + "; RFC 3162 §2.3"
		if n < 2 || n > 18 {
			c.add(path, "avp-data", ref, "%d octets, want Reserved, Prefix-Length and up to 16 prefix octets (2-18)", n)
			return
		}
		bits, prefix := int(a.Data[1]), a.Data[2:]
		switch {
		case a.Data[0] != 0:
			c.add(path, "avp-data", ref, "Reserved octet %d, must be 0", a.Data[0])
		case bits > 128:
			c.add(path, "avp-data", ref, "Prefix-Length %d, at most 128", bits)
		case 8*len(prefix) < bits:
			c.add(path, "avp-data", ref, "Prefix-Length %d with %d prefix octets", bits, len(prefix))
		default:
			for i, b := range prefix {
				keep := bits - 8*i // prefix bits in this octet
				if keep < 8 && (keep <= 0 && b != 0 || keep > 0 && b&(0xff>>keep) != 0) {
					c.add(path, "avp-data", ref, "bits set past Prefix-Length %d (octet %d = 0x%02x)", bits, i, b)
					break
				}
			}
		}
	}
}

// occurrences checks list against an ABNF: fixed-position AVPs first,
// required ones present, counts within bounds, unlisted AVPs only with
// *[ AVP ].
func (c *checker) occurrences(f *ABNF, list []*rawAVP, path string) {
	counts := map[diameter.AVPCode]int{}
	for i, a := range list {
		id := a.id()
		counts[id]++
		r, listed := f.Rule(id)
		switch {
		case listed && r.Fixed && i != 0:
			c.add(join(path, c.s.Name(id)), "fixed-position", f.Ref, "< %s > must be the first AVP of %s, it is AVP #%d", r.Name, f.Name, i+1)
		case !listed && !f.AnyAVP:
			c.add(join(path, c.s.Name(id)), "not-allowed", f.Ref, "not allowed in %s (its ABNF lists the AVPs it may hold and has no *[ AVP ])", f.Name)
		}
	}
	for _, r := range f.Rules {
		n := counts[r.AVP]
		where := f.Name
		if n < r.Min {
			if r.Min == 1 {
				c.add(path, "missing", f.Ref, "%s lacks required %s", where, c.s.Name(r.AVP))
			} else {
				c.add(path, "missing", f.Ref, "%s holds %d %s, at least %d required", where, n, c.s.Name(r.AVP), r.Min)
			}
		}
		if r.Max > 0 && n > r.Max {
			c.add(path, "too-many", f.Ref, "%s holds %d %s, at most %d allowed", where, n, c.s.Name(r.AVP), r.Max)
		}
	}
}

func find(list []*rawAVP, id diameter.AVPCode) []*rawAVP {
	var out []*rawAVP
	for _, a := range list {
		if a.id() == id {
			out = append(out, a)
		}
	}
	return out
}

func u32(a *rawAVP) (uint32, bool) {
	if len(a.Data) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(a.Data), true
}

// semantics checks the rules that are not expressed by an ABNF.
func (c *checker) semantics(avps []*rawAVP, req bool, flags uint8) {
	s := c.s
	rcs := find(avps, diameter.AVPResultCode)
	ers := find(avps, diameter.AVPExperimentalResult)
	if !req {
		if len(rcs)+len(ers) != 1 {
			c.add("", "result", "RFC 6733 §7.1, §7.6", "an answer carries exactly one Result-Code or Experimental-Result; this one has %d Result-Code and %d Experimental-Result", len(rcs), len(ers))
		}
		e := flags&flagE != 0
		proto := false
		for _, rc := range rcs {
			if v, ok := u32(rc); ok {
				if v >= 3000 && v < 4000 {
					proto = true
				}
				if v < 1000 || v > 5999 {
					c.add(s.Name(diameter.AVPResultCode), "result", "RFC 6733 §7.1", "Result-Code %d is outside 1xxx-5xxx", v)
				}
			}
		}
		if e != proto {
			if e {
				c.add("", "header-e-bit", "RFC 6733 §7.1.3, §7.2", "E bit set without a 3xxx (protocol error) Result-Code")
			} else {
				c.add("", "header-e-bit", "RFC 6733 §7.1.3, §7.2", "3xxx (protocol error) Result-Code without the E bit")
			}
		}
		if c.vapp {
			for _, er := range ers {
				kids, _ := parseAVPs(er.Data)
				for _, v := range find(kids, diameter.AVPVendorID) {
					if n, ok := u32(v); ok && n != diameter.Vendor3GPP {
						c.add(s.Name(diameter.AVPExperimentalResult), "experimental-result-vendor", "TS 29.229 §6.2; TS 29.329 §6.2; TS 29.214 §5.5",
							"Experimental-Result Vendor-Id %d in a 3GPP application, want %d", n, diameter.Vendor3GPP)
					}
				}
			}
		}
	} else if c.code != diameter.CmdReAuth && c.code != diameter.CmdAbortSession {
		// Session-Id of a request begins with the sender's identity,
		// except in RAR and ASR: the server sends them in the session the
		// client opened (RFC 6733 §8.3, §8.5), with the client's
		// Session-Id.
		sid, oh := find(avps, diameter.AVPSessionID), find(avps, diameter.AVPOriginHost)
		if len(sid) == 1 && len(oh) == 1 && !bytes.HasPrefix(sid[0].Data, append(append([]byte(nil), oh[0].Data...), ';')) {
			c.add(s.Name(diameter.AVPSessionID), "session-id", "RFC 6733 §8.8", "Session-Id %q does not begin with the sender's identity %q followed by ';'", sid[0].Data, oh[0].Data)
		}
	}
	if c.app == appCx || c.app == appSh {
		spec := "TS 29.229"
		if c.app == appSh {
			spec = "TS 29.329"
		}
		doc := spec + " §6 (vendor 10415, application " + fmt.Sprint(c.app) + "), §6.1 ({ Vendor-Specific-Application-Id })"
		if req {
			for _, a := range find(avps, diameter.AVPAuthSessionState) {
				if v, ok := u32(a); ok && v != diameter.NoStateMaintained {
					c.add(s.Name(diameter.AVPAuthSessionState), "auth-session-state", spec+" §5.4 (use of sessions); RFC 6733 §8.11",
						"Auth-Session-State %d, Cx/Sh sessions are implicitly terminated: NO_STATE_MAINTAINED (1)", v)
				}
			}
		}
		for _, v := range find(avps, diameter.AVPVendorSpecificApplicationID) {
			kids, _ := parseAVPs(v.Data)
			p := s.Name(diameter.AVPVendorSpecificApplicationID)
			for _, vid := range find(kids, diameter.AVPVendorID) {
				if n, ok := u32(vid); ok && n != diameter.Vendor3GPP {
					c.add(p, "vsai", doc, "Vendor-Id %d, want %d (3GPP)", n, diameter.Vendor3GPP)
				}
			}
			auth := find(kids, diameter.AVPAuthApplicationID)
			if len(auth) == 0 {
				c.add(p, "vsai", doc, "no Auth-Application-Id (Cx and Sh are auth applications)")
			}
			for _, a := range auth {
				if n, ok := u32(a); ok && n != c.app {
					c.add(p, "vsai", doc, "Auth-Application-Id %d, the header says %d", n, c.app)
				}
			}
			if len(find(kids, diameter.AVPAcctApplicationID)) > 0 {
				c.add(p, "vsai", doc, "Acct-Application-Id in an auth application")
			}
		}
	}
	if c.app != appBase {
		for _, a := range find(avps, diameter.AVPAuthApplicationID) {
			if n, ok := u32(a); ok && n != c.app {
				c.add(s.Name(diameter.AVPAuthApplicationID), "auth-application-id", "RFC 6733 §6.8", "Auth-Application-Id %d, the header's Application-Id is %d", n, c.app)
			}
		}
	}
}

// groupedSemantics checks rules of grouped AVPs beyond their ABNF.
func (c *checker) groupedSemantics(id diameter.AVPCode, kids []*rawAVP, path string) {
	if id == diameter.AVPVendorSpecificApplicationID {
		if n := len(find(kids, diameter.AVPAuthApplicationID)) + len(find(kids, diameter.AVPAcctApplicationID)); n != 1 {
			c.add(path, "vsai", "RFC 6733 §6.11", "exactly one of Auth-Application-Id and Acct-Application-Id must be present, found %d", n)
		}
	}
}

// Dump renders wire for a human: the header, then one line per AVP
// (indented for grouped ones) with flags, vendor, length and value, then
// the hex bytes.
func Dump(wire []byte) string {
	var b strings.Builder
	s := TheSpec()
	if len(wire) < 20 {
		fmt.Fprintf(&b, "%d bytes (no header)\n%s", len(wire), hex.Dump(wire))
		return b.String()
	}
	flags := wire[4]
	fl := ""
	for i, n := range []string{"R", "P", "E", "T"} {
		if flags&(0x80>>i) != 0 {
			fl += n
		} else {
			fl += "-"
		}
	}
	fmt.Fprintf(&b, "%s: version %d, length %d, flags %s (0x%02x), command %d, application %d, hop-by-hop 0x%08x, end-to-end 0x%08x\n",
		CommandName(wire), wire[0], binary.BigEndian.Uint32(wire[0:4])&0xffffff, fl, flags,
		binary.BigEndian.Uint32(wire[4:8])&0xffffff, binary.BigEndian.Uint32(wire[8:12]),
		binary.BigEndian.Uint32(wire[12:16]), binary.BigEndian.Uint32(wire[16:20]))
	avps, err := parseAVPs(wire[20:])
	dumpAVPs(&b, s, avps, 1)
	if err != nil {
		fmt.Fprintf(&b, "  !! %v\n", err)
	}
	b.WriteString(hex.Dump(wire))
	return b.String()
}

func dumpAVPs(b *strings.Builder, s *Spec, avps []*rawAVP, depth int) {
	for _, a := range avps {
		fl := ""
		for i, n := range []string{"V", "M", "P"} {
			if a.Flags&(0x80>>i) != 0 {
				fl += n
			} else {
				fl += "-"
			}
		}
		id := a.id()
		d, known := s.AVPs[id]
		name := fmt.Sprintf("AVP-%d", a.Code)
		if known {
			name = d.Name
		}
		vend := ""
		if a.Flags&avpV != 0 {
			vend = fmt.Sprintf(" vendor %d", a.Vendor)
		}
		fmt.Fprintf(b, "%s%s(%d)%s [%s] len %d", strings.Repeat("  ", depth), name, a.Code, vend, fl, len(a.Data))
		if known && d.Type == Grouped {
			b.WriteString("\n")
			kids, err := parseAVPs(a.Data)
			dumpAVPs(b, s, kids, depth+1)
			if err != nil {
				fmt.Fprintf(b, "%s!! %v\n", strings.Repeat("  ", depth+1), err)
			}
			continue
		}
		fmt.Fprintf(b, " = %s\n", renderValue(a.Data, d.Type, known))
	}
}

func renderValue(data []byte, t DataType, known bool) string {
	if known {
		switch t {
		case Unsigned32, Enumerated, Integer32, Time:
			if len(data) == 4 {
				return fmt.Sprint(binary.BigEndian.Uint32(data))
			}
		case Unsigned64, Integer64:
			if len(data) == 8 {
				return fmt.Sprint(binary.BigEndian.Uint64(data))
			}
		}
	}
	printable := utf8.Valid(data)
	for _, r := range string(data) {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' {
			printable = false
			break
		}
	}
	if printable && len(data) > 0 {
		if len(data) > 120 {
			return fmt.Sprintf("%q... (%d bytes)", data[:120], len(data))
		}
		return fmt.Sprintf("%q", data)
	}
	if len(data) > 48 {
		return fmt.Sprintf("%x... (%d bytes)", data[:48], len(data))
	}
	return fmt.Sprintf("%x", data)
}

// CheckPair checks an answer against the request it answers (RFC 6733
// §6.2): same Command-Code, Application-Id, End-to-End and Hop-by-Hop
// identifiers, the request's P bit, and the request's Session-Id, echoed
// first when the request had one. Use it with Check, which checks each
// message on its own.
func CheckPair(req, ans []byte) []Violation {
	c := &checker{s: TheSpec(), cmd: CommandName(ans)}
	if len(req) < 20 || len(ans) < 20 {
		return nil
	}
	if !IsRequest(req) || IsRequest(ans) {
		c.add("", "pair", "", "CheckPair needs a request and an answer")
		return c.out
	}
	hdr := func(b []byte, i int) uint32 { return binary.BigEndian.Uint32(b[i : i+4]) }
	if hdr(req, 4)&0xffffff != hdr(ans, 4)&0xffffff {
		c.add("", "answer-header", "RFC 6733 §6.2", "Command-Code %d, the request's is %d", hdr(ans, 4)&0xffffff, hdr(req, 4)&0xffffff)
	}
	if hdr(req, 8) != hdr(ans, 8) {
		c.add("", "answer-header", "RFC 6733 §6.2", "Application-Id %d, the request's is %d", hdr(ans, 8), hdr(req, 8))
	}
	if hdr(req, 12) != hdr(ans, 12) || hdr(req, 16) != hdr(ans, 16) {
		c.add("", "answer-header", "RFC 6733 §6.2", "Hop-by-Hop/End-to-End 0x%08x/0x%08x, the request's are 0x%08x/0x%08x",
			hdr(ans, 12), hdr(ans, 16), hdr(req, 12), hdr(req, 16))
	}
	if req[4]&flagP != ans[4]&flagP {
		c.add("", "answer-header", "RFC 6733 §6.2", "P bit %v, the request's is %v", ans[4]&flagP != 0, req[4]&flagP != 0)
	}
	ra, _ := parseAVPs(req[20:])
	aa, _ := parseAVPs(ans[20:])
	if rs := find(ra, diameter.AVPSessionID); len(rs) == 1 {
		as := find(aa, diameter.AVPSessionID)
		switch {
		case len(as) == 0:
			c.add("", "answer-session-id", "RFC 6733 §8.8", "no Session-Id; the request's is %q", rs[0].Data)
		case !bytes.Equal(as[0].Data, rs[0].Data):
			c.add(c.s.Name(diameter.AVPSessionID), "answer-session-id", "RFC 6733 §8.8", "%q, the request's is %q", as[0].Data, rs[0].Data)
		case aa[0].id() != diameter.AVPSessionID:
			c.add(c.s.Name(diameter.AVPSessionID), "fixed-position", "RFC 6733 §8.8", "the echoed Session-Id is not the first AVP")
		}
	}
	rp, ap := find(ra, diameter.AVPProxyInfo), find(aa, diameter.AVPProxyInfo)
	if len(rp) != len(ap) {
		c.add("", "answer-proxy-info", "RFC 6733 §6.2", "%d Proxy-Info, the request has %d (they are copied, in order)", len(ap), len(rp))
	} else {
		for i := range rp {
			if !bytes.Equal(rp[i].Data, ap[i].Data) {
				c.add(c.s.Name(diameter.AVPProxyInfo), "answer-proxy-info", "RFC 6733 §6.2", "Proxy-Info #%d differs from the request's", i+1)
			}
		}
	}
	return c.out
}
