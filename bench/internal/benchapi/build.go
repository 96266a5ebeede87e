package benchapi

import (
	"context"
	"fmt"
	"io"
	"os/exec"
)

// Build builds the Go package pkg (an import path or a path relative to the module root, such
// as "./cmd/dispatcher" or "github.com/nats-io/nats-server/v2" at go.mod's version) into
// out, with the go command's output on stderr: the harnesses that run the real binaries build
// them this way unless they are given prebuilt ones.
func Build(ctx context.Context, out, pkg string, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %w", pkg, err)
	}
	return nil
}
