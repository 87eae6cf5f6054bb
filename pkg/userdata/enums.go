package userdata

import (
	"fmt"
	"strconv"
	"strings"
)

// Bool is the schema's tBool (TS 29.228 Annex E, xs:boolean). It marshals as
// "0"/"1" and unmarshals from "0", "1", "false" or "true" (the four lexical
// forms of xs:boolean), surrounding whitespace ignored.
type Bool bool

// MarshalText encodes b as "1" or "0".
func (b Bool) MarshalText() ([]byte, error) {
	if b {
		return []byte("1"), nil
	}
	return []byte("0"), nil
}

// UnmarshalText accepts the xs:boolean lexical space: 0, 1, false, true.
func (b *Bool) UnmarshalText(text []byte) error {
	switch strings.TrimSpace(string(text)) {
	case "1", "true":
		*b = true
	case "0", "false":
		*b = false
	default:
		return fmt.Errorf("boolean %q is not 0, 1, true or false", clip(text))
	}
	return nil
}

// The enumerations have uint32 underneath, not uint8: encoding/xml would
// treat a slice of a uint8 type as bytes.

// parseEnum parses the decimal text of an enumerated element. Range checks
// happen in validation so that the error can name the element's position.
func parseEnum(elem string, text []byte) (uint32, error) {
	s := strings.TrimSpace(string(text))
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not a non-negative integer", elem, clip(text))
	}
	return uint32(n), nil
}

// clip shortens untrusted text quoted in error messages.
func clip(b []byte) string {
	const max = 40
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// IdentityType is tIdentityType of PublicIdentity/Extension (TS 29.228 Annex E,
// §6.6.1 and Annex B): what kind of public identity an entry holds.
type IdentityType uint32

// IdentityType values (TS 29.228 Annex E, tIdentityType).
const (
	IdentityPublicUser     IdentityType = 0 // PUBLIC_USER_IDENTITY: a distinct IMPU
	IdentityDistinctPSI    IdentityType = 1 // DISTINCT_PSI
	IdentityWildcardedPSI  IdentityType = 2 // WILDCARDED_PSI
	IdentityWildcardedIMPU IdentityType = 3 // WILDCARDED_IMPU
)

// MarshalText encodes t as its decimal value.
func (t IdentityType) MarshalText() ([]byte, error) {
	return strconv.AppendUint(nil, uint64(t), 10), nil
}

// UnmarshalText parses a decimal value; the range is checked by validation.
func (t *IdentityType) UnmarshalText(b []byte) error {
	n, err := parseEnum("IdentityType", b)
	*t = IdentityType(n)
	return err
}

// Wildcarded reports whether t is one of the wildcarded types, whose Identity
// holds a TS 23.003 §13.5 pattern (a regular expression between '!' marks).
func (t IdentityType) Wildcarded() bool {
	return t == IdentityWildcardedPSI || t == IdentityWildcardedIMPU
}

func (t IdentityType) String() string {
	switch t {
	case IdentityPublicUser:
		return "PUBLIC_USER_IDENTITY"
	case IdentityDistinctPSI:
		return "DISTINCT_PSI"
	case IdentityWildcardedPSI:
		return "WILDCARDED_PSI"
	case IdentityWildcardedIMPU:
		return "WILDCARDED_IMPU"
	}
	return "IdentityType(" + strconv.Itoa(int(t)) + ")"
}

// SessionCase is tDirectionOfRequest, the SessionCase condition of an SPT
// (TS 29.228 Annex E, §B.2.2).
type SessionCase uint32

// SessionCase values (TS 29.228 Annex E, tDirectionOfRequest).
const (
	SessionCaseOriginating             SessionCase = 0 // ORIGINATING (registered originating user)
	SessionCaseTerminatingRegistered   SessionCase = 1 // TERMINATING_REGISTERED
	SessionCaseTerminatingUnregistered SessionCase = 2 // TERMINATING_UNREGISTERED
	SessionCaseOriginatingUnregistered SessionCase = 3 // ORIGINATING_UNREGISTERED
	SessionCaseOriginatingCDIV         SessionCase = 4 // ORIGINATING_CDIV
)

// MarshalText encodes c as its decimal value.
func (c SessionCase) MarshalText() ([]byte, error) {
	return strconv.AppendUint(nil, uint64(c), 10), nil
}

// UnmarshalText parses a decimal value; the range 0..4 is checked by validation.
func (c *SessionCase) UnmarshalText(b []byte) error {
	n, err := parseEnum("SessionCase", b)
	*c = SessionCase(n)
	return err
}

func (c SessionCase) String() string {
	switch c {
	case SessionCaseOriginating:
		return "ORIGINATING"
	case SessionCaseTerminatingRegistered:
		return "TERMINATING_REGISTERED"
	case SessionCaseTerminatingUnregistered:
		return "TERMINATING_UNREGISTERED"
	case SessionCaseOriginatingUnregistered:
		return "ORIGINATING_UNREGISTERED"
	case SessionCaseOriginatingCDIV:
		return "ORIGINATING_CDIV"
	}
	return "SessionCase(" + strconv.Itoa(int(c)) + ")"
}

// DefaultHandling is tDefaultHandling of ApplicationServer (TS 29.228 Annex E,
// §B.2.3): what the S-CSCF does when the AS cannot be reached.
type DefaultHandling uint32

// DefaultHandling values (TS 29.228 Annex E, tDefaultHandling).
const (
	SessionContinued  DefaultHandling = 0 // SESSION_CONTINUED
	SessionTerminated DefaultHandling = 1 // SESSION_TERMINATED
)

// MarshalText encodes d as its decimal value.
func (d DefaultHandling) MarshalText() ([]byte, error) {
	return strconv.AppendUint(nil, uint64(d), 10), nil
}

// UnmarshalText parses a decimal value; the range 0..1 is checked by validation.
func (d *DefaultHandling) UnmarshalText(b []byte) error {
	n, err := parseEnum("DefaultHandling", b)
	*d = DefaultHandling(n)
	return err
}

func (d DefaultHandling) String() string {
	switch d {
	case SessionContinued:
		return "SESSION_CONTINUED"
	case SessionTerminated:
		return "SESSION_TERMINATED"
	}
	return "DefaultHandling(" + strconv.Itoa(int(d)) + ")"
}

// RegistrationType is tRegistrationType in SPT/Extension (TS 29.228 Annex E,
// §B.2.2): which kind of REGISTER a Method=REGISTER SPT matches.
type RegistrationType uint32

// RegistrationType values (TS 29.228 Annex E, tRegistrationType).
const (
	RegistrationInitial        RegistrationType = 0 // INITIAL_REGISTRATION
	RegistrationReRegistration RegistrationType = 1 // RE-REGISTRATION
	RegistrationDeRegistration RegistrationType = 2 // DE-REGISTRATION
)

// MarshalText encodes r as its decimal value.
func (r RegistrationType) MarshalText() ([]byte, error) {
	return strconv.AppendUint(nil, uint64(r), 10), nil
}

// UnmarshalText parses a decimal value; the range 0..2 is checked by validation.
func (r *RegistrationType) UnmarshalText(b []byte) error {
	n, err := parseEnum("RegistrationType", b)
	*r = RegistrationType(n)
	return err
}

func (r RegistrationType) String() string {
	switch r {
	case RegistrationInitial:
		return "INITIAL_REGISTRATION"
	case RegistrationReRegistration:
		return "RE-REGISTRATION"
	case RegistrationDeRegistration:
		return "DE-REGISTRATION"
	}
	return "RegistrationType(" + strconv.Itoa(int(r)) + ")"
}

// ProfilePartIndicator is tProfilePartIndicator of InitialFilterCriteria
// (TS 29.228 Annex E, §B.2.2): the iFC applies only while the user is
// registered, or only while unregistered; absent means both.
type ProfilePartIndicator uint32

// ProfilePartIndicator values (TS 29.228 Annex E, tProfilePartIndicator).
const (
	ProfilePartRegistered   ProfilePartIndicator = 0 // REGISTERED
	ProfilePartUnregistered ProfilePartIndicator = 1 // UNREGISTERED
)

// MarshalText encodes p as its decimal value.
func (p ProfilePartIndicator) MarshalText() ([]byte, error) {
	return strconv.AppendUint(nil, uint64(p), 10), nil
}

// UnmarshalText parses a decimal value; the range 0..1 is checked by validation.
func (p *ProfilePartIndicator) UnmarshalText(b []byte) error {
	n, err := parseEnum("ProfilePartIndicator", b)
	*p = ProfilePartIndicator(n)
	return err
}

func (p ProfilePartIndicator) String() string {
	switch p {
	case ProfilePartRegistered:
		return "REGISTERED"
	case ProfilePartUnregistered:
		return "UNREGISTERED"
	}
	return "ProfilePartIndicator(" + strconv.Itoa(int(p)) + ")"
}
