//! Hostile and careless input (issue 12): absurd durations and reply texts are clear errors at
//! load (file, line, column) or a 400 from the API, never a panic; session limits answer
//! `421 4.3.2`; NUL in a command is refused; `PUT /faults` with an empty body is an error.

mod common;

use std::sync::Arc;

use common::http::*;
use common::*;
use mock_eop::api::Api;
use mock_eop::config::MockFile;
use tokio::net::TcpListener;

#[test]
fn absurd_durations_are_located_errors_not_panics() {
    for (text, key) in [
        (
            "[eop.limits]\nidle_timeout = \"10000000d\"\n",
            "idle_timeout",
        ),
        (
            "[eop.limits]\nidle_timeout = \"99999999999999999999999\"\n",
            "idle_timeout",
        ),
        ("[eop.limits]\nsession_timeout = 1e300\n", "session_timeout"),
        (
            "[eop.tls]\nhandshake_timeout = \"400d\"\n",
            "handshake_timeout",
        ),
        (
            "[[faults]]\nstage = \"mail\"\naction = { stall = \"10000000d\" }\n",
            "faults",
        ),
    ] {
        let err = MockFile::from_toml(text, "hostile.toml")
            .expect_err(text)
            .to_string();
        assert!(err.starts_with("hostile.toml:"), "{err}");
        assert!(err.contains(key) || err.contains("stall"), "{text}: {err}");
    }
}

#[test]
fn reply_texts_with_line_breaks_are_refused() {
    let faults = "[[faults]]\nstage = \"mail\"\naction = { reply = \"451 4.7.0 busy\\r\\n250 2.1.0 Sender OK\" }\n";
    let err = MockFile::from_toml(faults, "f.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("f.toml:3:"), "{err}");
    let replies = "[eop.replies]\nbdat_chunk = \"250 2.0.0 ok\\n250 smuggled\"\n";
    assert!(MockFile::from_toml(replies, "r.toml").is_err());
    let host = "[eop.endpoint]\nhostname = \"a.example\\r\\n250 x\"\n";
    let err = MockFile::from_toml(host, "h.toml").unwrap_err().to_string();
    assert!(err.contains("endpoint.hostname"), "{err}");
}

#[tokio::test]
async fn the_api_refuses_absurd_faults_and_an_empty_body() {
    let mock = Arc::new(start(lab_tenants(), vec![], vec![]).await);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(Api::new(Arc::clone(&mock)).serve(listener));
    let toml = ["Content-Type: application/toml"];
    for body in [
        "[[faults]]\nstage = \"mail\"\naction = { stall = \"10000000d\" }\n",
        "[[faults]]\nstage = \"mail\"\naction = { stall = 1e300 }\n",
        "[[faults]]\nstage = \"mail\"\naction = { reply = \"451 4.7.0 x\\r\\n250 2.1.0 Sender OK\" }\n",
        "",
        "  \n",
    ] {
        let r = request(api, "PUT", "/faults", &toml, body).await;
        assert_eq!(r.status, 400, "{body:?}: {}", r.text());
    }
    let r = request(
        api,
        "PUT",
        "/faults",
        &["Content-Type: application/json"],
        r#"[{"stage":"mail","action":{"stall":1e300}}]"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // The mock still serves.
    let mut c = connect_from(mock.local_addr(), "127.0.0.5").await;
    assert_eq!(c.reply().await.code, 220);
    // NUL in EHLO: refused, not recorded as the HELO name.
    assert_eq!(c.cmd("EHLO evil\0.contoso.com").await.code, 501);
    assert_eq!(c.cmd("QUIT").await.code, 221);
    mock.wait_for_sessions(1).await;
    assert_eq!(mock.records()[0].helo, None);
}

#[tokio::test]
async fn sessions_over_the_limits_get_421() {
    let mut cfg = lab_tenants();
    cfg.limits.max_sessions = 3;
    cfg.limits.max_sessions_per_ip = 2;
    let mock = start(cfg, vec![], vec![]).await;
    let addr = mock.local_addr();
    let mut a = connect_from(addr, "127.0.0.5").await;
    let mut b = connect_from(addr, "127.0.0.5").await;
    assert_eq!(a.reply().await.code, 220);
    assert_eq!(b.reply().await.code, 220);
    // A third from the same IP: refused.
    let mut c = connect_from(addr, "127.0.0.5").await;
    let r = c.reply().await;
    assert_eq!((r.code, r.text()), (421, "4.3.2 Service not available"));
    // Another IP is fine, up to max_sessions.
    let mut d = connect_from(addr, "127.0.0.6").await;
    assert_eq!(d.reply().await.code, 220);
    let mut e = connect_from(addr, "127.0.0.7").await;
    assert_eq!(e.reply().await.code, 421);
    assert_eq!(mock.counts().refused, 2);
    // A slot frees when its session ends.
    assert_eq!(a.cmd("QUIT").await.code, 221);
    mock.wait_for_sessions(1).await;
    let mut f = connect_from(addr, "127.0.0.5").await;
    assert_eq!(f.reply().await.code, 220);
}

#[tokio::test]
async fn the_api_closes_a_slow_header_and_refuses_a_huge_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mock = Arc::new(start(lab_tenants(), vec![], vec![]).await);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let served = Api::new(Arc::clone(&mock)).header_timeout(std::time::Duration::from_millis(300));
    tokio::spawn(served.serve(listener));
    // Half a request line, then nothing: the connection is closed (EOF), not held.
    let mut slow = tokio::net::TcpStream::connect(api).await.unwrap();
    slow.write_all(b"GET /hea").await.unwrap();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(BOUND, slow.read_to_end(&mut buf))
        .await
        .expect("closed within the bound");
    assert!(
        n.is_err() || buf.is_empty() || buf.starts_with(b"HTTP/1.1 4"),
        "{buf:?}"
    );
    // The API still answers.
    assert_eq!(get(api, "/health").await.status, 200);
    // A body over 1 MiB: 413.
    let big = "x".repeat(2 << 20);
    let r = request(
        api,
        "PUT",
        "/faults",
        &["Content-Type: application/toml"],
        &big,
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text());
}
