// Package diameter is the Diameter core of imscore: the base (RFC 6733), Cx
// (TS 29.229), Sh (TS 29.329) and Rx (TS 29.214) dictionaries, AVP helpers,
// and a Node that is at the same time a server (accepting peers) and a client
// (connecting to peers), able to send and receive requests on every
// connection. It is built on github.com/fiorix/go-diameter/v4 for message
// encoding; capabilities exchange, watchdog, dispatch and routing are done
// here (see node.go for why the library's sm/Server are not used).
package diameter

import (
	"bytes"
	"embed"
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/dict"
)

//go:embed dict/*.xml
var dictFS embed.FS

// App is a Diameter application identifier (RFC 6733 §2.4) served by a Node.
type App uint32

// Applications with an embedded dictionary. All three are 3GPP vendor
// specific applications (Vendor-Id 10415) advertised in
// Vendor-Specific-Application-Id.
const (
	AppCx App = 16777216 // TS 29.229 Cx/Dx
	AppSh App = 16777217 // TS 29.329 Sh
	AppRx App = 16777236 // TS 29.214 Rx
	// AppRelay is the relay application id (RFC 6733 §2.4); a peer that
	// offers it in its CER shares every application with us.
	AppRelay App = 0xffffffff
)

// Vendor identifiers (IANA enterprise numbers).
const (
	Vendor3GPP uint32 = 10415
	VendorETSI uint32 = 13019
)

var appFiles = map[App]string{
	AppCx: "dict/cx.xml",
	AppSh: "dict/sh.xml",
	AppRx: "dict/rx.xml",
}

// String returns the short name of the application ("Cx", "Sh", "Rx").
func (a App) String() string {
	switch a {
	case AppCx:
		return "Cx"
	case AppSh:
		return "Sh"
	case AppRx:
		return "Rx"
	case AppRelay:
		return "Relay"
	}
	return fmt.Sprintf("app-%d", uint32(a))
}

// Vendor returns the vendor of a vendor-specific application (10415 for Cx,
// Sh and Rx) or 0.
func (a App) Vendor() uint32 {
	if _, ok := appFiles[a]; ok {
		return Vendor3GPP
	}
	return 0
}

// ParseApp maps "cx", "sh", "rx" (any case) or a decimal id to an App.
func ParseApp(s string) (App, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "cx":
		return AppCx, nil
	case "sh":
		return AppSh, nil
	case "rx":
		return AppRx, nil
	}
	for a := range appFiles {
		if fmt.Sprint(uint32(a)) == s {
			return a, nil
		}
	}
	return 0, fmt.Errorf("diameter: unknown application %q (want cx, sh or rx)", s)
}

// DictionaryXML returns the embedded XML of the base dictionary (app 0) or of
// an application.
func DictionaryXML(a App) ([]byte, error) {
	name := "dict/base.xml"
	if a != 0 {
		var ok bool
		if name, ok = appFiles[a]; !ok {
			return nil, fmt.Errorf("diameter: no dictionary for application %d", uint32(a))
		}
	}
	return dictFS.ReadFile(name)
}

// NewParser returns a fresh dictionary parser (never dict.Default) holding the
// base protocol plus exactly the given applications, each loaded once.
// Errors: unknown application, or a dictionary that fails to load.
func NewParser(apps ...App) (*dict.Parser, error) {
	p, err := dict.NewParser()
	if err != nil {
		return nil, err
	}
	b, err := DictionaryXML(0)
	if err != nil {
		return nil, err
	}
	if err := p.Load(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("diameter: base dictionary: %w", err)
	}
	seen := map[App]bool{}
	for _, a := range apps {
		if seen[a] {
			continue
		}
		seen[a] = true
		b, err := DictionaryXML(a)
		if err != nil {
			return nil, err
		}
		if err := p.Load(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("diameter: %s dictionary: %w", a, err)
		}
	}
	return p, nil
}

// avpDef is what the embedded dictionaries say of one AVP.
type avpDef struct {
	name  string
	flags uint8  // V and M bits
	typ   string // data type name, e.g. "UTF8String", "Grouped"
}

// avpDefs holds every AVP of every embedded dictionary keyed by identity
// (code and vendor); the AVP helpers take flags from it so callers never
// choose flags or vendors themselves. An AVP defined in several
// applications' files (Public-Identity in Cx and Sh) must be defined alike:
// loadDefs panics otherwise, which TestDictionariesConsistent exercises.
var avpDefs = loadDefs()

func loadDefs() map[AVPCode]avpDef {
	m := map[AVPCode]avpDef{}
	files := []string{"dict/base.xml"}
	for _, f := range appFiles {
		files = append(files, f)
	}
	for _, name := range files {
		b, err := dictFS.ReadFile(name)
		if err != nil {
			panic(err) // embedded: cannot happen
		}
		var f dict.File
		if err := xml.Unmarshal(b, &f); err != nil {
			panic(fmt.Sprintf("diameter: embedded %s: %v", name, err))
		}
		for _, app := range f.App {
			for _, a := range app.AVP {
				var fl uint8
				if a.VendorID != 0 {
					fl |= avp.Vbit
				}
				for _, s := range strings.Split(a.Must, ",") {
					if strings.TrimSpace(s) == "M" {
						fl |= avp.Mbit
					}
				}
				d := avpDef{name: a.Name, flags: fl, typ: a.Data.TypeName}
				id := AVPOf(a.Code, a.VendorID)
				if old, ok := m[id]; ok && old != d {
					panic(fmt.Sprintf("diameter: embedded %s: AVP %d/%d defined as %+v and %+v", name, a.Code, a.VendorID, old, d))
				}
				m[id] = d
			}
		}
	}
	return m
}
