package sqlite_test

import (
	"testing"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/drivertest"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// TestDriver runs the one driver suite against this driver.
func TestDriver(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) *store.DB { return storetest.SQLite(t) })
}
