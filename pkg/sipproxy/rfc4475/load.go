package rfc4475

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Expand turns a message written in the notation of RFC 4475 §2 into the
// bytes on the wire:
//
//   - each line of the text ends with CRLF (the file's LF is the line end);
//   - <allOneLine>…</allOneLine> joins the lines it encloses without any
//     line end (§2.1);
//   - <hex>…</hex> is the octets given in hexadecimal, white space ignored
//     (§2.2); no CRLF is added inside it;
//   - <repeat count=N>…</repeat> repeats its content N times (§2.3).
func Expand(text string) ([]byte, error) {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	var err error
	text = allOneLine.ReplaceAllStringFunc(text, func(m string) string {
		inner := allOneLine.FindStringSubmatch(m)[1]
		return strings.ReplaceAll(strings.Trim(inner, "\n"), "\n", "")
	})
	text = repeat.ReplaceAllStringFunc(text, func(m string) string {
		sm := repeat.FindStringSubmatch(m)
		n, e := strconv.Atoi(sm[1])
		if e != nil || n < 0 || n > 100000 {
			err = fmt.Errorf("rfc4475: bad repeat count %q", sm[1])
			return ""
		}
		return strings.Repeat(sm[2], n)
	})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for {
		loc := hexBlock.FindStringSubmatchIndex(text)
		if loc == nil {
			out.WriteString(strings.ReplaceAll(text, "\n", "\r\n"))
			return out.Bytes(), nil
		}
		out.WriteString(strings.ReplaceAll(text[:loc[0]], "\n", "\r\n"))
		digits := strings.Join(strings.Fields(text[loc[2]:loc[3]]), "")
		b, e := hex.DecodeString(digits)
		if e != nil {
			return nil, fmt.Errorf("rfc4475: bad <hex> block: %w", e)
		}
		out.Write(b)
		text = text[loc[1]:]
	}
}

var (
	allOneLine = regexp.MustCompile(`(?s)<allOneLine>(.*?)</allOneLine>`)
	repeat     = regexp.MustCompile(`(?s)<repeat count=(\d+)>(.*?)</repeat>`)
	hexBlock   = regexp.MustCompile(`(?s)<hex>(.*?)</hex>`)
)
