//! The `mock-eop serve` binary keeps every `250`: a message's record is on disk before its reply
//! (SIGKILL right after the 250 loses nothing), a torn last line is cut at the next start, and
//! SIGTERM stops cleanly (421 to idle sessions, a session in DATA finishes its message, exit 0).
//! No sleeps: every wait is on a reply line, a stdout line or the process's exit, bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mock-eop");
const BOUND: Duration = Duration::from_secs(20);

/// Kills the child when the test ends, however it ends.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path, records: &Path) -> (Kill, BufReader<ChildStdout>, SocketAddr) {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "3",
            "--records",
        ])
        .arg(records)
        .arg("--ca-out")
        .arg(dir.join("ca.pem"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("mock-eop listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap();
    (Kill(child), out, addr)
}

struct Smtp(BufReader<TcpStream>);

impl Smtp {
    fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(BOUND)).unwrap();
        let mut c = Self(BufReader::new(s));
        assert!(c.reply().starts_with("220 "));
        c
    }

    /// The next complete reply (its last line).
    fn reply(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.0.read_line(&mut line).unwrap() > 0,
                "connection closed"
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    }

    fn send(&mut self, text: &str) {
        self.0.get_mut().write_all(text.as_bytes()).unwrap();
    }

    fn cmd(&mut self, text: &str) -> String {
        self.send(text);
        self.reply()
    }

    fn envelope(&mut self) {
        assert!(self.cmd("EHLO edge.contoso.com\r\n").starts_with("250 "));
        assert!(
            self.cmd("MAIL FROM:<a@gmail.example>\r\n")
                .starts_with("250 ")
        );
        assert!(
            self.cmd("RCPT TO:<bob@contoso.com>\r\n")
                .starts_with("250 ")
        );
        assert!(self.cmd("DATA\r\n").starts_with("354 "));
    }
}

/// Waits for the child's exit, bounded (a thread does the blocking wait).
fn wait_exit(mut kill: Kill) -> std::process::ExitStatus {
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = kill.0.id();
    let mut child = std::mem::replace(&mut kill.0, Command::new("true").spawn().unwrap());
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    rx.recv_timeout(BOUND)
        .unwrap_or_else(|_| panic!("mock-eop (pid {pid}) did not exit"))
        .unwrap()
}

fn signal(kill: &Kill, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(kill.0.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn sigkill_after_the_250_loses_nothing_and_a_torn_line_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.jsonl");
    let (kill, _out, addr) = serve(dir.path(), &records);
    let mut ids = Vec::new();
    let mut c = Smtp::connect(addr);
    c.envelope();
    for i in 0..3 {
        if i > 0 {
            assert!(c.cmd("MAIL FROM:<a@gmail.example>\r\n").starts_with("250 "));
            assert!(c.cmd("RCPT TO:<bob@contoso.com>\r\n").starts_with("250 "));
            assert!(c.cmd("DATA\r\n").starts_with("354 "));
        }
        let r = c.cmd(&format!(
            "Message-ID: <m{i}@contoso.com>\r\n\r\nbody {i}\r\n.\r\n"
        ));
        assert!(r.starts_with("250 2.6.0 <m"), "{r}");
        ids.push(format!("<m{i}@contoso.com>"));
    }
    // Killed right after the third 250, with the session still open.
    signal(&kill, "KILL");
    let status = wait_exit(kill);
    assert!(!status.success());
    let text = std::fs::read_to_string(&records).unwrap();
    for id in &ids {
        assert!(
            text.contains(&format!("\"message_id\":\"{id}\"")),
            "{id} lost:\n{text}"
        );
    }
    assert!(text.ends_with('\n'));
    // A crash in the middle of a line: cut at the next start (with a warning), never appended to.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&records)
        .unwrap();
    f.write_all(b"{\"session_id\":\"08DE00").unwrap();
    drop(f);
    let (kill, _out, addr) = serve(dir.path(), &records);
    let mut c = Smtp::connect(addr);
    c.envelope();
    assert!(
        c.cmd("Subject: after\r\n\r\nx\r\n.\r\n")
            .starts_with("250 ")
    );
    assert!(c.cmd("QUIT\r\n").starts_with("221 "));
    signal(&kill, "TERM");
    let mut child = kill;
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(wait_exit(child).success());
    assert!(err.contains("cut off"), "{err}");
    let text = std::fs::read_to_string(&records).unwrap();
    assert!(
        !text.contains("{\"session_id\":\"08DE00{"),
        "appended to a torn line"
    );
    for (n, line) in text.lines().enumerate() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("line {}: {e}: {line}", n + 1));
    }
}

#[test]
fn sigterm_says_421_to_idle_sessions_lets_data_finish_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.jsonl");
    let (kill, mut out, addr) = serve(dir.path(), &records);
    let mut idle = Smtp::connect(addr);
    assert!(idle.cmd("EHLO idle.contoso.com\r\n").starts_with("250 "));
    let mut busy = Smtp::connect(addr);
    busy.envelope();
    busy.send("Message-ID: <late@contoso.com>\r\n\r\nfirst half\r\n");
    signal(&kill, "TERM");
    assert_eq!(idle.reply().trim_end(), "421 4.3.2 Service not available");
    // The message in DATA is finished and answered 250, then the session is told 421.
    let r = busy.cmd("second half\r\n.\r\n");
    assert!(r.starts_with("250 2.6.0 <late@contoso.com>"), "{r}");
    assert_eq!(busy.reply().trim_end(), "421 4.3.2 Service not available");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest.lines().last(), Some("stopped"), "{rest}");
    assert_eq!(wait_exit(kill).code(), Some(0));
    let text = std::fs::read_to_string(&records).unwrap();
    assert!(text.contains("<late@contoso.com>"));
    assert_eq!(
        text.matches("\"close_reason\":\"shutdown\"").count(),
        2,
        "{text}"
    );
}
