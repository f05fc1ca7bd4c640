//! A minimal HTTP/1.1 client for the API tests: one request per connection (`Connection:
//! close`), written by hand, read to EOF within [`BOUND`].

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::BOUND;

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Http {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `error` of a JSON error answer.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("an error text")
            .to_string()
    }
}

/// Writes `raw` on a new connection (then half-closes it when `eof`) and reads the answer up to
/// EOF (bounded).
pub async fn exchange(api: SocketAddr, raw: &[u8], eof: bool) -> Vec<u8> {
    tokio::time::timeout(BOUND, async {
        let mut s = TcpStream::connect(api).await.unwrap();
        s.write_all(raw).await.unwrap();
        if eof {
            s.shutdown().await.unwrap();
        }
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        out
    })
    .await
    .expect("an answer within the bound")
}

pub fn parse(raw: &[u8]) -> Http {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let r = Http {
        status,
        headers,
        body,
    };
    if let Some(len) = r.header("content-length") {
        assert_eq!(len.parse::<usize>().unwrap(), r.body.len(), "{r:?}");
    }
    r
}

pub async fn request(
    api: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> Http {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    parse(&exchange(api, raw.as_bytes(), false).await)
}

pub async fn get(api: SocketAddr, path: &str) -> Http {
    request(api, "GET", path, &[], "").await
}
