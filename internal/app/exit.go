package app

import (
	"errors"
	"fmt"
	"io"

	"github.com/dispatch24/dispatch24/internal/config"
)

// ErrUsage marks a bad command line of an operator's command (wrap it with the detail).
var ErrUsage = errors.New("bad command line")

// ExitCode reports err on stderr as one line and returns the process exit status: 0 for
// nil or -help, 2 for configuration errors and bad command lines (ErrUsage), 1 for anything
// else.
func ExitCode(prog string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, config.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	var cerr *config.Error
	if errors.As(err, &cerr) || errors.Is(err, ErrUsage) {
		return 2
	}
	return 1
}
