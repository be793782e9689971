package wire

import (
	"errors"
	"fmt"

	"github.com/p2pconnet/connet/internal/wire/pb"
)

// Error is a protocol error as one side reports it to the other. Callers
// branch on Code; Message is for people.
type Error struct {
	Code    pb.ErrorCode
	Message string
}

// Errorf builds an Error with a formatted message.
func Errorf(code pb.ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", codeName(e.Code), e.Message)
}

// Is matches any *Error with the same code, so callers can write
// errors.Is(err, &wire.Error{Code: pb.ErrorCode_ERROR_CODE_AUTH_FAILED}).
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// ToPB converts err to its wire form; errors that are not *Error are sent
// with an unspecified code.
func ToPB(err error) *pb.Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return &pb.Error{Code: e.Code, Message: e.Message}
	}
	return &pb.Error{Message: err.Error()}
}

// FromPB converts a wire error, returning nil for none.
func FromPB(e *pb.Error) error {
	if e == nil {
		return nil
	}
	return &Error{Code: e.GetCode(), Message: e.GetMessage()}
}

func codeName(c pb.ErrorCode) string {
	switch c {
	case pb.ErrorCode_ERROR_CODE_AUTH_FAILED:
		return "authentication failed"
	case pb.ErrorCode_ERROR_CODE_ADDR_FORBIDDEN:
		return "address forbidden"
	case pb.ErrorCode_ERROR_CODE_ENDPOINT_FORBIDDEN:
		return "endpoint forbidden"
	case pb.ErrorCode_ERROR_CODE_BAD_REQUEST:
		return "bad request"
	case pb.ErrorCode_ERROR_CODE_DESTINATION_NOT_FOUND:
		return "destination not found"
	case pb.ErrorCode_ERROR_CODE_DESTINATION_DIAL_FAILED:
		return "destination dial failed"
	case pb.ErrorCode_ERROR_CODE_NOT_AUTHORIZED:
		return "not authorized"
	case pb.ErrorCode_ERROR_CODE_LIMIT:
		return "limit reached"
	default:
		return "error"
	}
}
