//! What the command-line tests share.

use std::process::Command;

/// Runs qoelab with `args`; returns (success, stdout, stderr).
pub fn qoelab(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qoelab"))
        .args(args)
        .output()
        .expect("run qoelab");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}
