package reginfo

import (
	"bytes"
	"encoding/xml"
	"fmt"
)

// parseXML is Parse as it was before decode: the in* types filled by
// xml.Decoder.DecodeElement. The tests check that Parse gives the same.
func parseXML(data []byte) (*Reginfo, error) {
	return parse(data, func(dec *xml.Decoder, root xml.StartElement, in *inReginfo) error {
		return dec.DecodeElement(in, &root)
	})
}

// marshalXML is the encoder Marshal replaced (encoding/xml with
// reflection), kept to check that Marshal writes the same bytes.
func marshalXML(r *Reginfo) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	out := outReginfo{Xmlns: Namespace, Version: r.Version, State: string(r.State)}
	for _, g := range r.Registrations {
		og := outRegistration{AOR: g.AOR, ID: g.ID, State: string(g.State)}
		for _, c := range g.Contacts {
			oc := outContact{
				ID: c.ID, State: string(c.State), Event: string(c.Event),
				DurationRegistered: c.DurationRegistered, Expires: c.Expires, RetryAfter: c.RetryAfter,
				Q: c.Q, CallID: c.CallID, CSeq: c.CSeq, URI: c.URI,
			}
			if c.DisplayName != "" || c.DisplayNameLang != "" {
				oc.DisplayName = &outDisplayName{Lang: c.DisplayNameLang, Text: c.DisplayName}
			}
			for _, u := range c.UnknownParams {
				oc.UnknownParams = append(oc.UnknownParams, outUnknownParam(u))
			}
			if c.PubGRUU != "" {
				oc.PubGRUU = &outPubGRUU{URI: c.PubGRUU}
				out.XmlnsGR = GRUUNamespace
			}
			if c.TempGRUU != nil {
				oc.TempGRUU = &outTempGRUU{URI: c.TempGRUU.URI, FirstCSeq: c.TempGRUU.FirstCSeq}
				out.XmlnsGR = GRUUNamespace
			}
			og.Contacts = append(og.Contacts, oc)
		}
		out.Registrations = append(out.Registrations, og)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("reginfo: encode: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// The out* types write the document with literal prefixes, as
// encoding/xml would otherwise repeat namespace declarations.
type outReginfo struct {
	XMLName       xml.Name          `xml:"reginfo"`
	Xmlns         string            `xml:"xmlns,attr"`
	XmlnsGR       string            `xml:"xmlns:gr,attr,omitempty"`
	Version       int               `xml:"version,attr"`
	State         string            `xml:"state,attr"`
	Registrations []outRegistration `xml:"registration"`
}

type outRegistration struct {
	AOR      string       `xml:"aor,attr"`
	ID       string       `xml:"id,attr"`
	State    string       `xml:"state,attr"`
	Contacts []outContact `xml:"contact"`
}

type outContact struct {
	ID                 string            `xml:"id,attr"`
	State              string            `xml:"state,attr"`
	Event              string            `xml:"event,attr"`
	DurationRegistered *int              `xml:"duration-registered,attr,omitempty"`
	Expires            *int              `xml:"expires,attr,omitempty"`
	RetryAfter         *int              `xml:"retry-after,attr,omitempty"`
	Q                  string            `xml:"q,attr,omitempty"`
	CallID             string            `xml:"callid,attr,omitempty"`
	CSeq               *uint32           `xml:"cseq,attr,omitempty"`
	URI                string            `xml:"uri"`
	DisplayName        *outDisplayName   `xml:"display-name,omitempty"`
	UnknownParams      []outUnknownParam `xml:"unknown-param"`
	PubGRUU            *outPubGRUU       `xml:"gr:pub-gruu,omitempty"`
	TempGRUU           *outTempGRUU      `xml:"gr:temp-gruu,omitempty"`
}

type outDisplayName struct {
	Lang string `xml:"xml:lang,attr,omitempty"`
	Text string `xml:",chardata"`
}

type outUnknownParam struct {
	Name  string `xml:"name,attr"`
	Value string `xml:",chardata"`
}

type outPubGRUU struct {
	URI string `xml:"uri,attr"`
}

type outTempGRUU struct {
	URI       string `xml:"uri,attr"`
	FirstCSeq uint32 `xml:"first-cseq,attr"`
}
