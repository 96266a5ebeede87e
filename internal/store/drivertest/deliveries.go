package drivertest

import "testing"

func testDeliveries(t *testing.T, open Opener) {
	t.Helper()
	_ = open
}
