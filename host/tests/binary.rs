//! The binary's surface: help and version. (Being an integration test of the
//! `grantbox` package, this also makes `cargo test --workspace` build the
//! binary the end-to-end tests in `tests/` run.)

use std::process::Command;

#[test]
fn help_lists_the_subcommands() {
    let output = Command::new(env!("CARGO_BIN_EXE_grantbox"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["serve", "client", "user", "plugins"] {
        assert!(help.contains(command), "{help}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_grantbox"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("grantbox "));
}
