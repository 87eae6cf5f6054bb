package imsheader

import "strings"

// Param is one generic-param (RFC 3261 §25.1: token [ EQUAL gen-value ]).
type Param struct {
	// Lead is the whitespace written after the ';' before this parameter
	// ("" or " " in practice). It is kept so that Format reproduces the
	// input; set it to "" for new parameters.
	Lead string
	// Name is the parameter name as written (names compare
	// case-insensitively).
	Name string
	// Value is the value as written: a token/host, or a quoted-string
	// including its quotes. Use Unquote for the content. Empty when
	// HasValue is false.
	Value string
	// HasValue is false for a flag parameter such as "lr".
	HasValue bool
}

// Params is an ordered parameter list; unknown parameters are kept.
type Params []Param

// Get returns the raw value (quotes kept) of the first parameter named name
// (case-insensitive) and whether it is present.
func (p Params) Get(name string) (string, bool) {
	for _, x := range p {
		if strings.EqualFold(x.Name, name) {
			return x.Value, true
		}
	}
	return "", false
}

// Has reports whether a parameter named name is present.
func (p Params) Has(name string) bool {
	_, ok := p.Get(name)
	return ok
}

// Set sets the raw value of parameter name: the first existing one is
// replaced in place, otherwise it is appended. value must already be a
// token or a quoted-string (see Quote).
func (p *Params) Set(name, value string) {
	for i := range *p {
		if strings.EqualFold((*p)[i].Name, name) {
			(*p)[i].Value, (*p)[i].HasValue = value, true
			return
		}
	}
	*p = append(*p, Param{Name: name, Value: value, HasValue: true})
}

// SetFlag adds a value-less parameter (e.g. "lr") unless present.
func (p *Params) SetFlag(name string) {
	if !p.Has(name) {
		*p = append(*p, Param{Name: name})
	}
}

// Del removes every parameter named name and reports whether any was removed.
func (p *Params) Del(name string) bool {
	out := (*p)[:0]
	removed := false
	for _, x := range *p {
		if strings.EqualFold(x.Name, name) {
			removed = true
			continue
		}
		out = append(out, x)
	}
	*p = out
	return removed
}

// Equivalent reports whether p and q hold the same parameters regardless of
// order: names compare case-insensitively, values after Unquote exactly, and
// repeated parameters must be repeated as often in both.
func (p Params) Equivalent(q Params) bool {
	if len(p) != len(q) {
		return false
	}
	used := make([]bool, len(q))
outer:
	for _, x := range p {
		for j, y := range q {
			if !used[j] && strings.EqualFold(x.Name, y.Name) && x.HasValue == y.HasValue && Unquote(x.Value) == Unquote(y.Value) {
				used[j] = true
				continue outer
			}
		}
		return false
	}
	return true
}

func (p Params) clone() Params {
	if p == nil {
		return nil
	}
	return append(Params(nil), p...)
}

// writeTo writes ";name=value" for every parameter.
func (p Params) writeTo(b *strings.Builder) {
	for _, x := range p {
		b.WriteByte(';')
		b.WriteString(x.Lead)
		b.WriteString(x.Name)
		if x.HasValue {
			b.WriteByte('=')
			b.WriteString(x.Value)
		}
	}
}

// String formats the parameters as ";a=b;c".
func (p Params) String() string {
	var b strings.Builder
	p.writeTo(&b)
	return b.String()
}

// parseParams parses *( SEMI generic-param ) starting at s[i]. It stops
// (without error) at ',' or the end of s, with whitespace skipped.
func parseParams(header, s string, i int) (Params, int, error) {
	var out Params
	for {
		i = skipWS(s, i)
		if i >= len(s) || s[i] != ';' {
			return out, i, nil
		}
		i++
		var p Param
		var err error
		p, i, err = parseParam(header, s, i)
		if err != nil {
			return nil, i, err
		}
		out = append(out, p)
	}
}

// parseParam parses one generic-param at s[i] (just after ';' or at the
// start of a params-only value).
func parseParam(header, s string, i int) (Param, int, error) {
	var p Param
	j := skipWS(s, i)
	p.Lead = s[i:j]
	i = j
	for j < len(s) && isTokenChar(s[j]) {
		j++
	}
	if j == i {
		if j >= len(s) {
			return p, j, perr(header, j, "empty parameter after ';'")
		}
		return p, j, perr(header, j, "invalid character %q in parameter name", s[j])
	}
	p.Name = s[i:j]
	i = skipWS(s, j)
	if i >= len(s) || s[i] != '=' {
		return p, i, nil
	}
	p.HasValue = true
	i = skipWS(s, i+1)
	if i >= len(s) {
		return p, i, perr(header, i, "parameter %q has '=' but no value", p.Name)
	}
	if s[i] == '"' {
		end, err := scanQuoted(header, s, i)
		if err != nil {
			return p, i, err
		}
		p.Value = s[i:end]
		return p, end, nil
	}
	j = i
	for j < len(s) && isValueChar(s[j]) {
		j++
	}
	if j == i {
		return p, i, perr(header, i, "parameter %q has '=' but no value", p.Name)
	}
	p.Value = s[i:j]
	return p, j, nil
}

// parseParamsOnly parses a value made only of parameters, the first one not
// preceded by ';' (e.g. P-Charging-Vector).
func parseParamsOnly(header, s string) (Params, error) {
	i := skipWS(s, 0)
	if i >= len(s) {
		return nil, perr(header, i, "empty value")
	}
	first, i, err := parseParam(header, s, i)
	if err != nil {
		return nil, err
	}
	first.Lead = ""
	rest, i, err := parseParams(header, s, i)
	if err != nil {
		return nil, err
	}
	if i < len(s) {
		return nil, perr(header, i, "unexpected character %q", s[i])
	}
	return append(Params{first}, rest...), nil
}
