package store_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// Migration 050: on PostgreSQL submissions.body is lz4-compressed text (no json parse on
// insert) while events.payload stays json; both keep a document's bytes as written, in both
// dialects.
func TestSubmissionBodyStorage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if db.Dialect == store.Postgres {
			for _, c := range []struct{ table, column, typ string }{
				{"submissions", "body", "text"},
				{"events", "payload", "json"},
			} {
				var typ, compression string
				if err := db.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod), attcompression::text FROM pg_attribute
					WHERE attrelid = $1::regclass AND attname = $2`, c.table, c.column).Scan(&typ, &compression); err != nil {
					t.Fatal(err)
				}
				if typ != c.typ || compression != "l" {
					t.Errorf("%s.%s is %s with compression %q, want %s with lz4 (l)", c.table, c.column, typ, compression, c.typ)
				}
			}
		}
		now := store.Micros(time.Now())
		if _, err := db.Exec(ctx, `INSERT INTO surveys (id, name, created_at, updated_at) VALUES ('s', 's', $1, $1)`, now); err != nil {
			t.Fatal(err)
		}
		// Spacing, key order and a repeated key survive, and the column answers JSON queries
		// through a cast.
		body := []byte(`{"id":"sub_1",  "recall" : {"b":1,"a":[2, 3],"a":4}}`)
		if _, err := db.Exec(ctx, `INSERT INTO submissions (id, survey_id, user_id, body, submitted_at)
			VALUES ('sub_1', 's', 'u', $1, $2)`, body, now); err != nil {
			t.Fatal(err)
		}
		var got []byte
		if err := db.QueryRow(ctx, `SELECT body FROM submissions WHERE id = 'sub_1'`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("stored %s, want %s", got, body)
		}
		q := `SELECT body::json ->> 'id' FROM submissions WHERE id = 'sub_1'`
		if db.Dialect == store.SQLite {
			q = `SELECT json_extract(body, '$.id') FROM submissions WHERE id = 'sub_1'`
		}
		var id string
		if err := db.QueryRow(ctx, q).Scan(&id); err != nil || id != "sub_1" {
			t.Fatalf("id from the body: %q, %v", id, err)
		}
	})
}
