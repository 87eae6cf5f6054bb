package sip

// imscore fork: header fields left unparsed by a parser WithFirstOnly are
// parsed in place when read.

// lazyParsers are the kinds a generic field can be parsed into on
// demand, by canonical name, with sipgo's parsers.
var lazyParsers = map[string]HeaderParser{
	"Via":     headersParsers["via"],
	"Route":   headersParsers["route"],
	"Contact": headersParsers["contact"],
}

// typeAt replaces the generic field at index i of hs.headerOrder by its
// typed headers and returns them; nil when the kind has no parser or the
// text does not parse (the field stays as it is).
func (hs *headers) typeAt(i int) []Header {
	g, ok := hs.headerOrder[i].(*genericHeader)
	if !ok {
		return nil
	}
	hp, ok := lazyParsers[g.HeaderName]
	if !ok {
		return nil
	}
	typed, err := parseValues(nil, hp, nil, g.Contents)
	if err != nil || len(typed) == 0 {
		DefaultLogger().Debug("Lazy header parsing failed", "header", g.HeaderName, "error", err)
		return nil
	}
	if len(typed) == 1 {
		hs.headerOrder[i] = typed[0]
		return typed
	}
	order := make([]Header, 0, len(hs.headerOrder)+len(typed)-1)
	order = append(order, hs.headerOrder[:i]...)
	order = append(order, typed...)
	order = append(order, hs.headerOrder[i+1:]...)
	hs.headerOrder = order
	return typed
}

// typedFirst makes the first field named canon typed, in place, records
// it as the quick reference of its kind and reports whether there is one.
func (hs *headers) typedFirst(canon string) bool {
	for i, h := range hs.headerOrder {
		if h.Name() != canon {
			continue
		}
		if _, generic := h.(*genericHeader); !generic {
			hs.setHeaderRef(h)
			return true
		}
		typed := hs.typeAt(i)
		if typed == nil {
			return false
		}
		hs.setHeaderRef(typed[0])
		return true
	}
	return false
}

// TypedHeaders returns the header fields named name (any case) as
// GetHeaders does, with each field a parser left unparsed (WithFirstOnly)
// parsed into its typed headers in place first; one that does not parse
// stays generic.
func (hs *headers) TypedHeaders(name string) []Header {
	for i := 0; i < len(hs.headerOrder); i++ {
		h := hs.headerOrder[i]
		if !headerNameEqual(h.Name(), name) {
			continue
		}
		if typed := hs.typeAt(i); len(typed) > 1 {
			i += len(typed) - 1
		}
	}
	return hs.GetHeaders(name)
}
