package manage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/keygate/apikey"
)

// problem is an RFC 9457 problem detail, with a machine-readable code.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// problem answers status with a problem+json body.
func (h *Handler) problem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{
		Type: "about:blank", Title: http.StatusText(status), Status: status,
		Detail: detail, Code: code, RequestID: apikey.RequestID(r.Context()),
	})
}

// inputError is bad input: a 400 (or 413 for a body too large), with a
// detail for the client.
type inputError struct {
	status int
	detail string
}

func (e *inputError) Error() string { return e.detail }

// Unwrap makes an inputError match apikey.ErrInvalid.
func (e *inputError) Unwrap() error { return apikey.ErrInvalid }

func badInput(format string, args ...any) error {
	return &inputError{status: http.StatusBadRequest, detail: fmt.Sprintf(format, args...)}
}

// status maps an error to the status, code and detail of its answer; a
// 500 says nothing of the error.
func status(err error) (int, string, string) {
	var in *inputError
	switch {
	case errors.As(err, &in):
		code := "invalid_request"
		if in.status == http.StatusRequestEntityTooLarge {
			code = "too_large"
		}
		return in.status, code, in.detail
	case errors.Is(err, errOperatorOnly):
		return http.StatusForbidden, "forbidden", "Only an operator can set a key's limits: they are what the plan pays for."
	case errors.Is(err, apikey.ErrNotFound):
		return http.StatusNotFound, "not_found", "There is no API key with this id."
	case errors.Is(err, apikey.ErrInvalid):
		return http.StatusBadRequest, "invalid_request", invalidDetail(err)
	case errors.Is(err, apikey.ErrRevoked):
		return http.StatusConflict, "revoked", "The key is revoked: it can no longer change."
	case errors.Is(err, apikey.ErrAlreadyRolled):
		return http.StatusConflict, "rolled", "The key was rolled: it can no longer change; its successor can."
	case errors.Is(err, apikey.ErrExpired):
		return http.StatusConflict, "expired", "The key has expired: it cannot be rolled."
	}
	return http.StatusInternalServerError, "internal", "The request could not be completed."
}

// fail answers err: its status and detail, a 500 logged.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	st, code, detail := status(err)
	if st == http.StatusInternalServerError {
		h.logError(r, "manage: the store failed", err)
	}
	h.problem(w, r, st, code, detail)
}

// invalidDetail is the part of an apikey.ErrInvalid error a user needs:
// "KeySpec.Name is empty" becomes "name is empty".
func invalidDetail(err error) string {
	s := err.Error()
	if _, after, ok := strings.Cut(s, apikey.ErrInvalid.Error()+": "); ok {
		s = after
	}
	r := strings.NewReplacer("KeySpec.Name", "name", "KeySpec.Scopes", "scopes", "KeySpec.ExpiresAt", "expires_at",
		"KeySpec.Environment", "environment", "KeySpec.Limits", "limits", "Filter.Limit", "limit")
	return r.Replace(s)
}

// decode reads the JSON object of r's body into v: at most 64 KiB, no
// unknown field, nothing after it. An empty body is an error unless
// optional.
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			return nil
		}
		if err == nil {
			return badInput("the body has more after its JSON object")
		}
	}
	var (
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
		invalid = errors.Is(err, apikey.ErrInvalid)
	)
	switch {
	case errors.Is(err, io.EOF) && optional:
		return nil
	case errors.Is(err, io.EOF):
		return badInput("the body is empty: send a JSON object")
	case errors.As(err, &tooBig):
		return &inputError{status: http.StatusRequestEntityTooLarge, detail: fmt.Sprintf("the body is larger than %d bytes", maxBody)}
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return badInput("the body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	case errors.As(err, &typ) && typ.Field != "":
		return badInput("%s: expected %s, got a JSON %s", typ.Field, typeName(typ), typ.Value)
	case errors.As(err, &typ):
		return badInput("the body must be a JSON object")
	case invalid:
		return badInput("%s", invalidDetail(err))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badInput("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return badInput("the body is not valid: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// typeName names the JSON type a Go type expects.
func typeName(e *json.UnmarshalTypeError) string {
	switch e.Type.Kind().String() {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	}
	return e.Type.String()
}
