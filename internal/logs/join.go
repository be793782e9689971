package logs

import "strings"

// Join is errors.Join on one line: its text is the errors' texts separated
// by "; " (errors.Join puts newlines between them, which break a log line
// in two and a status page's table). Nil errors are dropped; Join returns
// nil if nothing is left. errors.Is and errors.As see each error.
func Join(errs ...error) error {
	var kept []error
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	return joined(kept)
}

type joined []error

func (j joined) Error() string {
	texts := make([]string, len(j))
	for i, err := range j {
		texts[i] = err.Error()
	}
	return strings.Join(texts, "; ")
}

func (j joined) Unwrap() []error { return j }
