//! The HTTP API (`mock_eop::api`) in process: the mock and the API both on 127.0.0.1:0, messages
//! sent with the tests' SMTP client over loopback, requests written by hand over a TcpStream.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::http::*;
use common::*;
use hybridlab_model::attribution::VerdictKind;
use hybridlab_model::record::SessionRecord;
use mock_eop::MockEopHandle;
use mock_eop::api::Api;
use mock_eop::fault::{Fault, Stage};
use serde_json::Value;
use tokio::net::TcpListener;

/// The contoso mock and its API, both on 127.0.0.1:0.
async fn setup(faults: Vec<Fault>) -> (Arc<MockEopHandle>, SocketAddr) {
    let mock = Arc::new(start(lab_tenants(), faults, vec![]).await);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(Api::new(Arc::clone(&mock)).serve(listener));
    (mock, api)
}

/// One message from 127.0.0.5 (the IP connector, cleartext) to bob@contoso.com; returns the
/// reply to RCPT and the final reply (if any).
async fn send_one(mock: &MockEopHandle, subject: &str) -> (u16, Option<u16>) {
    let mut c = connect_from(mock.local_addr(), "127.0.0.5").await;
    assert_eq!(c.reply().await.code, 220);
    assert_eq!(c.cmd("EHLO edge01.contoso.com").await.code, 250);
    let (_, rcpts, end) = c
        .message(
            "alice@contoso.com",
            &["bob@contoso.com"],
            &format!(
                "From: alice@contoso.com\r\nTo: bob@contoso.com\r\nSubject: {subject}\r\n\r\nhello"
            ),
        )
        .await;
    c.cmd("QUIT").await;
    (rcpts[0].code, end.map(|r| r.code))
}

#[tokio::test]
async fn health_sessions_messages_and_ca_show_what_the_mock_saw() {
    let (mock, api) = setup(vec![]).await;
    let h = get(api, "/health").await;
    assert_eq!(h.status, 200);
    let h = h.json();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["smtp"], mock.local_addr().to_string());
    assert_eq!(h["counts"]["sessions"], 0);

    assert_eq!(send_one(&mock, "api one").await, (250, Some(250)));
    let w = get(api, "/wait?sessions=1&messages=1&timeout=20").await;
    assert_eq!(w.status, 200, "{}", w.text());
    let w = w.json();
    assert_eq!(w["timed_out"], false);
    assert_eq!(w["counts"]["sessions"], 1);

    let c = get(api, "/counts").await.json();
    assert_eq!(c["sessions"], 1);
    assert_eq!(c["messages"], 1);
    assert_eq!(c["active"], 0);
    let h = get(api, "/health").await.json();
    assert_eq!(h["counts"], c);

    // The same records the handle (and --records) gives.
    let list = get(api, "/sessions").await;
    assert_eq!(list.status, 200);
    let list: Vec<SessionRecord> = serde_json::from_value(list.json()).unwrap();
    assert_eq!(list, mock.records());
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].peer.ip().to_string(), "127.0.0.5");
    assert_eq!(
        list[0].attribution.as_ref().map(|v| v.kind()),
        Some(VerdictKind::Attributed)
    );
    let one: SessionRecord = serde_json::from_value(get(api, "/sessions/0").await.json()).unwrap();
    assert_eq!(one, list[0]);
    let missing = get(api, "/sessions/1").await;
    assert_eq!(missing.status, 404);
    assert!(missing.error().starts_with("no session 1"), "{missing:?}");

    let m = get(api, "/messages").await;
    assert_eq!(m.status, 200);
    let m = m.json();
    let m = m.as_array().unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["mail_from"], "alice@contoso.com");
    assert_eq!(m[0]["rcpt_to"][0], "bob@contoso.com");
    assert_eq!(m[0]["parsed"]["subject"], "api one");
    assert_eq!(m[0]["size"], mock.messages()[0].size);
    assert!(m[0]["raw"].as_str().unwrap().contains("hello"));
    let m = get(api, "/messages?raw=false").await.json();
    assert!(m[0].get("raw").is_none());
    assert_eq!(m[0]["parsed"]["subject"], "api one");

    let ca = get(api, "/ca").await;
    assert_eq!(ca.status, 200);
    assert!(ca.header("content-type").unwrap().starts_with("text/plain"));
    assert_eq!(ca.text(), mock.ca_pem());
}

#[tokio::test]
async fn sessions_since_and_limit() {
    let (mock, api) = setup(vec![]).await;
    for i in 0..3 {
        send_one(&mock, &format!("m{i}")).await;
        tokio::time::timeout(BOUND, mock.wait_for_sessions(i + 1))
            .await
            .unwrap();
    }
    let indexes = |v: Value| -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["index"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(indexes(get(api, "/sessions").await.json()), [0, 1, 2]);
    assert_eq!(indexes(get(api, "/sessions?since=1").await.json()), [1, 2]);
    assert_eq!(
        indexes(get(api, "/sessions?since=0&limit=2").await.json()),
        [0, 1]
    );
    assert_eq!(indexes(get(api, "/sessions?limit=1").await.json()), [2]);
    assert_eq!(
        indexes(get(api, "/sessions?since=9").await.json()),
        [0u64; 0]
    );
    let m = get(api, "/messages?limit=2").await.json();
    let subjects: Vec<&str> = m
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["parsed"]["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["m1", "m2"]);
}

#[tokio::test]
async fn wait_blocks_until_the_session_lands_or_times_out() {
    let (mock, api) = setup(vec![]).await;
    // Nothing comes: 408 after the timeout, with the counts.
    let w = get(api, "/wait?sessions=1&timeout=0.2").await;
    assert_eq!(w.status, 408, "{}", w.text());
    let j = w.json();
    assert_eq!(j["timed_out"], true);
    assert_eq!(j["counts"]["sessions"], 0);
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("sessions >= 1 (now 0)")
    );

    // A session in progress is not a finished one.
    let mut c = connect_from(mock.local_addr(), "127.0.0.5").await;
    assert_eq!(c.reply().await.code, 220);
    assert_eq!(get(api, "/counts").await.json()["active"], 1);
    let w = get(api, "/wait?sessions=1&timeout=0.2").await;
    assert_eq!(w.status, 408);

    // A waiter returns as soon as the session ends.
    let waiter = tokio::spawn(async move { get(api, "/wait?sessions=1&timeout=20").await });
    assert_eq!(c.cmd("EHLO edge01.contoso.com").await.code, 250);
    assert_eq!(c.cmd("QUIT").await.code, 221);
    let w = tokio::time::timeout(BOUND, waiter)
        .await
        .expect("the wait returns")
        .unwrap();
    assert_eq!(w.status, 200, "{}", w.text());
    assert_eq!(w.json()["counts"]["sessions"], 1);

    // Waiting for messages: the 250 to DATA counts before the session ends.
    let waiter = tokio::spawn(async move { get(api, "/wait?messages=1&timeout=20").await });
    assert_eq!(send_one(&mock, "m").await.1, Some(250));
    let w = tokio::time::timeout(BOUND, waiter).await.unwrap().unwrap();
    assert_eq!(w.status, 200);
    assert!(w.json()["counts"]["messages"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn delete_sessions_starts_a_clean_step() {
    let (mock, api) = setup(vec![]).await;
    send_one(&mock, "before").await;
    assert_eq!(get(api, "/wait?sessions=1&timeout=20").await.status, 200);
    let d = request(api, "DELETE", "/sessions", &[], "").await;
    assert_eq!(d.status, 200);
    let d = d.json();
    assert_eq!(d["cleared"]["sessions"], 1);
    assert_eq!(d["cleared"]["messages"], 1);
    assert_eq!(get(api, "/sessions").await.json(), Value::Array(vec![]));
    assert_eq!(get(api, "/messages").await.json(), Value::Array(vec![]));
    let c = get(api, "/counts").await.json();
    assert_eq!(
        (c["sessions"].as_u64(), c["messages"].as_u64()),
        (Some(0), Some(0))
    );
    // The counters restarted: waiting for one session waits for the next one.
    assert_eq!(get(api, "/wait?sessions=1&timeout=0.1").await.status, 408);
    send_one(&mock, "after").await;
    assert_eq!(get(api, "/wait?sessions=1&timeout=20").await.status, 200);
    let list = get(api, "/sessions").await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["index"], 1, "indexes keep increasing");
    assert_eq!(list[0]["messages"][0]["parsed"]["subject"], "after");
    assert_eq!(get(api, "/sessions/0").await.status, 404);
    assert_eq!(get(api, "/sessions/1").await.status, 200);
}

#[tokio::test]
async fn faults_are_replaced_at_run_time() {
    let (mock, api) = setup(vec![Fault::rejects_at(
        Stage::Mail,
        "451 4.7.500 Server busy",
    )])
    .await;
    let f = get(api, "/faults").await.json();
    assert_eq!(f["faults"][0]["stage"], "mail");
    assert_eq!(get(api, "/health").await.json()["faults"], 1);

    // TOML in the scenario format.
    let toml = "[[faults]]\nstage = \"rcpt\"\naction = { throttle = { tag = \"S77714\" } }\nfirst_attempts = 1\n";
    let put = request(
        api,
        "PUT",
        "/faults",
        &["Content-Type: application/toml"],
        toml,
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.json()["faults"][0]["stage"], "rcpt");
    let (rcpt, end) = send_one(&mock, "throttled").await;
    assert_eq!((rcpt, end), (451, None));
    // first_attempts = 1: the next session recovers.
    assert_eq!(send_one(&mock, "recovered").await, (250, Some(250)));
    assert_eq!(get(api, "/wait?sessions=2&timeout=20").await.status, 200);
    let list: Vec<SessionRecord> =
        serde_json::from_value(get(api, "/sessions").await.json()).unwrap();
    assert_eq!(list[0].faults_fired.len(), 1);
    assert_eq!(list[0].faults_fired[0].stage, "rcpt");
    assert!(list[1].faults_fired.is_empty());

    // JSON, as an array; then DELETE clears them.
    let put = request(
        api,
        "PUT",
        "/faults",
        &["Content-Type: application/json"],
        r#"[{"stage":"ehlo","action":{"reply":"421 4.3.2 Service not available"}}]"#,
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(mock.faults().len(), 1);
    assert_eq!(mock.faults()[0].stage, Stage::Ehlo);
    let d = request(api, "DELETE", "/faults", &[], "").await;
    assert_eq!(d.json()["faults"], Value::Array(vec![]));
    assert!(mock.faults().is_empty());

    // Refused bodies change nothing.
    mock.replace_faults(vec![Fault::rejects_at(Stage::Mail, "451 4.7.0 later")])
        .unwrap();
    let bad = [
        (
            "[[faults]]\nstage = \"rcpt\"\naction = \"omit_starttls\"\n",
            "faults[0]: action omit_starttls does not apply at stage rcpt",
        ),
        (
            "[eop.endpoint]\nregion = \"NAM\"\n",
            "request body (TOML):1:2: field `eop`: unknown field `eop`",
        ),
        (
            "[[faults]]\nstage = \"rcpt\"\naction = \"explode\"\n",
            "request body (TOML):3:",
        ),
        ("{\"faults\": [{\"stage\": 1}]}", "request body (JSON): "),
    ];
    for (body, expect) in bad {
        let r = request(api, "PUT", "/faults", &[], body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.error().starts_with(expect), "{body}: {}", r.error());
        assert_eq!(mock.faults().len(), 1);
        assert_eq!(mock.faults()[0].stage, Stage::Mail);
    }
}

#[tokio::test]
async fn bad_requests_are_json_errors_and_never_stop_the_api() {
    let (_mock, api) = setup(vec![]).await;
    let cases = [
        ("GET", "/nope", 404, "no such endpoint: /nope"),
        (
            "GET",
            "/sessions/abc",
            400,
            "session index: expected a whole number",
        ),
        ("GET", "/sessions/-1", 400, "session index"),
        (
            "GET",
            "/sessions?since=x",
            400,
            "query parameter `since`: expected a whole number",
        ),
        (
            "GET",
            "/sessions?sinse=1",
            400,
            "unknown query parameter `sinse`: expected since, limit",
        ),
        (
            "GET",
            "/sessions?limit=1&limit=2",
            400,
            "query parameter `limit` given twice",
        ),
        (
            "GET",
            "/messages?raw=maybe",
            400,
            "query parameter `raw`: expected true or false",
        ),
        (
            "GET",
            "/wait",
            400,
            "give `sessions=N`, `messages=N` or both",
        ),
        (
            "GET",
            "/wait?sessions=1&timeout=301",
            400,
            "query parameter `timeout`: 301 is not between 0 and 300 seconds",
        ),
        (
            "GET",
            "/wait?sessions=1&timeout=-1",
            400,
            "query parameter `timeout`",
        ),
        (
            "GET",
            "/wait?sessions=1&timeout=NaN",
            400,
            "query parameter `timeout`",
        ),
        (
            "GET",
            "/wait?sessions=lots",
            400,
            "query parameter `sessions`",
        ),
        (
            "GET",
            "/health?verbose=1",
            400,
            "unknown query parameter `verbose`: this endpoint takes none",
        ),
        ("POST", "/sessions", 405, "/sessions does not take POST"),
        ("PUT", "/health", 405, "/health does not take PUT"),
    ];
    for (method, path, status, expect) in cases {
        let r = request(api, method, path, &[], "").await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert!(
            r.error().starts_with(expect),
            "{method} {path}: {}",
            r.error()
        );
    }
    let r = request(api, "DELETE", "/health", &[], "").await;
    assert_eq!(r.header("allow"), Some("GET,HEAD"));

    // Not HTTP at all, a truncated request, binary garbage: answered or closed, then the API
    // still serves.
    for raw in [
        &b"HELO there\r\n\r\n"[..],
        b"GET /health HTTP/1.1\r\nHost",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"GET /sessions/%ff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        let answer = exchange(api, raw, true).await;
        if !answer.is_empty() {
            let status = parse(&answer).status;
            assert!((400..500).contains(&status), "{status}");
        }
    }
    assert_eq!(get(api, "/health").await.status, 200);
}

#[tokio::test]
async fn ca_is_404_when_serving_a_certificate_from_files() {
    let mock = Arc::new(start(lab_tenants(), vec![], vec![]).await);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(
        Api::new(mock)
            .without_lab_ca("serving cert.pem; clients trust its issuer")
            .serve(listener),
    );
    let r = get(api, "/ca").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.error(),
        "no lab CA: serving cert.pem; clients trust its issuer"
    );
}

#[tokio::test]
async fn messages_are_paginated_and_bodies_fetched_one_at_a_time() {
    let (mock, api) = setup(vec![]).await;
    for i in 0..3 {
        send_one(&mock, &format!("p{i}")).await;
    }
    tokio::time::timeout(BOUND, mock.wait_for_messages(3))
        .await
        .unwrap();
    let page = get(api, "/messages?since=1&limit=1").await.json();
    let page = page.as_array().unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["number"], 1);
    assert_eq!(page[0]["parsed"]["subject"], "p1");
    assert_eq!(page[0]["raw_url"], "/messages/1/raw");
    let raw = get(api, "/messages/1/raw").await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type"), Some("message/rfc822"));
    assert!(raw.text().contains("Subject: p1"));
    assert_eq!(get(api, "/messages/7/raw").await.status, 404);
    assert_eq!(get(api, "/messages/x/raw").await.status, 400);
}
