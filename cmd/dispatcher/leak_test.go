package main

import (
	"testing"

	"go.uber.org/goleak"
)

// run must leave nothing running once it has returned.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
