package provision

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// SPTSpec is one parsed Service Point Trigger for the ifc table.
type SPTSpec struct {
	Group             int
	Negated           bool
	Type              string // method, request_uri, sip_header, session_case, session_description
	Value             string
	Content           *string
	RegistrationTypes []int16
}

// TriggerInput holds the trigger flags of "imsctl ifc add" (see
// docs/provisioning.md). Each value may start with "G:" (explicit group
// number G) and then "!" (negated).
type TriggerInput struct {
	Methods, RequestURIs, Headers, SessionCases, SDPs []string
	RegistrationTypes                                 []string // for method REGISTER: initial, re, de
	DNF                                               bool
}

var sessionCases = map[string]string{
	"0": "0", "originating": "0", "orig": "0",
	"1": "1", "terminating-registered": "1", "terminating": "1", "term": "1", "term-reg": "1",
	"2": "2", "terminating-unregistered": "2", "term-unreg": "2",
	"3": "3", "originating-unregistered": "3", "orig-unreg": "3",
	"4": "4", "originating-cdiv": "4", "cdiv": "4",
}

// SessionCaseNames are the display names of session cases 0..4
// (TS 29.228 Annex C).
var SessionCaseNames = []string{"originating", "terminating-registered", "terminating-unregistered", "originating-unregistered", "originating-cdiv"}

var groupPrefix = regexp.MustCompile(`^([0-9]{1,6}):`)

// Parse turns the trigger flags into SPTs. Without explicit groups: in
// CNF (the default) SPTs of the same kind are ORed in one group and the
// kinds are ANDed; in DNF every SPT is its own group (any one matches).
// With explicit "G:" prefixes every value must carry one.
func (in TriggerInput) Parse() ([]SPTSpec, error) {
	var out []SPTSpec
	explicit, implicit := 0, 0
	add := func(kind int, raw string, build func(v string, s *SPTSpec) error) error {
		s := SPTSpec{}
		v := raw
		if m := groupPrefix.FindStringSubmatch(v); m != nil {
			s.Group, _ = strconv.Atoi(m[1])
			v = v[len(m[0]):]
			explicit++
		} else {
			implicit++
			if in.DNF {
				s.Group = len(out)
			} else {
				s.Group = kind
			}
		}
		if strings.HasPrefix(v, "!") {
			s.Negated, v = true, v[1:]
		}
		if v == "" {
			return userErr("empty trigger value %q", raw)
		}
		if err := build(v, &s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	}
	for _, v := range in.Methods {
		if err := add(0, v, func(v string, s *SPTSpec) error {
			if strings.ContainsAny(v, " \t=") {
				return userErr("--method %q is not a SIP method", v)
			}
			s.Type, s.Value = "method", strings.ToUpper(v)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	for _, v := range in.RequestURIs {
		if err := add(1, v, func(v string, s *SPTSpec) error {
			s.Type, s.Value = "request_uri", v
			return checkRegexp("--ruri", v)
		}); err != nil {
			return nil, err
		}
	}
	for _, v := range in.Headers {
		if err := add(2, v, func(v string, s *SPTSpec) error {
			name, content, ok := strings.Cut(v, "=")
			name = strings.TrimSpace(name)
			if name == "" || strings.ContainsAny(name, " \t:") {
				return userErr("--header %q: want NAME or NAME=REGEX", v)
			}
			s.Type, s.Value = "sip_header", name
			if ok {
				s.Content = &content
				return checkRegexp("--header", content)
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	for _, v := range in.SessionCases {
		if err := add(3, v, func(v string, s *SPTSpec) error {
			c, ok := sessionCases[strings.ToLower(v)]
			if !ok {
				return userErr("--session-case %q: want originating, terminating-registered, terminating-unregistered, originating-unregistered, originating-cdiv or 0..4", v)
			}
			s.Type, s.Value = "session_case", c
			return nil
		}); err != nil {
			return nil, err
		}
	}
	for _, v := range in.SDPs {
		if err := add(4, v, func(v string, s *SPTSpec) error {
			line, content, ok := strings.Cut(v, "=")
			if line == "" || strings.ContainsAny(line, " \t") {
				return userErr("--sdp %q: want LINE or LINE=REGEX (e.g. m=audio)", v)
			}
			s.Type, s.Value = "session_description", line
			if ok {
				s.Content = &content
				return checkRegexp("--sdp", content)
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if explicit > 0 && implicit > 0 {
		return nil, userErr("either every trigger value has a GROUP: prefix or none has")
	}
	if len(in.RegistrationTypes) > 0 {
		var rts []int16
		var names []string
		for _, r := range in.RegistrationTypes {
			names = append(names, strings.Split(r, ",")...)
		}
		for _, r := range names {
			switch strings.ToLower(strings.TrimSpace(r)) {
			case "initial", "0":
				rts = append(rts, 0)
			case "re", "re-registration", "1":
				rts = append(rts, 1)
			case "de", "de-registration", "2":
				rts = append(rts, 2)
			default:
				return nil, userErr("--registration-type %q: want initial, re or de", r)
			}
		}
		found := false
		for i := range out {
			if out[i].Type == "method" && out[i].Value == "REGISTER" {
				out[i].RegistrationTypes, found = rts, true
			}
		}
		if !found {
			return nil, userErr("--registration-type needs --method REGISTER")
		}
	}
	return out, nil
}

func checkRegexp(flag, re string) error {
	if _, err := regexp.Compile(re); err != nil {
		return userErr("%s %q is not a regular expression: %v", flag, re, err)
	}
	return nil
}

// FormatSPT renders one SPT in the flag syntax, e.g. "!method=INVITE".
func FormatSPT(negated bool, typ, value, content string, hasContent bool, regTypes []int16) string {
	var b strings.Builder
	if negated {
		b.WriteString("NOT ")
	}
	switch typ {
	case "method":
		fmt.Fprintf(&b, "method=%s", value)
		if len(regTypes) > 0 {
			names := []string{"initial", "re", "de"}
			var rs []string
			for _, r := range regTypes {
				if r >= 0 && int(r) < len(names) {
					rs = append(rs, names[r])
				}
			}
			fmt.Fprintf(&b, "(%s)", strings.Join(rs, ","))
		}
	case "request_uri":
		fmt.Fprintf(&b, "ruri~%s", value)
	case "sip_header":
		fmt.Fprintf(&b, "header %s", value)
		if hasContent {
			fmt.Fprintf(&b, "~%s", content)
		}
	case "session_case":
		n, _ := strconv.Atoi(value)
		name := value
		if n >= 0 && n < len(SessionCaseNames) {
			name = SessionCaseNames[n]
		}
		fmt.Fprintf(&b, "session-case=%s", name)
	case "session_description":
		fmt.Fprintf(&b, "sdp %s", value)
		if hasContent {
			fmt.Fprintf(&b, "~%s", content)
		}
	default:
		fmt.Fprintf(&b, "%s=%s", typ, value)
	}
	return b.String()
}
