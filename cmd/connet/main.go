// Command connet runs a connet client (the default), a control server with a
// relay (server), or either on its own (control, relay). See
// docs/configuration.md for the configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/p2pconnet/connet/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	code := exitCode(ctx, err, os.Stderr)
	stop()
	os.Exit(code)
}

// exitCode reports err on w and returns the process's exit code: 0 when the
// command succeeded or was stopped by an interrupt (Ctrl-C, SIGTERM),
// whether or not a client ever reached its server; 1 otherwise.
func exitCode(ctx context.Context, err error, w io.Writer) int {
	if err == nil || (ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		return 0
	}
	printError(w, err)
	return 1
}

// printError prints config problems one per line (a syntax error followed
// by the line it is about, marked at the column), everything else as is,
// followed by a hint when there is one.
func printError(w io.Writer, err error) {
	if errs := config.Errors(err); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(w, "connet: config:", e)
			if x := e.Excerpt(); x != "" {
				fmt.Fprintln(w, x)
			}
		}
		return
	}
	// The library's errors carry the same prefix; print it once.
	fmt.Fprintln(w, "connet:", strings.TrimPrefix(err.Error(), "connet: "))
	var h *hintError
	if errors.As(err, &h) {
		fmt.Fprintln(w, "connet: hint:", h.hint)
	}
}
