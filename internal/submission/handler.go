package submission

import (
	"errors"
	"io"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
)

// Register adds the survey app's routes, all for respondents of {surveyId} only.
func (s *Service) Register(rt *httpapi.Router) {
	rt.Handle("POST /api/surveys/{surveyId}/session", httpapi.SurveyRespondent, s.handleStartSession)
	rt.Handle("DELETE /api/surveys/{surveyId}/session", httpapi.SurveyRespondent, s.handleCancelSession)
	rt.Handle("POST /api/surveys/{surveyId}/submission", httpapi.SurveyRespondent, s.handleSubmit)
}

type sessionResponse struct {
	SessionID string `json:"sessionId"`
}

type submissionResponse struct {
	SubmissionID string `json:"submissionId"`
	FollowUpURL  string `json:"followUpUrl,omitempty"`
}

// HeaderIdempotencyKey names the header that makes a submission safe to repeat.
const HeaderIdempotencyKey = "Idempotency-Key"

// maxIdempotencyKeyLen bounds the header, which is stored and indexed.
const maxIdempotencyKeyLen = 255

func (s *Service) handleStartSession(w http.ResponseWriter, r *http.Request) error {
	id, err := s.StartSession(r.Context(), httpapi.PrincipalFrom(r.Context()))
	if errors.Is(err, store.ErrConflict) {
		// Starts of the same respondent kept racing past StartSession's retries.
		return httpapi.Conflict("session_conflict", "another start of a session for this respondent ran at the same time; try again")
	}
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, sessionResponse{SessionID: id})
	return nil
}

func (s *Service) handleCancelSession(w http.ResponseWriter, r *http.Request) error {
	_, err := s.CancelSession(r.Context(), httpapi.PrincipalFrom(r.Context()))
	if errors.Is(err, ErrNoOpenSession) {
		return httpapi.NotFound("session_not_found", "there is no open session")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleSubmit(w http.ResponseWriter, r *http.Request) error {
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	if err := httpapi.RequireContentType(r, "application/json"); err != nil {
		return err
	}
	rec, err := s.readRecall(w, r)
	if err != nil {
		return err
	}
	receipt, err := s.Submit(r.Context(), httpapi.PrincipalFrom(r.Context()), rec, key)
	if err != nil {
		return err
	}
	// A repeat answers exactly as the first time did.
	httpapi.WriteJSON(w, http.StatusCreated, submissionResponse{SubmissionID: receipt.SubmissionID, FollowUpURL: receipt.FollowUpURL})
	return nil
}

// readRecall reads and checks the recall, in a span of its own ("submission.read"): a slow
// upload or a large recall shows there, apart from the group-commit wait and the commit that
// follow.
func (s *Service) readRecall(w http.ResponseWriter, r *http.Request) (*Recall, error) {
	_, span := s.committer.tracer.Start(r.Context(), "submission.read")
	defer span.End()
	body, err := readRecall(w, r)
	if err != nil {
		span.SetStatus(codes.Error, "reading the body")
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.request.body.size", len(body)))
	rec, err := ParseRecall(body)
	if err != nil {
		span.SetStatus(codes.Error, "not a valid recall")
		return nil, err
	}
	return rec, nil
}

// recallPrealloc bounds what a declared Content-Length may have allocated before its bytes
// arrive: a typical recall (about 10 KB) is read in one allocation, larger ones grow as their
// bytes come, so a client declaring a megabyte and sending nothing holds no megabyte.
const recallPrealloc = 64 << 10

// readRecall reads the body in one allocation when its declared length is small (recalls are
// large, and growing a buffer for each costs more than parsing it); otherwise as
// httpapi.ReadBody does, with its 413.
func readRecall(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength <= 0 || r.ContentLength > recallPrealloc {
		return httpapi.ReadBody(w, r, MaxRecallBytes)
	}
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, httpapi.BadRequest("bad_body", "could not read the request body")
	}
	return body, nil
}

// idempotencyKey returns the request's Idempotency-Key: "" when absent, 400 when it is not 1
// to 255 visible ASCII characters.
func idempotencyKey(r *http.Request) (string, error) {
	vals := r.Header.Values(HeaderIdempotencyKey)
	if len(vals) == 0 {
		return "", nil
	}
	bad := httpapi.Validation(httpapi.FieldError{Field: HeaderIdempotencyKey,
		Message: "must be one value of 1 to 255 visible ASCII characters"})
	key := vals[0]
	if len(vals) > 1 || key == "" || len(key) > maxIdempotencyKeyLen {
		return "", bad
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c > 0x7e {
			return "", bad
		}
	}
	return key, nil
}
