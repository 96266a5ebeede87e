package client

import (
	"context"
	"net/http"
	"net/url"
)

func webhooksPath(surveyID string) string {
	return "/api/admin/surveys/" + url.PathEscape(surveyID) + "/webhooks"
}

func webhookPath(surveyID, webhookID string) string {
	return webhooksPath(surveyID) + "/" + url.PathEscape(webhookID)
}

// CreateWebhook registers an endpoint for a survey's events. The answer carries the signing
// secret (v1), shown this once, or the public key (v1a): keep it to verify deliveries
// (pkg/webhook).
func (c *Client) CreateWebhook(ctx context.Context, surveyID string, w NewWebhook) (*CreatedWebhook, error) {
	var out CreatedWebhook
	if err := c.Do(ctx, http.MethodPost, webhooksPath(surveyID), nil, w, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListWebhooks returns a survey's webhooks.
func (c *Client) ListWebhooks(ctx context.Context, surveyID string) ([]Webhook, error) {
	var out struct {
		Items []Webhook `json:"items"`
	}
	if err := c.Do(ctx, http.MethodGet, webhooksPath(surveyID), nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// GetWebhook returns one webhook.
func (c *Client) GetWebhook(ctx context.Context, surveyID, webhookID string) (*Webhook, error) {
	var out Webhook
	if err := c.Do(ctx, http.MethodGet, webhookPath(surveyID, webhookID), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateWebhook changes the fields p sets and returns the webhook, with its new secret when p
// switched the signature scheme.
func (c *Client) UpdateWebhook(ctx context.Context, surveyID, webhookID string, p WebhookPatch) (*UpdatedWebhook, error) {
	var out UpdatedWebhook
	if err := c.Do(ctx, http.MethodPatch, webhookPath(surveyID, webhookID), nil, p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteWebhook removes a webhook: events accepted after it answers are not delivered to it.
func (c *Client) DeleteWebhook(ctx context.Context, surveyID, webhookID string) error {
	return c.Do(ctx, http.MethodDelete, webhookPath(surveyID, webhookID), nil, nil, nil)
}

// RotateSecret gives a webhook a new secret (v1) or key pair (v1a); the old one keeps signing
// until PreviousSecretExpiresAt.
func (c *Client) RotateSecret(ctx context.Context, surveyID, webhookID string) (*RotatedSecret, error) {
	var out RotatedSecret
	if err := c.Do(ctx, http.MethodPost, webhookPath(surveyID, webhookID)+"/rotate-secret", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TestWebhook sends a webhook.test event to the webhook now and returns the attempt's outcome.
func (c *Client) TestWebhook(ctx context.Context, surveyID, webhookID string) (*TestSend, error) {
	var out TestSend
	if err := c.Do(ctx, http.MethodPost, webhookPath(surveyID, webhookID)+"/test", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
