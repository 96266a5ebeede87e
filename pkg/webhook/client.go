package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

const (
	// MaxResponseBodyBytes is how much of an answer's body a Result keeps.
	MaxResponseBodyBytes = 4 << 10
	// drainBytes is how much more of an answer's body is read and discarded so the connection
	// can be reused; a longer body closes the connection instead.
	drainBytes = 64 << 10
	// maxResponseHeaderBytes bounds the answer's header, which a hostile receiver could inflate.
	maxResponseHeaderBytes = 64 << 10
)

// The canonical forms of the headers Send writes. Go sends them in this case on HTTP/1.1;
// header names are case-insensitive and HTTP/2 lowercases them.
const (
	canonicalID        = "Webhook-Id"
	canonicalTimestamp = "Webhook-Timestamp"
	canonicalSignature = "Webhook-Signature"
)

// ClientConfig configures a Client. Zero fields take the documented defaults.
type ClientConfig struct {
	// Timeout bounds one attempt, from dialling to reading the answer (WEBHOOK_TIMEOUT).
	// Default 15s.
	Timeout time.Duration
	// AllowNets are networks exempt from the non-public address block (WEBHOOK_ALLOW_NETS),
	// such as 127.0.0.0/8 for local testing. Default none.
	AllowNets []*net.IPNet
	// UserAgent is the User-Agent header. Default "Dispatch24/dev"; the binaries set
	// "Dispatch24/<version>".
	UserAgent string
	// MaxIdleConnsPerHost is how many keep-alive connections are kept per receiver. It should
	// be at least the number of deliveries in flight to one receiver, or connections are closed
	// and dialled again under load. Default 1024.
	MaxIdleConnsPerHost int
	// MaxIdleConns bounds the keep-alive connections kept across all receivers. Default 8192.
	MaxIdleConns int
	// IdleConnTimeout closes a keep-alive connection idle this long. Default 90s.
	IdleConnTimeout time.Duration
	// MaxRetryAfter caps Result.RetryAfter. Default 24h, the longest step of the default
	// retry schedule.
	MaxRetryAfter time.Duration
	// TLSConfig is cloned as the base TLS configuration; nil means the system roots. TLS 1.2 is
	// the minimum unless it sets a higher one.
	TLSConfig *tls.Config
	// NowFunc returns the current time, for webhook-timestamp, the JWT's iat and Retry-After
	// dates. Default time.Now.
	NowFunc func() time.Time
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c ClientConfig) WithDefaults() ClientConfig {
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.UserAgent == "" {
		c.UserAgent = "Dispatch24/dev"
	}
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = 1024
	}
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = 8192
	}
	if c.IdleConnTimeout == 0 {
		c.IdleConnTimeout = 90 * time.Second
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = 24 * time.Hour
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	return c
}

func (c ClientConfig) validate() error {
	switch {
	case c.Timeout < 0:
		return errors.New("timeout must not be negative")
	case c.MaxIdleConnsPerHost < 0 || c.MaxIdleConns < 0:
		return errors.New("idle connection limits must not be negative")
	case c.IdleConnTimeout < 0 || c.MaxRetryAfter < 0:
		return errors.New("durations must not be negative")
	}
	return nil
}

// Request is one delivery attempt.
type Request struct {
	// URL is the webhook URL.
	URL string
	// MessageID is the webhook-id: the event id, the same on every attempt and replay.
	MessageID string
	// EventType is the event's type; it becomes the JWT's type claim.
	EventType string
	// Body is the exact JSON body. It is signed and sent as it is.
	Body []byte
	// Secrets are the endpoint's signing secrets: the current one first, then the previous one
	// while a rotation is in its grace period. At least one is required; each adds a signature,
	// whose scheme its prefix picks (see Sign): a whsec_ secret a v1 HMAC, a whsk_ signing key a
	// v1a Ed25519 signature. The two kinds may be mixed.
	Secrets []string
	// JWTKey is the survey's jwtSecret. When set, an "Authorization: Bearer <JWT>" is added.
	JWTKey []byte
	// Issuer is the JWT's iss (TOKEN_ISSUER).
	Issuer string
	// Username, SurveyID, SessionID, UserID and SubmissionID become the JWT's sub, surveyId,
	// sessionId, userId and submissionId claims.
	Username     string
	SurveyID     string
	SessionID    string
	UserID       string
	SubmissionID string
	// Header holds extra headers, such as traceparent. They cannot replace the headers Send
	// sets itself.
	Header http.Header
}

// Client sends delivery attempts. It keeps connections alive across attempts and is safe for
// concurrent use; create one per process.
type Client struct {
	cfg       ClientConfig
	transport *http.Transport
	http      *http.Client
	macs      macPool
	ed25519   ed25519Signer
	bufs      sync.Pool // *[MaxResponseBodyBytes]byte
}

// NewClient returns a Client for cfg, with defaults applied.
func NewClient(cfg ClientConfig) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("webhook client: %w", err)
	}
	guard, err := newAddressGuard(cfg.AllowNets)
	if err != nil {
		return nil, fmt.Errorf("webhook client: %w", err)
	}
	tlsConfig := &tls.Config{}
	if cfg.TLSConfig != nil {
		tlsConfig = cfg.TLSConfig.Clone()
	}
	if tlsConfig.MinVersion < tls.VersionTLS12 {
		tlsConfig.MinVersion = tls.VersionTLS12
	}
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   guard.control,
	}
	transport := &http.Transport{
		// Never a proxy from the environment: it would dial on our behalf, past the guard.
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    10 * time.Second,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           cfg.MaxIdleConns,
		MaxIdleConnsPerHost:    cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:        cfg.IdleConnTimeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		// No Accept-Encoding: the headers are the contract's, and answers are short anyway.
		DisableCompression: true,
	}
	return &Client{
		cfg:       cfg,
		transport: transport,
		http: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// Close closes idle connections. In-flight attempts are not affected.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// Send makes one attempt: it signs req afresh (webhook-timestamp and the JWT's iat are now),
// POSTs it without following redirects, keeps at most MaxResponseBodyBytes of the answer, and
// classifies the outcome. It never returns an error; the Result says what happened.
func (c *Client) Send(ctx context.Context, req *Request) Result {
	start := c.cfg.NowFunc()
	res := Result{StartedAt: start}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	hreq, err := c.newRequest(ctx, req, start)
	if err != nil {
		res.Code, res.Err = CodeInvalidRequest, err
		res.Reason = reason(res.Code, err, c.cfg.Timeout)
		res.Duration = c.cfg.NowFunc().Sub(start)
		return res
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		// url.Error repeats the method and URL; the attempt log has them already.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		res.Code, res.Err = classify(parent, err), err
		res.Reason = reason(res.Code, err, c.cfg.Timeout)
		res.Duration = c.cfg.NowFunc().Sub(start)
		return res
	}
	res.StatusCode = resp.StatusCode
	res.ResponseBody = c.readBody(resp.Body)
	res.Duration = c.cfg.NowFunc().Sub(start)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		res.Delivered = true
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.Code = CodeRedirect
		res.Reason = "HTTP " + strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode) + " (redirects are not followed)"
	default:
		res.Code = CodeHTTPStatus
		res.Reason = "HTTP " + strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
	}
	res.Gone = resp.StatusCode == http.StatusGone
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), start); ok {
			res.RetryAfter = min(d, c.cfg.MaxRetryAfter)
		}
	}
	return res
}

// newRequest builds the signed POST of one attempt made at now.
func (c *Client) newRequest(ctx context.Context, req *Request, now time.Time) (*http.Request, error) {
	if req.MessageID == "" {
		return nil, errors.New("message id is required")
	}
	if len(req.Secrets) == 0 {
		return nil, errors.New("at least one signing secret is required")
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("building request: %w", err)
	}
	if s := hreq.URL.Scheme; s != "http" && s != "https" {
		return nil, errors.New("URL scheme must be http or https")
	}
	if hreq.URL.User != nil {
		// Go would send them as basic auth; the contract allows no credentials in URLs.
		return nil, errors.New("credentials in the URL are not allowed")
	}

	unix := now.Unix()
	m := c.macs.get()
	// Room for two signatures of either scheme (a rotation) without allocating.
	var sigBuf [2 * (len(asymmetricPrefix) + encodedEd25519Len + 1)]byte
	sig, err := appendSignatures(sigBuf[:0], m, &c.ed25519, req.Secrets, req.MessageID, unix, req.Body)
	c.macs.put(m)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}

	h := make(http.Header, 8+len(req.Header))
	for k, v := range req.Header {
		h[http.CanonicalHeaderKey(k)] = v
	}
	// One backing array for the values saves an allocation per header.
	vals := make([]string, 6)
	vals[0] = "application/json"
	vals[1] = c.cfg.UserAgent
	vals[2] = req.MessageID
	vals[3] = strconv.FormatInt(unix, 10)
	vals[4] = string(sig)
	h["Content-Type"] = vals[0:1:1]
	h["User-Agent"] = vals[1:2:2]
	h[canonicalID] = vals[2:3:3]
	h[canonicalTimestamp] = vals[3:4:4]
	h[canonicalSignature] = vals[4:5:5]
	delete(h, "Authorization")
	if len(req.JWTKey) > 0 {
		token, err := SignToken(req.JWTKey, TokenParams{
			Issuer:       req.Issuer,
			Audience:     req.URL,
			Subject:      req.Username,
			Type:         req.EventType,
			SurveyID:     req.SurveyID,
			SessionID:    req.SessionID,
			UserID:       req.UserID,
			SubmissionID: req.SubmissionID,
			IssuedAt:     now,
		}, req.Body)
		if err != nil {
			return nil, err
		}
		vals[5] = "Bearer " + token
		h["Authorization"] = vals[5:6:6]
	}
	// A nil Idempotency-Key is not sent, but lets the transport resend the request when a
	// reused keep-alive connection turns out to be closed, instead of failing the attempt.
	// Deliveries are at least once and receivers deduplicate on webhook-id, so a resend is safe.
	h["Idempotency-Key"] = nil
	hreq.Header = h
	return hreq, nil
}

// readBody keeps the first MaxResponseBodyBytes of body, discards up to drainBytes more so the
// connection can go back to the pool, and closes body.
func (c *Client) readBody(body io.ReadCloser) []byte {
	defer body.Close()
	buf, ok := c.bufs.Get().(*[MaxResponseBodyBytes]byte)
	if !ok {
		buf = new([MaxResponseBodyBytes]byte)
	}
	defer c.bufs.Put(buf)
	n, err := io.ReadFull(body, buf[:])
	var kept []byte
	if n > 0 {
		kept = bytes.Clone(buf[:n])
	}
	if err == nil {
		_, _ = io.CopyN(io.Discard, body, drainBytes)
	}
	return kept
}
