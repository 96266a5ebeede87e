// Package drivertest is the one suite every store driver passes: each table family's queries,
// run against internal/store/postgres and internal/store/sqlite by their tests.
package drivertest

import (
	"testing"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Opener returns a fresh, migrated database of the driver under test, closed at the end of t.
type Opener func(t *testing.T) *store.DB

// Run runs the whole suite.
func Run(t *testing.T, open Opener) {
	t.Run("accounts", func(t *testing.T) { testAccounts(t, open) })
	t.Run("surveys", func(t *testing.T) { testSurveys(t, open) })
	t.Run("submissions", func(t *testing.T) { testSubmissions(t, open) })
	t.Run("events", func(t *testing.T) { testEvents(t, open) })
	t.Run("webhooks", func(t *testing.T) { testWebhooks(t, open) })
	t.Run("deliveries", func(t *testing.T) { testDeliveries(t, open) })
	t.Run("retention", func(t *testing.T) { testRetention(t, open) })
	t.Run("lanes", func(t *testing.T) { testLanes(t, open) })
}
