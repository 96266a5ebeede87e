package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Query returns the listing's query parameters for f.
func (f DeliveryFilter) Query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("surveyId", f.SurveyID)
	set("webhookId", f.WebhookID)
	set("status", strings.Join(f.Status, ","))
	set("type", f.Type)
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	set("cursor", f.Cursor)
	return q
}

// ListDeliveries returns one page of the deliveries f selects, newest first. Admins see every
// survey's, staff their surveys'. Pass the page's NextCursor as f.Cursor for the next page.
func (c *Client) ListDeliveries(ctx context.Context, f DeliveryFilter) (*DeliveryPage, error) {
	var out struct {
		Items      []Delivery `json:"items"`
		NextCursor *string    `json:"nextCursor"`
	}
	if err := c.Do(ctx, http.MethodGet, "/api/admin/deliveries", f.Query(), nil, &out); err != nil {
		return nil, err
	}
	page := &DeliveryPage{Items: out.Items}
	if out.NextCursor != nil {
		page.NextCursor = *out.NextCursor
	}
	return page, nil
}

// GetDelivery returns a delivery with its attempt log.
func (c *Client) GetDelivery(ctx context.Context, id string) (*Delivery, error) {
	var out Delivery
	if err := c.Do(ctx, http.MethodGet, "/api/admin/deliveries/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReplayDelivery delivers a delivery's event again, as a new delivery linked to it.
func (c *Client) ReplayDelivery(ctx context.Context, id string) (*ReplayedDelivery, error) {
	var out ReplayedDelivery
	if err := c.Do(ctx, http.MethodPost, "/api/admin/deliveries/"+url.PathEscape(id)+"/replay", nil, struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StartReplay starts a range replay (or, with DryRun, counts what it would replay). A replay
// of the same range while one runs is an *Error 409 with Code "replay_running".
func (c *Client) StartReplay(ctx context.Context, r ReplayRange) (*ReplayStarted, error) {
	var out struct {
		ReplayID *string `json:"replayId"`
		Matched  int64   `json:"matched"`
		DryRun   bool    `json:"dryRun"`
	}
	if err := c.Do(ctx, http.MethodPost, "/api/admin/deliveries/replay", nil, r, &out); err != nil {
		return nil, err
	}
	s := &ReplayStarted{Matched: out.Matched, DryRun: out.DryRun}
	if out.ReplayID != nil {
		s.ReplayID = *out.ReplayID
	}
	return s, nil
}

// GetReplay returns a range replay's progress.
func (c *Client) GetReplay(ctx context.Context, id string) (*Replay, error) {
	var out Replay
	if err := c.Do(ctx, http.MethodGet, "/api/admin/replays/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
