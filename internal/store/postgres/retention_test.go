package postgres_test

import (
	"testing"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/drivertest"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// TestRetention runs the suite's retention part against this driver.
func TestRetention(t *testing.T) {
	drivertest.RunRetention(t, func(t *testing.T) *store.DB { return storetest.Postgres(t) })
}
