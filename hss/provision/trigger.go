package provision

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// SPT is one Service Point Trigger of an iFC's trigger point (TS 29.228
// Annex B.2.2 / C).
type SPT struct {
	Group   int32  `json:"group" doc:"group number: SPTs of one group are ORed (CNF) or ANDed (DNF)"`
	Negated bool   `json:"negated,omitempty" doc:"ConditionNegated"`
	Type    string `json:"type" required:"true" doc:"method, request_uri, sip_header, session_case or session_description"`
	// Value: the method; the Request-URI regular expression; the header
	// name; the session case (originating, terminating-registered,
	// terminating-unregistered, originating-unregistered,
	// originating-cdiv); the SDP line name (e.g. m).
	Value string `json:"value" required:"true" doc:"method; Request-URI regular expression; header name; session case name; SDP line name (m)"`
	// Content: for sip_header and session_description, a regular
	// expression the content must match (absent: presence only).
	Content *string `json:"content,omitempty" doc:"sip_header / session_description: regular expression on the content (absent: presence only)"`
	// RegistrationTypes: for method REGISTER, initial, re, de.
	RegistrationTypes []string `json:"registration_types,omitempty" doc:"method REGISTER only: initial, re, de"`
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
func (in TriggerInput) Parse() ([]SPT, error) {
	var out []SPT
	explicit, implicit := 0, 0
	add := func(kind int32, raw string, build func(v string, s *SPT) error) error {
		s := SPT{}
		v := raw
		if m := groupPrefix.FindStringSubmatch(v); m != nil {
			g, _ := strconv.Atoi(m[1])
			s.Group = int32(g)
			v = v[len(m[0]):]
			explicit++
		} else {
			implicit++
			if in.DNF {
				s.Group = int32(len(out))
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
		if err := add(0, v, func(v string, s *SPT) error {
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
		if err := add(1, v, func(v string, s *SPT) error {
			s.Type, s.Value = "request_uri", v
			return checkRegexp("--ruri", v)
		}); err != nil {
			return nil, err
		}
	}
	for _, v := range in.Headers {
		if err := add(2, v, func(v string, s *SPT) error {
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
		if err := add(3, v, func(v string, s *SPT) error {
			c, ok := sessionCases[strings.ToLower(v)]
			if !ok {
				return userErr("--session-case %q: want originating, terminating-registered, terminating-unregistered, originating-unregistered, originating-cdiv or 0..4", v)
			}
			s.Type, s.Value = "session_case", SessionCaseNames[c[0]-'0']
			return nil
		}); err != nil {
			return nil, err
		}
	}
	for _, v := range in.SDPs {
		if err := add(4, v, func(v string, s *SPT) error {
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
		var rts []string
		for _, r := range in.RegistrationTypes {
			for _, n := range strings.Split(r, ",") {
				if _, ok := registrationTypes[strings.ToLower(strings.TrimSpace(n))]; !ok {
					return nil, userErr("--registration-type %q: want initial, re or de", n)
				}
				rts = append(rts, strings.TrimSpace(n))
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

func checkRegexp(field, re string) error {
	if _, err := regexp.Compile(re); err != nil {
		if strings.HasPrefix(field, "/") {
			return fieldErr(field, "%q is not a regular expression: %v", re, err)
		}
		return userErr("%s %q is not a regular expression: %v", field, re, err)
	}
	return nil
}

var registrationTypes = map[string]int16{"initial": 0, "0": 0, "re": 1, "re-registration": 1, "1": 1,
	"de": 2, "de-registration": 2, "2": 2}

var registrationTypeNames = []string{"initial", "re", "de"}

var sptTypes = map[string]bool{"method": true, "request_uri": true, "sip_header": true, "session_case": true, "session_description": true}

// normalize checks s (field: its JSON pointer) and returns it in the
// stored form: session case 0..4, registration types 0..2.
func (s SPT) normalize(field string) (value string, regTypes []int16, err error) {
	if !sptTypes[s.Type] {
		return "", nil, fieldErr(field+"/type", "SPT type %q: want method, request_uri, sip_header, session_case or session_description", s.Type)
	}
	if s.Group < 0 {
		return "", nil, fieldErr(field+"/group", "group must not be negative")
	}
	value = strings.TrimSpace(s.Value)
	if value == "" {
		return "", nil, fieldErr(field+"/value", "an SPT needs a value")
	}
	regTypes = []int16{}
	switch s.Type {
	case "method":
		if strings.ContainsAny(value, " \t=") {
			return "", nil, fieldErr(field+"/value", "%q is not a SIP method", value)
		}
		value = strings.ToUpper(value)
	case "request_uri":
		if err := checkRegexp(field+"/value", value); err != nil {
			return "", nil, err
		}
	case "sip_header":
		if strings.ContainsAny(value, " \t:") {
			return "", nil, fieldErr(field+"/value", "header name %q", value)
		}
	case "session_case":
		c, ok := sessionCases[strings.ToLower(value)]
		if !ok {
			return "", nil, fieldErr(field+"/value", "session case %q: want originating, terminating-registered, terminating-unregistered, originating-unregistered, originating-cdiv or 0..4", value)
		}
		value = c
	case "session_description":
		if strings.ContainsAny(value, " \t") {
			return "", nil, fieldErr(field+"/value", "SDP line %q", value)
		}
	}
	if s.Content != nil {
		if s.Type != "sip_header" && s.Type != "session_description" {
			return "", nil, fieldErr(field+"/content", "content is for sip_header and session_description SPTs")
		}
		if err := checkRegexp(field+"/content", *s.Content); err != nil {
			return "", nil, err
		}
	}
	for i, r := range s.RegistrationTypes {
		n, ok := registrationTypes[strings.ToLower(strings.TrimSpace(r))]
		if !ok {
			return "", nil, fieldErr(fmt.Sprintf("%s/registration_types/%d", field, i), "registration type %q: want initial, re or de", r)
		}
		regTypes = append(regTypes, n)
	}
	if len(regTypes) > 0 && (s.Type != "method" || value != "REGISTER") {
		return "", nil, fieldErr(field+"/registration_types", "registration types are for method REGISTER")
	}
	return value, regTypes, nil
}

// String renders the SPT as in imsctl's trigger formula, e.g.
// "NOT method=INVITE".
func (s SPT) String() string {
	var b strings.Builder
	if s.Negated {
		b.WriteString("NOT ")
	}
	switch s.Type {
	case "method":
		fmt.Fprintf(&b, "method=%s", s.Value)
		if len(s.RegistrationTypes) > 0 {
			fmt.Fprintf(&b, "(%s)", strings.Join(s.RegistrationTypes, ","))
		}
	case "request_uri":
		fmt.Fprintf(&b, "ruri~%s", s.Value)
	case "sip_header":
		fmt.Fprintf(&b, "header %s", s.Value)
		if s.Content != nil {
			fmt.Fprintf(&b, "~%s", *s.Content)
		}
	case "session_case":
		fmt.Fprintf(&b, "session-case=%s", s.Value)
	case "session_description":
		fmt.Fprintf(&b, "sdp %s", s.Value)
		if s.Content != nil {
			fmt.Fprintf(&b, "~%s", *s.Content)
		}
	default:
		fmt.Fprintf(&b, "%s=%s", s.Type, s.Value)
	}
	return b.String()
}

// Formula renders a trigger point: groups in parentheses, ORed inside and
// ANDed outside for CNF, the other way round for DNF; "(always)" without
// SPTs.
func Formula(cnf bool, spts []SPT) string {
	groups := map[int32][]string{}
	var order []int32
	for _, s := range spts {
		if _, ok := groups[s.Group]; !ok {
			order = append(order, s.Group)
		}
		groups[s.Group] = append(groups[s.Group], s.String())
	}
	inner, outer := " OR ", " AND "
	if !cnf {
		inner, outer = " AND ", " OR "
	}
	var parts []string
	for _, g := range order {
		parts = append(parts, "("+strings.Join(groups[g], inner)+")")
	}
	if len(parts) == 0 {
		return "(always)"
	}
	return strings.Join(parts, outer)
}
