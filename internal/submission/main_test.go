package submission_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Group commit hands batches to short-lived goroutines and the relay runs several: every
// test must leave none behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
