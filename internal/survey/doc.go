// Package survey is CONTRACT section 4: survey administration, respondent accounts (one by
// one, by CSV import and export) and respondent account creation by a third party's JWT
// (seed 000, options A and B).
//
// Decisions written down here because the contract leaves them open:
//
//   - Deleting a survey is for admins only. Creating one is admin-only, and deletion cascades
//     to every respondent, session, submission and webhook of the survey, so assigned staff,
//     who may edit a survey, may not remove it: they get 403, unassigned staff 404 as for any
//     survey outside their reach. Deleting a survey also revokes its respondents' refresh
//     tokens.
//   - The survey's jwtSecret is write-only: responses carry jwtSecretSet. PATCH sets it with a
//     string and clears it with null (clearing turns create-user off). It is stored sealed with
//     SECRETS_KEY (internal/secret); create-user opens it per request (a few µs).
//   - Respondent lists page with a keyset on (created_at, id) and an opaque cursor. Ids are
//     UUIDv7, so rows created in the same microsecond (an import) still page in insertion
//     order, and rows added meanwhile appear on later pages instead of shifting earlier ones.
//     limit defaults to 50; values above 1000 are cut down to 1000, below 1 are refused.
//   - Auth tokens use the 62 letters and digits only: URL-safe, and never starting with a
//     character a spreadsheet reads as a formula when the export is opened.
//   - CSV import: header names username, password and name are matched case-insensitively;
//     an empty cell leaves the respondent's value as it is (no password, for a new one);
//     custom field columns are merged into the respondent's fields by name, as are a
//     create-user token's customFields. The whole file is checked before anything is
//     written, then one transaction reads the existing rows and upserts in multi-row batches
//     (1,000 rows per statement on PostgreSQL, 50 on SQLite: the drivers' surveysImportBatchRows
//     say why).
//     Imported passwords are hashed in parallel on every core with ImportPasswordParams, a
//     cheaper argon2id parameter set than the default (DefaultImportPasswordParams says why
//     that is acceptable), within the process's hashing bound (Config.Hasher), where each
//     takes room in proportion to its memory. RunHashUpgrades then wraps them to full cost
//     in the background (UpgradeImportedHashes). A row that sets the password of an existing
//     respondent revokes its refresh tokens, as a PATCH of the password (or its removal) does.
//   - CSV export: a cell a spreadsheet would read as a formula (=, +, -, @, tab or carriage
//     return first, after any quotes) gets one more leading ', since usernames come from
//     third parties' create-user tokens and sit next to the authToken. The import drops one
//     such ' from the username column, so an export imports back unchanged
//     (spreadsheetSafe, importCell).
//   - Storage: every query of the surveys and respondents tables is the store driver's Surveys
//     family (store.Surveys, one implementation per database in internal/store/postgres and
//     internal/store/sqlite); this package reaches it only through Store, and other packages
//     read surveys and respondents through Store too (Survey, SurveyWithSecret, JWTSecret,
//     MissingSurveys, Respondent, RespondentByAuthToken, SwapPasswordHash).
//   - create-user: exp and nbf are enforced without leeway; a token for a disabled respondent
//     gets 403 respondent_disabled; redirectUrl is echoed in the response, not stored. Option
//     B never logs or echoes the token: failures redirect with the problem code only.
//   - A respondent named "export" is shown through the list, not GET …/respondents/export,
//     which is the export route.
package survey
