package delivery

import "github.com/dispatch24/dispatch24/pkg/webhook"

// AttemptError is the attempt log's error: the code, then after ": " the failure's detail
// without internal addresses (webhook.Result.Reason), such as "connection_error: connection
// refused". blocked_address and dns_error stay bare codes (CONTRACT: error "blocked_address");
// the delivery's lastError is always the bare code. Clients match the part before ":".
func AttemptError(res *webhook.Result) string {
	if res.Delivered {
		return ""
	}
	if res.Reason == "" {
		return string(res.Code)
	}
	return string(res.Code) + ": " + res.Reason
}
