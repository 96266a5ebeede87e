package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/dispatch24/dispatch24/pkg/client"
)

// A third party registers a webhook for a survey's submissions, then lists the deliveries to
// it that failed. apiURL is the Dispatch24 API's address, token a personal access token an
// operator created for the third party, and receiverURL where the third party receives
// deliveries (here a receiver that is down, so the test send fails).
func Example() {
	ctx := context.Background()
	c, err := client.New(apiURL, client.WithToken(token))
	if err != nil {
		log.Fatal(err)
	}

	hook, err := c.CreateWebhook(ctx, "demo", client.NewWebhook{
		URL:         receiverURL,
		Events:      []string{"survey.session.submitted"},
		Description: "ACME analytics",
	})
	if err != nil {
		log.Fatal(err)
	}
	// The signing secret is shown this once: keep it to verify deliveries (pkg/webhook).
	fmt.Println("registered:", hook.URL == receiverURL, "secret:", strings.HasPrefix(hook.Secret, "whsec_"))

	// A test send checks the endpoint at once.
	sent, err := c.TestWebhook(ctx, "demo", hook.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("test delivered:", sent.Delivered)

	// The failed deliveries, newest first, page by page.
	f := client.DeliveryFilter{SurveyID: "demo", WebhookID: hook.ID, Status: []string{client.StatusFailed}}
	for {
		page, err := c.ListDeliveries(ctx, f)
		if err != nil {
			var apiErr *client.Error
			if errors.As(err, &apiErr) {
				log.Fatalf("the API refused: %s (%s)", apiErr.Code, apiErr.Detail)
			}
			log.Fatal(err)
		}
		for _, d := range page.Items {
			fmt.Printf("%s %s after %d attempt(s), last answer %d\n", d.Type, d.Status, d.Attempts, *d.LastStatusCode)
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	// Output:
	// registered: true secret: true
	// test delivered: false
	// webhook.test failed after 1 attempt(s), last answer 503
}
