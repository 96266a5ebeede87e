package survey

import (
	"encoding/csv"
	"net/http"
	"time"
)

// exportPageRows is how many respondents the export reads per query: pages keep memory flat
// and never hold one read open for the whole download.
const exportPageRows = 1000

// handleExportRespondents streams a survey's respondents as CSV with their authentication
// URLs, page by page. Once the first byte is sent an error can only cut the download short;
// it is logged.
func (s *Service) handleExportRespondents(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.loadSurvey(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	page, err := s.store.Respondents(ctx, sv.ID, nil, exportPageRows)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+sv.ID+`-respondents.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"userId", "username", "authToken", "authUrl", "shortAuthUrl"})
	rc := http.NewResponseController(w) // reaches Flush through middleware wrappers
	for {
		// The server's write timeout is for ordinary responses; a long download that keeps
		// moving may take longer.
		_ = rc.SetWriteDeadline(time.Now().Add(time.Minute))
		for i := range page {
			authURL, short := AuthURLs(s.cfg.SurveyAppURL, sv.ID, page[i].AuthToken)
			_ = cw.Write([]string{page[i].ID, page[i].Username, page[i].AuthToken, authURL, short})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			s.logger.InfoContext(ctx, "respondent export cut short", "survey", sv.ID, "err", err)
			return nil
		}
		_ = rc.Flush()
		if len(page) < exportPageRows {
			return nil
		}
		last := page[len(page)-1]
		page, err = s.store.Respondents(ctx, sv.ID, &Cursor{CreatedAt: last.CreatedAt.UnixMicro(), ID: last.ID}, exportPageRows)
		if err != nil {
			s.logger.ErrorContext(ctx, "respondent export failed", "survey", sv.ID, "err", err)
			// Abort the response so the client sees a broken download, not a short file.
			panic(http.ErrAbortHandler)
		}
	}
}
