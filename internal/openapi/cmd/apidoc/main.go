// Command apidoc renders the API's OpenAPI document as Markdown (docs/api.md).
//
//	go run ./internal/openapi/cmd/apidoc -o docs/api.md
//
// Without -o it writes to standard output.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/dispatch24/dispatch24/internal/openapi/model"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "apidoc:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("apidoc", flag.ContinueOnError)
	out := fs.String("o", "", "write to this file instead of standard output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	doc, err := model.Reference()
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(doc)
		return err
	}
	return os.WriteFile(*out, doc, 0o644)
}
