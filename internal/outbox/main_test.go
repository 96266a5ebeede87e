package outbox_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The relay runs goroutines; a stopped relay must leave none behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
