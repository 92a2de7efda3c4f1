//! The library's messages, in the words of this command: flags, not library calls.
//!
//! The library says what to do in its own terms (`.region(...)`, `TrustStore::with_ca_file`):
//! right for a program, useless to a person at a shell, who has `--region` and `--ca-file`.

use rds_iam_auth::{Error, ErrorKind};

/// Which subcommand prints the message (the token command dials nothing; the doctor does).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Where {
    Token,
    #[cfg_attr(not(any(feature = "doctor", feature = "proxy")), allow(dead_code))]
    Doctor,
}

/// The library's phrases and the flags that do the same. Longest first: a phrase that
/// contains another is replaced whole.
const PHRASES: &[(&str, &str)] = &[
    (
        "Listen on 127.0.0.1 or ::1 (or a Unix socket), or allow it explicitly with \
         `.allow_remote(true)`",
        "Listen on 127.0.0.1 (the default) or --unix-socket DIR, or add --allow-remote if a \
         firewall you control guards it",
    ),
    (
        " (the Lambda examples: DBCaFile; in code: TrustStore::aws_default().with_ca_file(...))",
        "",
    ),
    (
        "call `.region(...)` (for example with the value of `AWS_REGION`)",
        "pass --region (e.g. --region us-east-1)",
    ),
    (
        "Call `.region(...)` with the primary cluster's region",
        "Pass --region with the primary cluster's region",
    ),
    (
        "add its CA with `TrustStore::with_ca_file` (the Lambda examples: `DBCaFile`)",
        "add its CA with --ca-file FILE",
    ),
    (
        "trust the CA with `TrustStore::with_ca_file`",
        "trust the CA with --ca-file FILE",
    ),
    ("`TrustStore::with_ca_file`", "--ca-file FILE"),
    ("raise `.connect_timeout(...)`", "raise --timeout SECONDS"),
    (
        "raise `TokenGenerator::builder(provider).credentials_timeout(...)`",
        "make the credentials source answer (AWS_PROFILE, the AWS_* variables)",
    ),
    ("`.region(...)`", "--region"),
];

/// `text` with the library's phrases replaced by this command's flags.
pub(crate) fn in_flags(text: &str) -> String {
    PHRASES
        .iter()
        .fold(text.to_owned(), |text, (library, flag)| {
            text.replace(library, flag)
        })
}

/// The error and its causes, one per line, in flags: the first line says what to do, the
/// rest why. A few inputs get a message of their own where the library's advice is a call.
pub(crate) fn explain(error: &Error, at: Where) -> String {
    let mut message = own_message(error, at).unwrap_or_else(|| in_flags(&error.to_string()));
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    message
}

fn own_message(error: &Error, at: Where) -> Option<String> {
    if error.kind() != ErrorKind::InvalidInput || error.setting() != Some("hostname") {
        return None;
    }
    // "`10.0.0.5` is an IP address, ...": the library's advice is a dial address.
    let text = error.to_string();
    let ip = text.strip_prefix('`')?.split_once("` is an IP address")?.0;
    Some(match at {
        Where::Token => format!(
            "`{ip}` is an IP address, but a token is signed for the endpoint's DNS name (the \
             name TLS verifies): pass that name as --hostname (e.g. \
             mydb.cluster-abc123.us-east-1.rds.amazonaws.com) and connect to {ip} verifying \
             that name (psql: \"host=<name> hostaddr={ip} sslmode=verify-full\")"
        ),
        Where::Doctor => format!(
            "`{ip}` is an IP address, but a token is signed for the endpoint's DNS name (the \
             name TLS verifies): pass that name as --hostname and the address as --dial {ip}:PORT"
        ),
    })
}

/// The message of a command line that cannot work, for clap to print (exit status 2).
pub(crate) fn usage(message: impl std::fmt::Display) -> ! {
    use clap::CommandFactory;
    crate::Cli::command()
        .error(clap::error::ErrorKind::ArgumentConflict, message)
        .exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_calls_become_flags() {
        let text = "no region given and none can be inferred from hostname `x`: call \
                    `.region(...)` (for example with the value of `AWS_REGION`)";
        assert_eq!(
            in_flags(text),
            "no region given and none can be inferred from hostname `x`: pass --region (e.g. \
             --region us-east-1)"
        );
        let hint = "no token was sent: add its CA with `TrustStore::with_ca_file` (the Lambda \
                    examples: `DBCaFile`); AWS GovCloud's RDS CAs";
        assert!(in_flags(hint).contains("add its CA with --ca-file FILE; AWS GovCloud"));
        assert!(in_flags("or raise `.connect_timeout(...)`").ends_with("--timeout SECONDS"));
    }

    /// The proxy's listen check is the library's (`ProxyBuilder::build`), in flags.
    #[cfg(feature = "proxy")]
    #[test]
    fn the_remote_listen_advice_names_the_flags() {
        let keys = aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "t");
        let cache = rds_iam_auth::TokenCache::new(rds_iam_auth::TokenGenerator::new(keys));
        let endpoint =
            rds_iam_auth::Endpoint::new("db.abc.us-east-1.rds.amazonaws.com", 5432).unwrap();
        let error =
            rds_iam_auth::proxy::Proxy::builder(rds_iam_auth::Engine::Postgres, cache, endpoint)
                .listen("0.0.0.0:15432".parse().unwrap())
                .build()
                .unwrap_err();
        let text = in_flags(&error.to_string());
        assert!(text.contains("not a loopback address"), "{text}");
        assert!(
            text.ends_with(
                "or --unix-socket DIR, or add --allow-remote if a firewall you control guards it"
            ),
            "{text}"
        );
    }
}
