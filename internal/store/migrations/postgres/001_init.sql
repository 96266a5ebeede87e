-- Dispatch24 schema, PostgreSQL dialect. Times are BIGINT microseconds since the Unix epoch (UTC),
-- the same in both dialects, so every query is written once. JSON documents are jsonb here and
-- TEXT in SQLite.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,        -- stored lower-cased
    name          TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    roles         TEXT NOT NULL DEFAULT '',    -- comma-separated: admin, staff
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE surveys (
    id                    TEXT PRIMARY KEY,    -- the slug used in routes
    name                  TEXT NOT NULL,
    allow_gen_users       BOOLEAN NOT NULL DEFAULT FALSE,
    jwt_secret            TEXT,                -- write-only through the API
    redirect_url          TEXT NOT NULL DEFAULT '',
    redirect_identifier   TEXT NOT NULL DEFAULT '',
    auth_url_token_length INTEGER NOT NULL DEFAULT 32,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE user_surveys (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    survey_id TEXT NOT NULL REFERENCES surveys (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, survey_id)
);
CREATE INDEX user_surveys_survey_idx ON user_surveys (survey_id);

CREATE TABLE respondents (
    id            TEXT PRIMARY KEY,            -- userId
    survey_id     TEXT NOT NULL REFERENCES surveys (id) ON DELETE CASCADE,
    username      TEXT NOT NULL,
    name          TEXT NOT NULL DEFAULT '',
    password_hash TEXT,                        -- NULL: token sign-in only
    auth_token    TEXT NOT NULL UNIQUE,
    custom_fields JSONB NOT NULL DEFAULT '[]',
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (survey_id, username)
);
CREATE INDEX respondents_page_idx ON respondents (survey_id, created_at, id);

-- Refresh tokens by jti, for revocation. user_kind is 'global' or 'respondent'.
CREATE TABLE refresh_tokens (
    jti        TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    user_kind  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expiry_idx ON refresh_tokens (expires_at);

CREATE TABLE personal_access_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,         -- SHA-256 of the token; the token itself is never stored
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX personal_access_tokens_user_idx ON personal_access_tokens (user_id);

-- Failed sign-ins, shared by every API replica for rate limiting. key is a hash of the account
-- key and the client address; rows older than the window are pruned.
CREATE TABLE signin_failures (
    key       TEXT NOT NULL,
    failed_at BIGINT NOT NULL
);
CREATE INDEX signin_failures_key_idx ON signin_failures (key, failed_at);

CREATE TABLE survey_sessions (
    id         TEXT PRIMARY KEY,
    survey_id  TEXT NOT NULL REFERENCES surveys (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    status     TEXT NOT NULL,                  -- open, cancelled, submitted
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX survey_sessions_user_idx ON survey_sessions (survey_id, user_id, status);

CREATE TABLE submissions (
    id              TEXT PRIMARY KEY,
    survey_id       TEXT NOT NULL REFERENCES surveys (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    session_id      TEXT,
    idempotency_key TEXT,
    body            JSONB NOT NULL,            -- the stored submission as delivered in event data
    submitted_at    BIGINT NOT NULL,
    UNIQUE (survey_id, user_id, idempotency_key),
    UNIQUE (survey_id, user_id, session_id)
);
CREATE INDEX submissions_survey_idx ON submissions (survey_id, submitted_at);

-- Events: the transactional outbox and the archive that retries and replays read from.
CREATE TABLE events (
    id            TEXT PRIMARY KEY,
    type          TEXT NOT NULL,
    survey_id     TEXT NOT NULL,
    subject       TEXT NOT NULL,
    payload       JSONB NOT NULL,              -- the exact envelope delivered to receivers
    headers       JSONB NOT NULL DEFAULT '{}', -- trace context carried into NATS headers
    created_at    BIGINT NOT NULL,
    published_at  BIGINT,
    claimed_until BIGINT,                      -- relay lease, so replicas do not double-publish
    publish_attempts INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX events_unpublished_idx ON events (created_at) WHERE published_at IS NULL;
CREATE INDEX events_survey_idx ON events (survey_id, created_at);

CREATE TABLE webhooks (
    id                   TEXT PRIMARY KEY,
    survey_id            TEXT NOT NULL REFERENCES surveys (id) ON DELETE CASCADE,
    url                  TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    events               TEXT NOT NULL,        -- comma-separated event types
    secret               TEXT NOT NULL,        -- whsec_…
    previous_secret      TEXT,
    previous_secret_until BIGINT,
    disabled             BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_reason      TEXT NOT NULL DEFAULT '',
    disabled_at          BIGINT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    first_failure_at     BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX webhooks_survey_idx ON webhooks (survey_id);

CREATE TABLE replays (
    id         TEXT PRIMARY KEY,
    filter     JSONB NOT NULL,
    filter_key TEXT NOT NULL,                  -- canonical filter, for refusing overlapping runs
    matched    INTEGER NOT NULL DEFAULT 0,
    enqueued   INTEGER NOT NULL DEFAULT 0,
    done       INTEGER NOT NULL DEFAULT 0,
    status     TEXT NOT NULL,                  -- running, completed, failed
    created_by TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX replays_running_idx ON replays (filter_key) WHERE status = 'running';

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,         -- deterministic for first deliveries: hash(event, webhook)
    event_id         TEXT NOT NULL,
    webhook_id       TEXT NOT NULL,
    survey_id        TEXT NOT NULL,
    type             TEXT NOT NULL,
    url              TEXT NOT NULL,
    status           TEXT NOT NULL,            -- pending, succeeded, failed, skipped
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error       TEXT NOT NULL DEFAULT '',
    next_attempt_at  BIGINT,                   -- set while pending and parked for a retry
    lease_until      BIGINT,                   -- a worker holds the delivery until then
    replay_of        TEXT,
    replay_id        TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_page_idx ON deliveries (created_at, id);
CREATE INDEX deliveries_survey_idx ON deliveries (survey_id, created_at, id);
CREATE INDEX deliveries_webhook_idx ON deliveries (webhook_id, created_at, id);
CREATE INDEX deliveries_event_idx ON deliveries (event_id);
CREATE INDEX deliveries_replay_idx ON deliveries (replay_id) WHERE replay_id IS NOT NULL;

CREATE TABLE delivery_attempts (
    delivery_id   TEXT NOT NULL,
    n             INTEGER NOT NULL,
    started_at    BIGINT NOT NULL,
    duration_ms   INTEGER NOT NULL,
    status_code   INTEGER,
    error         TEXT NOT NULL DEFAULT '',
    response_body TEXT NOT NULL DEFAULT '',    -- at most 4 KiB
    PRIMARY KEY (delivery_id, n)
);
