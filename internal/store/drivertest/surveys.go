package drivertest

import "testing"

func testSurveys(t *testing.T, open Opener) {
	t.Helper()
	_ = open
}
