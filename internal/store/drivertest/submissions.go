package drivertest

import "testing"

func testSubmissions(t *testing.T, open Opener) {
	t.Helper()
	_ = open
}
