package survey

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
)

// Import limits.
const (
	// MaxImportErrors is how many problems of a rejected file are listed; the rest are counted.
	MaxImportErrors = 1000
	// importTimeout bounds reading, checking and writing one import.
	importTimeout = 10 * time.Minute
)

// The reserved columns of a respondent CSV file; every other column is a custom field.
const (
	columnUsername = "username"
	columnPassword = "password"
	columnName     = "name"
)

// ImportRow is one valid data row of a respondent CSV file. Empty cells are empty strings and
// leave the respondent's value as it is; CustomFields holds the non-empty custom cells.
type ImportRow struct {
	Line         int
	Username     string
	Password     string
	Name         string
	CustomFields []CustomField
}

// ImportError is one problem of a respondent CSV file.
type ImportError struct {
	Line    int
	Field   string
	Message string
}

// ImportErrors rejects a whole CSV file: the first MaxImportErrors problems and their total.
type ImportErrors struct {
	Errors []ImportError
	Total  int
}

func (e *ImportErrors) Error() string {
	return fmt.Sprintf("the file has %d errors", e.Total)
}

func (e *ImportErrors) add(line int, field, msg string) {
	e.Total++
	if len(e.Errors) < MaxImportErrors {
		e.Errors = append(e.Errors, ImportError{Line: line, Field: field, Message: msg})
	}
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ParseImport reads a whole respondent CSV file (RFC 4180, header row first, an optional
// UTF-8 byte order mark) and checks every row before returning: usernames, duplicates within
// the file, lengths, column counts. A bad file gives *ImportErrors naming each bad line;
// other errors come from reading r.
func ParseImport(r io.Reader) ([]ImportRow, error) {
	br := bufio.NewReader(r) // csv.NewReader reuses it rather than wrapping it again
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	problems := &ImportErrors{}

	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		problems.add(1, "(header)", "the file is empty: its first line must name the columns")
		return nil, problems
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			problems.add(pe.StartLine, "(header)", csvMessage(pe))
			return nil, problems
		}
		return nil, fmt.Errorf("reading CSV: %w", err)
	}
	cols := parseHeader(header, problems)
	if problems.Total > 0 {
		return nil, problems
	}

	var rows []ImportRow
	seen := make(map[string]int)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if errors.Is(pe.Err, csv.ErrFieldCount) {
				problems.add(pe.StartLine, "(row)", fmt.Sprintf("has %d columns, the header has %d", len(rec), len(header)))
				continue
			}
			// After a quoting error the reader's position is unreliable: stop here.
			problems.add(pe.StartLine, "(row)", csvMessage(pe))
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		row := ImportRow{Line: line}
		for i, v := range rec {
			c := cols[i]
			switch c.role {
			case columnUsername:
				row.Username = importCell(strings.TrimSpace(v))
			case columnPassword:
				row.Password = v
			case columnName:
				row.Name = v
				if msg := checkName(v); msg != "" {
					problems.add(line, columnName, msg)
				}
			default:
				if v == "" {
					continue
				}
				if msg := checkCustomFieldValue(v); msg != "" {
					problems.add(line, c.name, msg)
				}
				row.CustomFields = append(row.CustomFields, CustomField{Name: c.name, Value: v})
			}
		}
		if msg := checkUsername(row.Username); msg != "" {
			problems.add(line, columnUsername, msg)
		} else if first, dup := seen[row.Username]; dup {
			problems.add(line, columnUsername, fmt.Sprintf("duplicates line %d", first))
		} else {
			seen[row.Username] = line
		}
		if row.Password != "" {
			if msg := checkPassword(row.Password); msg != "" {
				problems.add(line, columnPassword, msg)
			}
		}
		if problems.Total == 0 {
			rows = append(rows, row)
		}
	}
	if problems.Total > 0 {
		return nil, problems
	}
	return rows, nil
}

// importColumn is one column of the header.
type importColumn struct {
	role string // username, password, name, or "" for a custom field
	name string
}

func parseHeader(header []string, problems *ImportErrors) []importColumn {
	cols := make([]importColumn, len(header))
	seen := make(map[string]bool, len(header))
	custom := 0
	for i, h := range header {
		name := strings.TrimSpace(h)
		key := name
		switch lower := strings.ToLower(name); lower {
		case columnUsername, columnPassword, columnName:
			cols[i] = importColumn{role: lower, name: lower}
			key = lower
		default:
			cols[i] = importColumn{name: name}
			custom++
			if msg := checkCustomFieldName(name); msg != "" {
				problems.add(1, fmt.Sprintf("(column %d)", i+1), "custom field "+msg)
				continue
			}
		}
		if seen[key] {
			problems.add(1, name, "is a duplicate column")
		}
		seen[key] = true
	}
	if !seen[columnUsername] {
		problems.add(1, columnUsername, "the header must have a username column")
	}
	if custom > MaxCustomFields {
		problems.add(1, "(header)", fmt.Sprintf("at most %d custom field columns are allowed", MaxCustomFields))
	}
	return cols
}

func csvMessage(pe *csv.ParseError) string {
	return fmt.Sprintf("is not valid CSV (column %d): %v", pe.Column, pe.Err)
}

// ImportResult counts the respondents an import created and updated.
type ImportResult struct {
	Created int `json:"created"`
	Updated int `json:"updated"`
}

// Import writes checked rows (from ParseImport) to a survey in one transaction: new usernames
// are created with fresh auth tokens, existing ones get the non-empty cells of their row (their
// auth tokens are kept). Passwords are hashed first, in parallel, with ImportPasswordParams.
// The store writes the rows in multi-row statements as large as its database does best with.
//
// Every existing row is read before the first write: reads interleaved with the inserts would
// meet a table grown within the transaction that the planner still believes small, and
// PostgreSQL then scans instead of using the index, making a large import quadratic.
func (s *Service) Import(ctx context.Context, sv *Survey, rows []ImportRow) (ImportResult, error) {
	hashes, err := s.hashImportPasswords(ctx, rows)
	if err != nil {
		return ImportResult{}, err
	}
	usernames := make([]string, len(rows))
	for i := range rows {
		usernames[i] = rows[i].Username
	}
	var res ImportResult
	now := s.now()
	err = s.store.drv.InTx(ctx, func(tx store.Executor) error {
		existing, err := tx.Surveys().ExistingRespondents(ctx, sv.ID, usernames)
		if err != nil {
			return err
		}
		res = ImportResult{Updated: len(existing), Created: len(rows) - len(existing)}
		upsert, err := importRespondents(sv, rows, hashes, existing, now)
		if err != nil {
			return err
		}
		if err := tx.Surveys().UpsertRespondents(ctx, upsert); err != nil {
			return err
		}
		// A password set by the file signs its existing respondent out everywhere, as a
		// password set through the API does.
		var reset []string
		for i := range rows {
			if e, ok := existing[rows[i].Username]; ok && hashes[i] != "" {
				reset = append(reset, e.ID)
			}
		}
		return tx.Accounts().RevokeRefreshTokensOf(ctx, reset, now)
	})
	if err != nil {
		return ImportResult{}, fmt.Errorf("importing respondents: %w", err)
	}
	if slices.ContainsFunc(hashes, func(h string) bool { return h != "" }) {
		select {
		case s.imported <- struct{}{}:
		default:
		}
	}
	return res, nil
}

// importRespondents turns checked rows into the respondent rows to upsert. Rows of existing
// respondents carry their merged values; the store keeps their ids and auth tokens, so the
// fresh ones made for them go unused.
func importRespondents(sv *Survey, rows []ImportRow, hashes []string, existing map[string]store.ExistingRespondent, now time.Time) ([]Respondent, error) {
	out := make([]Respondent, len(rows))
	for i := range rows {
		row := &rows[i]
		name, fields := row.Name, row.CustomFields
		if e, ok := existing[row.Username]; ok {
			if name == "" {
				name = e.Name
			}
			fields = mergeCustomFields(e.CustomFields, row.CustomFields)
		}
		token, err := NewAuthToken(sv.AuthURLTokenLength)
		if err != nil {
			return nil, err
		}
		out[i] = Respondent{
			ID:           newRespondentID(),
			SurveyID:     sv.ID,
			Username:     row.Username,
			Name:         name,
			PasswordHash: hashes[i],
			AuthToken:    token,
			CustomFields: fields,
			CreatedAt:    now,
			UpdatedAt:    now,
		}
	}
	return out, nil
}

// hashImportPasswords hashes the non-empty passwords of rows on ImportWorkers goroutines.
func (s *Service) hashImportPasswords(ctx context.Context, rows []ImportRow) ([]string, error) {
	hashes := make([]string, len(rows))
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range s.cfg.ImportWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(rows) || ctx.Err() != nil {
					return
				}
				if rows[i].Password == "" {
					continue
				}
				h, err := s.cfg.Hasher.Hash(ctx, s.cfg.ImportPasswordParams, rows[i].Password)
				if err != nil {
					errOnce.Do(func() { firstErr = s.hashError(err) })
					cancel()
					return
				}
				hashes[i] = h
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("hashing passwords: %w", err)
	}
	return hashes, nil
}

func (s *Service) handleImportRespondents(w http.ResponseWriter, r *http.Request) error {
	if err := httpapi.RequireContentType(r, "text/csv"); err != nil {
		return err
	}
	if r.ContentLength > s.cfg.ImportBodyLimit {
		return httpapi.NewProblem(http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("the file is larger than %d bytes", s.cfg.ImportBodyLimit))
	}
	sv, err := s.loadSurvey(r)
	if err != nil {
		return err
	}
	// A 64 MiB upload and 100,000 password hashes may outlast the server's ordinary timeouts.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(importTimeout))
	_ = rc.SetWriteDeadline(time.Now().Add(importTimeout))
	rows, err := ParseImport(http.MaxBytesReader(w, r.Body, s.cfg.ImportBodyLimit))
	var (
		problems *ImportErrors
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &problems):
		fe := make([]httpapi.FieldError, len(problems.Errors))
		for i, e := range problems.Errors {
			fe[i] = httpapi.FieldError{Line: e.Line, Field: e.Field, Message: e.Message}
		}
		p := httpapi.Validation(fe...)
		p.Detail = fmt.Sprintf("the file has %d errors; nothing was imported", problems.Total)
		if problems.Total > len(problems.Errors) {
			p.Detail += fmt.Sprintf(" (the first %d are listed)", len(problems.Errors))
		}
		return p
	case errors.As(err, &tooLarge):
		return httpapi.NewProblem(http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("the file is larger than %d bytes", s.cfg.ImportBodyLimit))
	case err != nil:
		return httpapi.BadRequest("bad_body", "could not read the request body")
	}
	res, err := s.Import(r.Context(), &sv, rows)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, res)
	return nil
}
