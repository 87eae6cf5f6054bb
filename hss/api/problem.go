package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/imscore/imscore/hss/provision"
)

// Problem is an RFC 9457 problem details object (application/problem+json).
type Problem struct {
	Type     string       `json:"type" required:"true" doc:"problem type URI (about:blank: see the status)"`
	Title    string       `json:"title" required:"true" doc:"short summary of the problem type"`
	Status   int          `json:"status" required:"true" doc:"HTTP status code"`
	Detail   string       `json:"detail,omitempty" doc:"what went wrong in this request"`
	Instance string       `json:"instance,omitempty" doc:"the request path"`
	Errors   []FieldError `json:"errors,omitempty" doc:"the input fields at fault"`
}

// FieldError names one field of the request at fault.
type FieldError struct {
	Pointer string `json:"pointer" required:"true" doc:"JSON pointer (RFC 6901) into the request body, or /line/N for a CSV line"`
	Detail  string `json:"detail" required:"true" doc:"what is wrong with it"`
}

// Problem types beyond about:blank.
const (
	ProblemInvalid  = "urn:imscore:problem:invalid-input"
	ProblemConflict = "urn:imscore:problem:conflict"
	ProblemETag     = "urn:imscore:problem:etag-mismatch"
	ProblemRole     = "urn:imscore:problem:insufficient-role"
)

// problemError is an error that is answered as a Problem.
type problemError struct{ p Problem }

func (e *problemError) Error() string { return e.p.Detail }

func problem(status int, typ, format string, args ...any) error {
	if typ == "" {
		typ = "about:blank"
	}
	return &problemError{Problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: fmt.Sprintf(format, args...)}}
}

// toProblem maps an error to its Problem: provision.UserError by kind,
// a problemError as is, anything else 500 (a back-end failure, never a
// misleading 4xx).
func toProblem(err error) Problem {
	var pe *problemError
	if errors.As(err, &pe) {
		return pe.p
	}
	var ue *provision.UserError
	if errors.As(err, &ue) {
		p := Problem{Type: ProblemInvalid, Status: http.StatusUnprocessableEntity, Detail: ue.Msg}
		switch ue.Kind {
		case provision.NotFound:
			p.Type, p.Status = "about:blank", http.StatusNotFound
		case provision.Conflict:
			p.Type, p.Status = ProblemConflict, http.StatusConflict
		}
		p.Title = http.StatusText(p.Status)
		if ue.Field != "" && p.Status != http.StatusNotFound {
			p.Errors = []FieldError{{Pointer: ue.Field, Detail: ue.Msg}}
		}
		return p
	}
	return Problem{Type: "about:blank", Title: http.StatusText(500), Status: 500,
		Detail: "the HSS could not complete the request (database or network failure; see the HSS log)"}
}

func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	p.Instance = r.URL.Path
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// decodeError turns a JSON decoding error into a 400 naming the field.
func decodeError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	p := Problem{Type: ProblemInvalid, Title: http.StatusText(400), Status: 400}
	switch {
	case errors.As(err, &se):
		p.Detail = fmt.Sprintf("the body is not JSON: %v (at byte %d)", se, se.Offset)
	case errors.As(err, &te):
		ptr := "/" + strings.ReplaceAll(te.Field, ".", "/")
		p.Detail = fmt.Sprintf("%s must be %s, not %s", ptr, te.Type, te.Value)
		p.Errors = []FieldError{{Pointer: ptr, Detail: p.Detail}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p.Detail = fmt.Sprintf("unknown field %q", name)
		p.Errors = []FieldError{{Pointer: "/" + name, Detail: p.Detail}}
	default:
		p.Detail = fmt.Sprintf("cannot read the body: %v", err)
	}
	return &problemError{p}
}
