package drivertest

import "testing"

func testAccounts(t *testing.T, open Opener) {
	t.Helper()
	_ = open
}
