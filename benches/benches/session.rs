//! The sans-IO session core driven entirely in memory: a whole Exchange-like dialogue per
//! iteration (banner, EHLO, MAIL, RCPT, DATA or BDAT with a 1 KB or 100 KB message, QUIT), fed as
//! the pipelined chunks a sender would write. Throughput is the client's bytes.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mock_eop::config::{EopConfig, MockFile};
use mock_eop::fault::FaultBook;
use mock_eop::session::{Action, ProtocolCore, Session, SessionContext};

fn config() -> Arc<EopConfig> {
    let f = MockFile::from_toml(
        r#"
[[eop.tenants]]
name = "contoso"
accepted_domains = [{ domain = "contoso.com" }]
[[eop.tenants.inbound_connectors]]
name = "Inbound from contoso"
connector_type = "on_premises"
sender_ip_addresses = ["127.0.0.5"]
"#,
        "bench.toml",
    )
    .expect("bench config");
    Arc::new(f.eop)
}

fn body(size: usize) -> Vec<u8> {
    let mut b = b"From: alice@contoso.com\r\nTo: someone@example.com\r\nSubject: bench\r\nMessage-ID: <bench@EXCH01.contoso.com>\r\n\r\n".to_vec();
    while b.len() + 80 <= size {
        b.extend_from_slice(&[b'x'; 76]);
        b.extend_from_slice(b"\r\n");
    }
    b
}

/// The client's writes for one session.
fn dialogue(size: usize, bdat: bool) -> Vec<Vec<u8>> {
    let msg = body(size);
    let mut out = vec![
        b"EHLO edge01.contoso.com\r\n".to_vec(),
        b"MAIL FROM:<alice@contoso.com> SIZE=1000\r\nRCPT TO:<someone@example.com>\r\n".to_vec(),
    ];
    if bdat {
        let mut c = format!("BDAT {} LAST\r\n", msg.len()).into_bytes();
        c.extend_from_slice(&msg);
        out.push(c);
    } else {
        out.push(b"DATA\r\n".to_vec());
        let mut m = msg;
        m.extend_from_slice(b".\r\n");
        out.push(m);
    }
    out.push(b"QUIT\r\n".to_vec());
    out
}

fn run(cfg: &Arc<EopConfig>, book: &Arc<FaultBook>, chunks: &[Vec<u8>], index: u64) -> usize {
    let ctx = SessionContext {
        config: Arc::clone(cfg),
        faults: Arc::clone(book),
        index,
        seed: 1,
        peer: SocketAddr::from(([127, 0, 0, 5], 40001)),
        local: SocketAddr::from(([127, 0, 0, 1], 25)),
    };
    let now = time::macros::datetime!(2026-05-02 06:30:00 UTC);
    let mut s = Session::new(ctx, now);
    let mut written = 0;
    let mut drain = |s: &mut Session| {
        while let Some(a) = s.poll_action() {
            if let Action::Write(b) = a {
                written += b.len();
            }
        }
    };
    drain(&mut s);
    for c in chunks {
        s.handle_input(now, c);
        drain(&mut s);
    }
    let rec = s.finish(now);
    black_box(&rec);
    written
}

fn bench(c: &mut Criterion) {
    let cfg = config();
    let book = Arc::new(FaultBook::new(Vec::new(), 1));
    let mut g = c.benchmark_group("session");
    for (name, size, bdat) in [
        ("data_1k", 1_000, false),
        ("bdat_1k", 1_000, true),
        ("data_100k", 100_000, false),
        ("bdat_100k", 100_000, true),
    ] {
        let chunks = dialogue(size, bdat);
        let bytes: usize = chunks.iter().map(Vec::len).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        let mut index = 0u64;
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    index += 1;
                    index
                },
                |i| run(&cfg, &book, &chunks, i),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
