//! `hybridlab completions SHELL` and `hybridlab man` are generated from the command line itself:
//! every subcommand appears, bash accepts the script, and a wrong shell is a usage error.

use std::process::Command;

fn hybridlab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hybridlab"))
        .args(args)
        .output()
        .expect("hybridlab runs")
}

const SUBCOMMANDS: &[&str] = &[
    "run",
    "list",
    "explain",
    "diagnose",
    "send",
    "receive",
    "fuzz",
    "completions",
    "man",
];

#[test]
fn bash_completions_name_every_subcommand_and_parse() {
    let out = hybridlab(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    let script = String::from_utf8(out.stdout).expect("UTF-8 script");
    for sub in SUBCOMMANDS {
        assert!(
            script.contains(&format!("hybridlab__{sub}")) || script.contains(&format!(" {sub} ")),
            "the bash script does not complete `{sub}`"
        );
    }
    // bash -n: the script parses (bash is on every CI machine we run on).
    if let Ok(check) = Command::new("bash").args(["-n", "-c", &script]).output() {
        assert!(
            check.status.success(),
            "bash -n: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

#[test]
fn other_shells_and_the_man_page() {
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = hybridlab(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("diagnose"),
            "{shell} completions lack `diagnose`"
        );
    }
    let man = hybridlab(&["man"]);
    assert_eq!(man.status.code(), Some(0));
    let page = String::from_utf8(man.stdout).expect("UTF-8 roff");
    assert!(page.contains(".TH hybridlab 1"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "the man page does not mention `{sub}`");
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = hybridlab(&["completions", "nosh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
}
