package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
)

// Deliveries returns the executor's queries of the deliveries, delivery_attempts and replays
// tables.
func (e executor) Deliveries() store.Deliveries {
	return deliveries{
		Deliveries: sqlcommon.Deliveries{Read: e.read(), Write: e.write(),
			NewIDExpr:        "'dlv_' || lower(hex(randomblob(16)))",
			ReplaySurveyExpr: "json_extract(filter, '$.surveyId')"},
		e: e,
	}
}

type deliveries struct {
	sqlcommon.Deliveries
	e executor
}

var _ store.Deliveries = deliveries{}

// inTx runs fn on the executor's transaction, or in a new write transaction outside one.
func (e executor) inTx(ctx context.Context, fn func(tx store.Querier) error) error {
	if e.tx != nil {
		return fn(e.tx)
	}
	return e.c.InTx(ctx, fn)
}

// RecordResults runs the batch's statements in one write transaction.
func (d deliveries) RecordResults(ctx context.Context, r *store.DeliveryResults, disabled []store.DisabledEndpoint) ([]store.DisabledEndpoint, error) {
	p := sqlcommon.PlanResults(r)
	defer p.Release()
	start := len(disabled)
	err := d.e.inTx(ctx, func(tx store.Querier) error {
		var err error
		disabled, err = sqlcommon.ExecResults(ctx, tx, p, disabled[:start])
		return err
	})
	if err != nil {
		return disabled[:start], fmt.Errorf("recording %d delivery results: %w", len(r.Deliveries), err)
	}
	return disabled, nil
}

// On SQLite the claim is PostgreSQL's walk (see the postgres driver) in a write transaction,
// a statement per step: the one writer serialises claims, so nothing needs locking, and
// statements cost microseconds. Every scan names its index (INDEXED BY), so no other plan is
// possible.
const (
	// ClaimEndpointsSQL lists the endpoints with pending deliveries (step 1).
	ClaimEndpointsSQL = `WITH RECURSIVE endpoint (webhook_id) AS (
	SELECT (SELECT webhook_id FROM deliveries INDEXED BY deliveries_pending_idx WHERE status = 'pending' AND lane_seq IS NULL
		ORDER BY webhook_id LIMIT 1)
	UNION ALL
	SELECT (SELECT d.webhook_id FROM deliveries AS d INDEXED BY deliveries_pending_idx
		WHERE d.status = 'pending' AND d.lane_seq IS NULL AND d.webhook_id > endpoint.webhook_id ORDER BY d.webhook_id LIMIT 1)
	FROM endpoint WHERE endpoint.webhook_id IS NOT NULL
)
SELECT webhook_id FROM endpoint WHERE webhook_id IS NOT NULL`

	// ClaimOldestSQL reads an endpoint's oldest due rows that are not leased (step 2).
	ClaimOldestSQL = `SELECT next_attempt_at, id FROM deliveries INDEXED BY deliveries_pending_idx
WHERE webhook_id = $1 AND status = 'pending' AND lane_seq IS NULL AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2)
ORDER BY next_attempt_at, id
LIMIT $3`

	// ClaimLeaseSQL leases the rows of the cut (step 4); %s lists their ids. The index is the
	// primary key's (SQLite names it after the table): with statistics of a small table
	// SQLite otherwise scanned the whole table for the list.
	ClaimLeaseSQL = `UPDATE deliveries INDEXED BY sqlite_autoindex_deliveries_1 SET lease_until = $1 WHERE id IN (%s)
RETURNING ` + sqlcommon.ClaimedCols
)

// ClaimLaneSQL leases the heads of FIFO lanes that may go (see the postgres driver's): $1
// lease until, $2 now, $3 LaneGapUntil, $4 the limit. The heads come from one grouped read of
// deliveries_lane_pending_idx, which costs the lanes' backlog rather than one probe per lane:
// SQLite serves small deployments, and the one writer makes a lock-free read and update safe.
var ClaimLaneSQL = `UPDATE deliveries SET lease_until = $1 WHERE id IN (
	SELECT head.id FROM (
		SELECT webhook_id, MIN(lane_seq) AS lane_seq FROM deliveries INDEXED BY deliveries_lane_pending_idx
		WHERE status = 'pending' AND lane_seq IS NOT NULL GROUP BY webhook_id
	) AS lane
	JOIN deliveries AS head ON head.webhook_id = lane.webhook_id AND head.lane_seq = lane.lane_seq AND head.status = 'pending'
	LEFT JOIN webhooks w ON w.id = head.webhook_id
	WHERE ` + fmt.Sprintf(sqlcommon.LaneGapSQL, "MAX") + `
	ORDER BY head.next_attempt_at, head.id
	LIMIT $4
)
RETURNING ` + sqlcommon.ClaimedCols

// claimCandidate is a due row of step 2.
type claimCandidate struct {
	due int64
	id  string
}

// ClaimDue leases due pending deliveries (see store.Deliveries).
func (d deliveries) ClaimDue(ctx context.Context, c store.DeliveryClaim) ([]store.Delivery, error) {
	now, leaseUntil := c.Now.UnixMicro(), c.LeaseUntil.UnixMicro()
	room := make(map[string]int, len(c.Rooms))
	for _, r := range c.Rooms {
		room[r.WebhookID] = r.Free
	}
	gapUntil := int64(math.MinInt64)
	if !c.LaneGapUntil.IsZero() {
		gapUntil = c.LaneGapUntil.UnixMicro()
	}
	var out []store.Delivery
	err := d.e.inTx(ctx, func(tx store.Querier) error {
		out = out[:0]
		rows, err := tx.Query(ctx, ClaimLaneSQL, leaseUntil, now, gapUntil, c.Limit)
		if err != nil {
			return err
		}
		if out, err = sqlcommon.ScanClaimed(rows, out); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, ClaimEndpointsSQL)
		if err != nil {
			return err
		}
		var endpoints []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			endpoints = append(endpoints, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var cands []claimCandidate
		for _, ep := range endpoints {
			n := c.PerEndpoint
			if free, ok := room[ep]; ok {
				n = free
			}
			if n = min(n, c.Limit); n <= 0 {
				continue
			}
			rows, err := tx.Query(ctx, ClaimOldestSQL, ep, now, n)
			if err != nil {
				return err
			}
			for rows.Next() {
				var cd claimCandidate
				if err := rows.Scan(&cd.due, &cd.id); err != nil {
					rows.Close()
					return err
				}
				cands = append(cands, cd)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		if len(cands) == 0 {
			return nil
		}
		slices.SortFunc(cands, func(a, b claimCandidate) int {
			return cmp.Or(cmp.Compare(a.due, b.due), strings.Compare(a.id, b.id))
		})
		cands = cands[:min(len(cands), c.Limit)]
		args := make([]any, 0, len(cands)+1)
		args = append(args, leaseUntil)
		ph := make([]string, len(cands))
		for i, cd := range cands {
			args = append(args, cd.id)
			ph[i] = "$" + strconv.Itoa(i+2)
		}
		rows, err = tx.Query(ctx, fmt.Sprintf(ClaimLeaseSQL, strings.Join(ph, ",")), args...)
		if err != nil {
			return err
		}
		out, err = sqlcommon.ScanClaimed(rows, out)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claiming due deliveries: %w", err)
	}
	// RETURNING follows no order: attempt the longest waiting first.
	slices.SortFunc(out, func(a, b store.Delivery) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}
