package drivertest

import "testing"

func testEvents(t *testing.T, open Opener) {
	t.Helper()
	_ = open
}
