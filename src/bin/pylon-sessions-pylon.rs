//! `pylon-sessions-pylon`: the Pylon drop-in's command line (feature `pylon`).
//!
//! ```text
//! pylon-sessions-pylon rollback FILE|URL   write Pylon's own _pylon_sessions table back
//! pylon-sessions-pylon new-key             print a new key for PYLON_SESSIONS_KEY
//! ```
//!
//! Tokens are opened with the keys in `PYLON_SESSIONS_KEY` and `PYLON_SESSIONS_OLD_KEYS`, as the
//! drop-in opens them.

use std::process::ExitCode;

use pylon_sessions::pylon::{self, TokenKey};

const USAGE: &str = "usage:
  pylon-sessions-pylon rollback FILE|URL   write Pylon's own _pylon_sessions table back, with every
                                           live session and its token (a SQLite file, or a
                                           postgres:// URL); keys from PYLON_SESSIONS_KEY and
                                           PYLON_SESSIONS_OLD_KEYS
  pylon-sessions-pylon new-key             print a new random key (64 hex digits) for
                                           PYLON_SESSIONS_KEY";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["rollback", target] => match pylon::rollback(target) {
            Ok(report) => {
                println!(
                    "rolled back: {} live sessions written to Pylon's _pylon_sessions table",
                    report.restored
                );
                if report.tokenless > 0 {
                    println!(
                        "{} sessions had no stored token and could not be written back",
                        report.tokenless
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rollback failed ({}): {e}", e.kind().code());
                ExitCode::FAILURE
            }
        },
        ["new-key"] => match TokenKey::generate() {
            Ok(key) => {
                println!("{}", key.to_hex());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
