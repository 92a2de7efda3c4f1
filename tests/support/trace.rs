//! A TRACE-level `tracing` capture of everything a test does, to check what the crate (and
//! the drivers) log: the names it should show and the secrets it must not.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Asserts that the output so far shows each of `expected`.
    pub fn assert_shows(&self, expected: &[&str]) {
        let out = self.text();
        for expected in expected {
            assert!(out.contains(expected), "no `{expected}` in:\n{out}");
        }
    }

    /// Asserts that the output so far holds none of `secrets` (tokens, the secret key), nor
    /// any piece of a presigned token's query.
    pub fn assert_no_secret(&self, secrets: &[&str]) {
        let out = self.text();
        let markers = ["X-Amz-Signature", "X-Amz-Credential", "Action=connect"];
        for secret in secrets.iter().chain(&markers) {
            assert!(
                !out.contains(secret),
                "`{secret}` in the trace output:\n{out}"
            );
        }
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every event and span at TRACE on this thread until the guard drops (a
/// current-thread runtime runs the connections' tasks on it too).
pub fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}
