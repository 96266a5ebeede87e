package drivertest

import "testing"

func testWebhooks(t *testing.T, open Opener) {
	t.Helper()
	_ = open
}
