package webhook_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The client starts connection goroutines; every test must leave none behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
