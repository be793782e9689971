// Command connet runs a connet client (the default), a control server with a
// relay (server), or either on its own (control, relay). See the README for
// the configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/p2pconnet/connet/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		printError(err)
		os.Exit(1)
	}
}

// printError prints config problems one per line, everything else as is.
func printError(err error) {
	if errs := config.Errors(err); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(os.Stderr, "connet: config:", e)
		}
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	fmt.Fprintln(os.Stderr, "connet:", err)
}
