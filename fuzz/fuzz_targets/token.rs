//! Token readers (`Token::parse`, `parse_strict`, `TokenFormat::parse`, `TokenRouter::route`, `SessionId::parse`) on any string.
#![no_main]

#[path = "../../tests/fuzz/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::check_token(&String::from_utf8_lossy(data));
    if let [at, byte, ..] = data {
        checks::check_tampered_route(usize::from(*at), *byte);
    }
});
