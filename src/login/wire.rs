//! What a wire-level login attempt (one that speaks the engine's protocol itself, as the
//! proxy's does) reports when the server refuses it: the server's code and words, for
//! [`diagnose`](super::diagnose) to read as it reads a driver's error.

use std::fmt;

use crate::error::ServerCode;

/// The server's refusal of a login: its SQLSTATE or MySQL error number, and its message
/// (server-supplied text, escaped when shown).
#[derive(Debug, Clone)]
pub(crate) struct ServerError {
    pub(crate) code: ServerCode,
    pub(crate) message: String,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Escaped: the text comes from the server and ends up in logs and terminals.
        let message: String = self.message.chars().flat_map(char::escape_debug).collect();
        match &self.code {
            ServerCode::SqlState(code) => write!(f, "the server said: {message} (SQLSTATE {code})"),
            ServerCode::MySql(code) => write!(f, "the server said: {message} (error {code})"),
        }
    }
}

impl std::error::Error for ServerError {}
