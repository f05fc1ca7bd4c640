//! Hostile folders (issue 12, defect 10): symlink loops, a FIFO, a device, a dangling link, an
//! unreadable file and an oversized file are skipped with their reason while every readable file
//! is still read; and sub-folder names give the files their server.
#![cfg(unix)]

use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::Path;

use hybridlab_artefacts::walk::{ReadOptions, SkipReason};
use hybridlab_artefacts::{ArtefactReader, Artefacts, read_path};

const QUEUE: &str = "\r\n\r\nIdentity      : EXCH01\\3\r\nDeliveryType  : SmartHostConnectorDelivery\r\nStatus        : Retry\r\nMessageCount  : 3\r\nNextHopDomain : contoso.mail.onmicrosoft.com\r\n\r\n\r\n";

fn reason_of<'a>(a: &'a Artefacts, name: &str) -> &'a SkipReason {
    &a.skipped_files
        .iter()
        .find(|s| s.path.ends_with(name))
        .unwrap_or_else(|| panic!("{name} not skipped: {:?}", a.skipped_files))
        .reason
}

fn write_queue(dir: &Path) {
    std::fs::write(dir.join("Get-Queue.txt"), QUEUE).unwrap();
}

#[test]
fn symlink_loops_are_not_followed() {
    let d = tempfile::tempdir().unwrap();
    write_queue(d.path());
    for n in ["a", "b", "c"] {
        symlink(".", d.path().join(n)).unwrap();
    }
    std::fs::create_dir(d.path().join("sub")).unwrap();
    symlink("..", d.path().join("sub/up")).unwrap();
    let a = read_path(d.path()).unwrap();
    assert_eq!(a.queues.len(), 1);
    assert_eq!(reason_of(&a, "/a"), &SkipReason::SymlinkedFolder);
    assert_eq!(reason_of(&a, "sub/up"), &SkipReason::SymlinkedFolder);
    assert_eq!(a.skipped_files.len(), 4);
}

#[test]
fn fifo_is_skipped_unopened() {
    let d = tempfile::tempdir().unwrap();
    write_queue(d.path());
    let fifo = d.path().join("pipe");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo failed");
    // Opening a FIFO for reading blocks until a writer comes: reaching the assertions at all
    // shows it was not opened.
    let a = read_path(d.path()).unwrap();
    assert_eq!(a.queues.len(), 1);
    assert_eq!(
        reason_of(&a, "pipe"),
        &SkipReason::NotRegularFile {
            what: "fifo".into()
        }
    );
    // Given directly, it is skipped too, not an error and not a hang.
    let a = read_path(&fifo).unwrap();
    assert_eq!(a.skipped_files.len(), 1);
}

#[test]
fn devices_and_links_to_them_are_skipped() {
    let d = tempfile::tempdir().unwrap();
    write_queue(d.path());
    symlink("/dev/zero", d.path().join("zero")).unwrap();
    let a = read_path(d.path()).unwrap();
    assert_eq!(a.queues.len(), 1);
    assert_eq!(
        reason_of(&a, "zero"),
        &SkipReason::NotRegularFile {
            what: "character device".into()
        }
    );
}

#[test]
fn unreadable_entries_are_skipped_and_the_walk_goes_on() {
    let d = tempfile::tempdir().unwrap();
    write_queue(d.path());
    symlink("missing-target", d.path().join("dangling")).unwrap();
    let locked = d.path().join("locked.txt");
    std::fs::write(&locked, QUEUE).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let denied = std::fs::read(&locked).is_err(); // false when the tests run as root
    let a = read_path(d.path()).unwrap();
    assert_eq!(reason_of(&a, "dangling"), &SkipReason::DanglingSymlink);
    if denied {
        assert!(matches!(
            reason_of(&a, "locked.txt"),
            SkipReason::Unreadable { .. }
        ));
        assert_eq!(a.queues.len(), 1);
    } else {
        assert_eq!(a.queues.len(), 2);
    }
    let listed = a.not_read();
    assert!(
        listed
            .iter()
            .any(|(p, why)| p.ends_with("dangling") && why.contains("link"))
    );
    // A path given that does not exist is still an error.
    assert!(read_path(&d.path().join("nope")).is_err());
}

#[test]
fn files_over_the_cap_are_skipped() {
    let d = tempfile::tempdir().unwrap();
    write_queue(d.path());
    std::fs::write(d.path().join("big.log"), vec![b'x'; 4096]).unwrap();
    let mut r = ArtefactReader::new().with_options(ReadOptions {
        max_file_bytes: 1024,
        ..ReadOptions::default()
    });
    r.add_path(d.path()).unwrap();
    let a = r.finish();
    assert_eq!(a.queues.len(), 1);
    assert_eq!(
        reason_of(&a, "big.log"),
        &SkipReason::TooLarge {
            size: 4096,
            cap: 1024
        }
    );
    assert!(a.not_read()[0].1.contains("1024"));
}

#[test]
fn sub_folders_name_servers() {
    let d = tempfile::tempdir().unwrap();
    for s in ["EXCH01", "exch02"] {
        let dir = d.path().join(s).join("logs");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("Get-ExchangeCertificate.txt"),
            "\r\n\r\nThumbprint : 3A04A91124FAAB142BCFCA13C2B13EF1E820E993\r\nSubject    : CN=mail.contoso.com\r\nServices   : IIS, SMTP\r\nHasPrivateKey : True\r\n\r\n",
        )
        .unwrap();
    }
    write_queue(d.path());
    let a = read_path(d.path()).unwrap();
    let servers: Vec<Option<&str>> = a.files.iter().map(|f| f.server.as_deref()).collect();
    // Sorted by path: `EXCH01/`, `Get-Queue.txt`, `exch02/`.
    assert_eq!(servers, [Some("EXCH01"), None, Some("EXCH02")]);
    assert_eq!(a.queues[0].server.as_deref(), Some("EXCH01"));
}
