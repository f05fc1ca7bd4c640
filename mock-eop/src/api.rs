//! The HTTP API of `mock-eop serve --api 127.0.0.1:PORT`: what the mock saw, and a few changes
//! at run time, for a person with `curl` or a CI script.
//!
//! # Contract
//! Plain HTTP/1.1, JSON bodies (one document and a newline), no authentication: `mock-eop serve`
//! binds it to loopback unless told `--api-allow-remote`. Every error is
//! `{"error": "..."}` with a 4xx status: 404 for an unknown path or a session that is not kept,
//! 405 for a method a path does not take, 400 for a bad or unknown query parameter or body.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | the list of endpoints |
//! | `GET /health` | `{"status":"ok","smtp":"127.0.0.1:2525","counts":{..},"faults":N,"started_at":..,"version":..}` |
//! | `GET /counts` | `{"sessions":N,"messages":N,"active":N,"refused":N}`: finished sessions, messages answered 250, sessions in progress, connections refused over the session limits |
//! | `GET /sessions` | the kept session records, in connection order: the JSON of the `--records` lines, in an array |
//! | `GET /sessions?since=N&limit=K` | sessions whose `index` (connection order, from 0) is at least N; at most K: the first K from `since`, or the K most recent without it |
//! | `GET /sessions/N` | the session with `index` N (404 if it has not ended, was cleared or no longer kept) |
//! | `DELETE /sessions` | forgets the kept sessions and messages and restarts the counters from zero: `{"cleared":{"sessions":N,"messages":N}}` |
//! | `GET /messages?since=N&limit=K&raw=false` | the messages answered 250 (envelope, size, verdict, parsed headers, `number`, `raw_url`, the text unless `raw=false` or over 64 KiB), oldest first: from number N, at most K (default 100, at most 1000), the K most recent without `since` |
//! | `GET /messages/N/raw` | message number N as received (`message/rfc822`), one at a time; 404 when not kept |
//! | `GET /wait?sessions=N&messages=M&timeout=SECS` | returns when the counters reach N sessions and M messages (either or both): 200 `{"timed_out":false,"counts":{..}}`, or after `timeout` seconds (default 30, at most 300, fractions allowed) 408 `{"error":..,"timed_out":true,"counts":{..}}` |
//! | `GET /ca` | the lab CA (PEM, `text/plain`) a client should trust; 404 when serving `--cert` |
//! | `GET /faults` | `{"faults":[..]}`: the scripted faults new sessions get |
//! | `PUT /faults` | replaces them: a TOML body in the scenario `[[faults]]` format, or JSON (`{"faults":[..]}` or `[..]`) when `Content-Type` is `application/json` or the body starts with `{` |
//! | `DELETE /faults` | no faults from now on |
//!
//! Counters count from the start or the last `DELETE /sessions`, so a script can clear, act,
//! then `GET /wait?sessions=1` without sleeping. New faults apply to sessions that start after
//! the `PUT` (sessions in progress keep theirs), with the same seed; `first_attempts` counts
//! start again from zero.
//!
//! ```no_run
//! # async fn demo(mock: mock_eop::MockEopHandle) -> std::io::Result<()> {
//! use std::sync::Arc;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! println!("api: http://{}", listener.local_addr()?);
//! mock_eop::api::Api::new(Arc::new(mock)).serve(listener).await
//! # }
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::fault::Fault;
use crate::server::{MockEopError, MockEopHandle};
use hybridlab_model::located::TomlSource;

/// The longest `GET /wait` may block.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// Messages `GET /messages` returns without `limit`, and at most.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Message texts larger than this are left out of `GET /messages` (fetch `raw_url`).
const INLINE_RAW: usize = 64 * 1024;

/// The largest request body (`PUT /faults`).
const MAX_BODY: usize = 1 << 20;

/// How long `GET /wait` blocks without `timeout`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// The API over one running mock: build it, then [`Api::router`] or [`Api::serve`].
#[derive(Debug, Clone)]
pub struct Api {
    mock: Arc<MockEopHandle>,
    /// The lab CA PEM, or why there is none.
    ca: Arc<Result<String, String>>,
    /// How long a request header may take.
    header_timeout: Duration,
}

impl Api {
    /// The API for `mock`; `GET /ca` serves [`MockEopHandle::ca_pem`].
    pub fn new(mock: Arc<MockEopHandle>) -> Self {
        let ca = Arc::new(Ok(mock.ca_pem()));
        Self {
            mock,
            ca,
            header_timeout: crate::http_guard::HEADER_READ_TIMEOUT,
        }
    }

    /// How long a client may take to send a request's header (default 10 s).
    pub fn header_timeout(mut self, d: Duration) -> Self {
        self.header_timeout = d;
        self
    }

    /// `GET /ca` answers 404 with `no lab CA: {why}` (the mock serves a certificate from files).
    pub fn without_lab_ca(mut self, why: impl Into<String>) -> Self {
        self.ca = Arc::new(Err(why.into()));
        self
    }

    /// The routes, for serving on any listener or testing in process.
    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(index))
            .route("/health", get(health))
            .route("/counts", get(counts))
            .route("/sessions", get(sessions).delete(clear_sessions))
            .route("/sessions/{n}", get(session))
            .route("/messages", get(messages))
            .route("/messages/{n}/raw", get(message_raw))
            .route("/wait", get(wait))
            .route("/ca", get(ca))
            .route("/faults", get(faults).put(put_faults).delete(clear_faults))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
            .with_state(self)
    }

    /// Serves the API on `listener` until the task is dropped (accept errors are retried).
    /// A request header must arrive within [`Self::header_timeout`] (of connecting or of the
    /// previous response), a body is at most 1 MiB (413 beyond).
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let guarded = crate::http_guard::GuardedListener(listener, self.header_timeout);
        axum::serve(guarded, self.router()).await
    }
}

/// A JSON response: the document and a newline.
fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                bytes,
            )
                .into_response()
        }
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the answer: {e}"),
        )
        .into_response(),
    }
}

/// An error answer: `{"error": message}` with `status`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &json!({ "error": self.message }))
    }
}

type ApiResult = Result<Response, ApiError>;

/// The query parameters of a request, each at most once, all of them among `allowed`.
struct Query(HashMap<String, String>);

impl Query {
    fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                let expected = if allowed.is_empty() {
                    "this endpoint takes none".to_string()
                } else {
                    format!("expected {}", allowed.join(", "))
                };
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{k}`: {expected}"
                )));
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(ApiError::bad_request(format!(
                    "query parameter `{k}` given twice"
                )));
            }
        }
        Ok(Self(map))
    }

    /// A parameter parsed as `T`, `None` when absent.
    fn get<T: std::str::FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "query parameter `{name}`: expected {what}, got {v:?}"
                ))
            }),
        }
    }

    fn flag(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(None),
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" => Ok(Some(true)),
                "false" | "0" | "no" => Ok(Some(false)),
                _ => Err(ApiError::bad_request(format!(
                    "query parameter `{name}`: expected true or false, got {v:?}"
                ))),
            },
        }
    }
}

const WHOLE: &str = "a whole number";

async fn index(RawQuery(q): RawQuery) -> ApiResult {
    Query::parse(q.as_deref(), &[])?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "endpoints": [
                "GET /health",
                "GET /counts",
                "GET /sessions?since=N&limit=K",
                "GET /sessions/N",
                "DELETE /sessions",
                "GET /messages?limit=K&raw=false",
                "GET /wait?sessions=N&messages=M&timeout=SECS",
                "GET /ca",
                "GET /faults",
                "PUT /faults",
                "DELETE /faults",
            ]
        }),
    ))
}

async fn health(State(api): State<Api>, RawQuery(q): RawQuery) -> ApiResult {
    Query::parse(q.as_deref(), &[])?;
    let m = &api.mock;
    let started_at = m
        .clock()
        .epoch()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "status": "ok",
            "smtp": m.local_addr(),
            "counts": m.counts(),
            "faults": m.faults().len(),
            "started_at": started_at,
            "version": env!("CARGO_PKG_VERSION"),
        }),
    ))
}

async fn counts(State(api): State<Api>, RawQuery(q): RawQuery) -> ApiResult {
    Query::parse(q.as_deref(), &[])?;
    Ok(json_response(StatusCode::OK, &api.mock.counts()))
}

async fn sessions(State(api): State<Api>, RawQuery(q): RawQuery) -> ApiResult {
    let q = Query::parse(q.as_deref(), &["since", "limit"])?;
    let since: Option<u64> = q.get("since", WHOLE)?;
    let limit: Option<usize> = q.get("limit", WHOLE)?;
    let mut records = match since {
        Some(n) => api.mock.records_in(n..),
        None => api.mock.records(),
    };
    if let Some(k) = limit {
        if since.is_some() {
            records.truncate(k);
        } else {
            let skip = records.len().saturating_sub(k);
            records.drain(..skip);
        }
    }
    Ok(json_response(StatusCode::OK, &records))
}

async fn session(
    State(api): State<Api>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    Query::parse(q.as_deref(), &[])?;
    let Path(n) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let n: u64 = n.trim().parse().map_err(|_| {
        ApiError::bad_request(format!(
            "session index: expected {WHOLE} (the record's `index`), got {n:?}"
        ))
    })?;
    match api.mock.records_in(n..=n).pop() {
        Some(r) => Ok(json_response(StatusCode::OK, &r)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no session {n}: it has not ended yet, or it was cleared or is no longer kept"),
        )),
    }
}

async fn clear_sessions(State(api): State<Api>, RawQuery(q): RawQuery) -> ApiResult {
    Query::parse(q.as_deref(), &[])?;
    let (sessions, messages) = api.mock.clear_records();
    tracing::info!("api: cleared {sessions} sessions and {messages} messages; counters restart");
    Ok(json_response(
        StatusCode::OK,
        &json!({ "cleared": { "sessions": sessions, "messages": messages } }),
    ))
}

async fn messages(State(api): State<Api>, RawQuery(q): RawQuery) -> ApiResult {
    let q = Query::parse(q.as_deref(), &["since", "limit", "raw"])?;
    let since: Option<u64> = q.get("since", WHOLE)?;
    let limit: usize = q
        .get::<usize>("limit", WHOLE)?
        .unwrap_or(PAGE)
        .min(MAX_PAGE);
    let raw = q.flag("raw")?.unwrap_or(true);
    let since = since.unwrap_or_else(|| {
        // Without `since`: the `limit` most recent.
        let (next, oldest) = api.mock.message_numbers();
        next.saturating_sub(limit as u64).max(oldest)
    });
    let mut list = Vec::new();
    for (n, m) in api.mock.messages_page(since, limit) {
        let mut v = serde_json::to_value(&m).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode: {e}"),
            )
        })?;
        if let Value::Object(o) = &mut v {
            if !raw || m.raw.len() > INLINE_RAW {
                o.remove("raw");
            }
            o.insert("number".into(), json!(n));
            o.insert("raw_url".into(), json!(format!("/messages/{n}/raw")));
        }
        list.push(v);
    }
    Ok(json_response(StatusCode::OK, &list))
}

/// `GET /messages/N/raw`: the message as received (`message/rfc822`).
async fn message_raw(
    State(api): State<Api>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    Query::parse(q.as_deref(), &[])?;
    let Path(n) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let n: u64 = n.trim().parse().map_err(|_| {
        ApiError::bad_request(format!(
            "message number: expected {WHOLE} (the `number` in GET /messages), got {n:?}"
        ))
    })?;
    match api.mock.message_raw(n) {
        Some(raw) => Ok((
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("message/rfc822"),
            )],
            Body::from(Bytes::from_owner(raw)),
        )
            .into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no message {n}: it was cleared, is no longer kept, or has not come yet"),
        )),
    }
}

async fn wait(State(api): State<Api>, RawQuery(q): RawQuery) -> ApiResult {
    let q = Query::parse(q.as_deref(), &["sessions", "messages", "timeout"])?;
    let sessions: Option<u64> = q.get("sessions", WHOLE)?;
    let messages: Option<u64> = q.get("messages", WHOLE)?;
    if sessions.is_none() && messages.is_none() {
        return Err(ApiError::bad_request(
            "give `sessions=N`, `messages=N` or both: what to wait for",
        ));
    }
    let timeout = match q.get::<f64>("timeout", "a number of seconds")? {
        None => DEFAULT_WAIT,
        Some(s) if s.is_finite() && (0.0..=MAX_WAIT.as_secs_f64()).contains(&s) => {
            Duration::from_secs_f64(s)
        }
        Some(s) => {
            return Err(ApiError::bad_request(format!(
                "query parameter `timeout`: {s} is not between 0 and {} seconds",
                MAX_WAIT.as_secs()
            )));
        }
    };
    let m = &api.mock;
    let reached = async {
        if let Some(n) = sessions {
            m.wait_for_sessions(n).await;
        }
        if let Some(n) = messages {
            m.wait_for_messages(n).await;
        }
    };
    match tokio::time::timeout(timeout, reached).await {
        Ok(()) => Ok(json_response(
            StatusCode::OK,
            &json!({ "timed_out": false, "counts": m.counts() }),
        )),
        Err(_) => {
            let c = m.counts();
            let mut wanted = Vec::new();
            if let Some(n) = sessions {
                wanted.push(format!("sessions >= {n} (now {})", c.sessions));
            }
            if let Some(n) = messages {
                wanted.push(format!("messages >= {n} (now {})", c.messages));
            }
            Ok(json_response(
                StatusCode::REQUEST_TIMEOUT,
                &json!({
                    "error": format!(
                        "timed out after {}s waiting for {}",
                        timeout.as_secs_f64(),
                        wanted.join(" and ")
                    ),
                    "timed_out": true,
                    "counts": c,
                }),
            ))
        }
    }
}

async fn ca(State(api): State<Api>, RawQuery(q): RawQuery) -> ApiResult {
    Query::parse(q.as_deref(), &[])?;
    match api.ca.as_ref() {
        Ok(pem) => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            Body::from(pem.clone()),
        )
            .into_response()),
        Err(why) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no lab CA: {why}"),
        )),
    }
}

/// The `[[faults]]` document of `PUT /faults`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultList {
    #[serde(default)]
    faults: Vec<Fault>,
}

async fn faults(State(api): State<Api>, RawQuery(q): RawQuery) -> ApiResult {
    Query::parse(q.as_deref(), &[])?;
    faults_now(&api)
}

/// Reads the body of `PUT /faults`: JSON when the content type says so or it starts with `{`,
/// TOML otherwise.
fn parse_faults(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Fault>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}")))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let is_json = essence == "application/json" || essence.ends_with("+json");
    let trimmed = text.trim_start();
    if is_json || trimmed.starts_with('{') {
        let parsed = if trimmed.starts_with('[') {
            serde_json::from_str::<Vec<Fault>>(text)
        } else {
            serde_json::from_str::<FaultList>(text).map(|l| l.faults)
        };
        parsed.map_err(|e| ApiError::bad_request(format!("request body (JSON): {e}")))
    } else {
        TomlSource::new("request body (TOML)", text)
            .deserialize::<FaultList>()
            .map(|l| l.faults)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

async fn put_faults(
    State(api): State<Api>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    Query::parse(q.as_deref(), &[])?;
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        // An empty body is a mistake more often than a wish to clear: DELETE /faults clears.
        return Err(ApiError::bad_request(
            "the request body is empty: send the faults (TOML or JSON), or DELETE /faults to clear them",
        ));
    }
    let list = parse_faults(&headers, &body)?;
    replace_faults(&api, list)
}

async fn clear_faults(State(api): State<Api>, RawQuery(q): RawQuery) -> ApiResult {
    Query::parse(q.as_deref(), &[])?;
    replace_faults(&api, Vec::new())
}

fn replace_faults(api: &Api, list: Vec<Fault>) -> ApiResult {
    let n = list.len();
    match api.mock.replace_faults(list) {
        Ok(()) => {
            tracing::info!("api: {n} faults in force for new sessions");
            faults_now(api)
        }
        Err(MockEopError::Fault { index, message }) => {
            Err(ApiError::bad_request(format!("faults[{index}]: {message}")))
        }
        Err(e) => Err(ApiError::bad_request(e.to_string())),
    }
}

fn faults_now(api: &Api) -> ApiResult {
    Ok(json_response(
        StatusCode::OK,
        &FaultList {
            faults: api.mock.faults(),
        },
    ))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {} (GET / lists them)", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not take {method}", uri.path()),
    )
}
