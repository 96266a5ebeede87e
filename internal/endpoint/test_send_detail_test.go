package endpoint_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// TestTestSendRefusedDetail: a test send to a receiver that refuses the connection tells the
// survey's staff "connection refused", not the dialler's error with the address dialled, and
// records the attempt as the engine does ("connection_error: connection refused"; issue 16
// item 5); the delivery's lastError stays the bare code.
func TestTestSendRefusedDetail(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		b := setup(t, db, options{allowNets: loopback(), clientAllowAll: true})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		id := b.create(t, "http://"+addr+"/hook")["id"].(string)
		code, out, raw := b.do(t, asAdmin, "POST", "/api/admin/surveys/s1/webhooks/"+id+"/test", nil)
		if code != http.StatusOK || out["delivered"] != false || out["error"] != "connection_error" || out["detail"] != "connection refused" {
			t.Fatalf("test send to a closed port: %d %s", code, raw)
		}
		if strings.Contains(out["detail"].(string), addr) || strings.Contains(out["detail"].(string), "127.0.0.1") {
			t.Errorf("detail %q names the address dialled", out["detail"])
		}
		var lastErr, attemptErr string
		if err := db.QueryRow(context.Background(), `SELECT d.last_error, a.error FROM deliveries d
			JOIN delivery_attempts a ON a.delivery_id = d.id WHERE d.id = $1`, out["deliveryId"]).Scan(&lastErr, &attemptErr); err != nil {
			t.Fatal(err)
		}
		if lastErr != "connection_error" || attemptErr != "connection_error: connection refused" {
			t.Errorf("recorded lastError %q, attempt error %q; want the code and %q", lastErr, attemptErr, "connection_error: connection refused")
		}
	})
}
