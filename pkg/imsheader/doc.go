// Package imsheader parses and formats the SIP header fields an IMS core
// needs beyond RFC 3261: Path (RFC 3327), Service-Route (RFC 3608),
// P-Asserted-Identity and P-Preferred-Identity (RFC 3325), the RFC 3455 /
// RFC 7315 P- headers (P-Associated-URI, P-Visited-Network-ID,
// P-Access-Network-Info, P-Charging-Vector), P-Served-User (RFC 5502) and
// Security-Client / Security-Server / Security-Verify (RFC 3329, TS 33.203
// annex H).
//
// sipgo delivers these as generic headers whose Value() is the text after
// the colon with surrounding whitespace trimmed. The Parse* functions work on
// such values; the Get*/Set* functions read and write them on a
// *sip.Request or *sip.Response, joining headers that appear several times
// and comma-separated lists.
//
// Round trip: for normally formatted input, Format(Parse(v)) == v byte for
// byte. Parsing keeps the exact URI text, the order, spelling and quoting of
// every parameter (unknown ones included) and the whitespace written after
// ',' and ';' separators. Whitespace elsewhere (before ';' or ',', around
// '=', between a display name and '<') is normalised: none, except a single
// space between a display name and '<'.
//
// Parse errors are *ParseError values naming the header; no input panics.
package imsheader
