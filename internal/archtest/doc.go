// Package archtest holds no code: its test checks the module's dependency rules on the source
// tree, so that a layering mistake fails `go test` instead of waiting for a review.
//
//   - pgx is imported only by the PostgreSQL driver (internal/store/postgres).
//   - modernc.org/sqlite is imported only by the drivers (internal/store/sqlite, postgres).
//   - Nothing below the wiring depends on internal/app: no package under internal/ (but
//     internal/app itself) and none under pkg/.
//   - internal/endpoint does not depend on internal/dispatch (the CRUD package for endpoints
//     must not link the delivery engine and its NATS server).
//   - No production code outside internal/store reads a store's Dialect: dialect differences
//     live in the drivers.
//   - No production code outside internal/store holds SQL: no string literal that, trimmed
//     and upper-cased, starts with SELECT, INSERT, UPDATE, DELETE, WITH (a common table
//     expression), CREATE or DROP and a space (bench harnesses excepted, as for pgx).
//   - One owner per table family: outside internal/store, only the owning package calls a
//     family's accessor (db.Driver.Deliveries(), tx.Events(), …; the owners are in the
//     test's familyOwners and README "The map"). The allowances (txCrossings) are calls
//     inside the owner's own transaction that must commit with it: existence checks, token
//     revocations, and the erasure that deletes a survey's or respondent's rows of every
//     family at once. Bench harnesses are excepted.
//   - pkg/ imports nothing from internal/ but internal/ids (a leaf: the standard library and
//     github.com/google/uuid), so what outside code imports stays self-contained.
//
// Violations that the storage-boundary work (issue 12) is still removing are listed in the
// test's stillMoving; each entry must disappear once its move has landed, and the test
// fails on an entry that no longer matches anything, so the list only shrinks.
package archtest
