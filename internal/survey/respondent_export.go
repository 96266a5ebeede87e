package survey

import (
	"encoding/csv"
	"net/http"
	"strings"
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
			_ = cw.Write([]string{page[i].ID, spreadsheetSafe(page[i].Username), page[i].AuthToken, authURL, short})
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
		page, err = s.store.Respondents(ctx, sv.ID, &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}, exportPageRows)
		if err != nil {
			s.logger.ErrorContext(ctx, "respondent export failed", "survey", sv.ID, "err", err)
			// Abort the response so the client sees a broken download, not a short file.
			panic(http.ErrAbortHandler)
		}
	}
}

// formulaStart reports whether a spreadsheet may read a cell starting with c as a formula
// (OWASP's list: = + - @, tab and carriage return).
func formulaStart(c byte) bool {
	return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r'
}

// spreadsheetSafe prefixes a cell that a spreadsheet would read as a formula with ', which
// makes it text: a respondent's username comes from a third party's create-user token, and
// the export puts it next to the authentication token that a formula could send away. Cells
// already made of quotes before such a character get one quote more, so that
// importCell(spreadsheetSafe(v)) == v for every v and an exported file imports back to the
// same usernames.
func spreadsheetSafe(v string) string {
	rest := strings.TrimLeft(v, "'")
	if rest != "" && formulaStart(rest[0]) {
		return "'" + v
	}
	return v
}

// importCell undoes spreadsheetSafe on an imported username: one leading ' is dropped when
// only quotes stand between it and a formula character. A username of its own starting with
// quotes and then such a character is therefore written with one quote more in a file made
// by hand, as the export writes it.
func importCell(v string) string {
	rest := strings.TrimLeft(v, "'")
	if len(rest) < len(v) && rest != "" && formulaStart(rest[0]) {
		return v[1:]
	}
	return v
}
