//! What a failed connection most likely means, in words a user can act on.
//!
//! Drivers report the same few failures in many shapes (a `rustls::Error` inside an
//! `io::Error` inside the driver's own error...). The
//! message of a failed connection names the one cause found in that chain, once, with the
//! hint that fits it, and says whether TLS stopped the login.

use std::error::Error as StdError;
use std::io;

use crate::error::{ServerCode, chain};

/// What a driver's error most likely means.
#[derive(Debug)]
pub(crate) struct Diagnosis {
    /// The hint for the first recognizable cause (`None`: nothing recognized).
    pub(crate) hint: Option<&'static str>,
    /// TLS stopped the login (a refused certificate, a server without TLS): no token sent.
    pub(crate) tls: bool,
    /// The server's code, if it answered with one.
    pub(crate) code: Option<ServerCode>,
}

/// Reads `error`'s chain: the first recognizable cause and the server's code.
pub(crate) fn diagnose(error: &(dyn StdError + 'static)) -> Diagnosis {
    let tls = chain(error).find_map(|e| tls_hint(e).or_else(|| driver_hint(e)));
    let other = || chain(error).find_map(|e| io_hint(e).or_else(|| connection_limit_hint(e)));
    Diagnosis {
        tls: tls.is_some(),
        hint: tls.or_else(other),
        code: chain(error).find_map(server_code),
    }
}

/// The hint for the first recognizable cause in `error`'s chain.
#[cfg(test)]
fn connect_hint(error: &(dyn StdError + 'static)) -> &'static str {
    diagnose(error).hint.unwrap_or("see the cause")
}

/// The server's SQLSTATE or MySQL error number, from whichever driver's error this is.
fn server_code(error: &(dyn StdError + 'static)) -> Option<ServerCode> {
    #[cfg(feature = "proxy")]
    if let Some(server) = error.downcast_ref::<super::wire::ServerError>() {
        return Some(server.code.clone());
    }
    #[cfg(feature = "postgres")]
    if let Some(code) = error
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.code())
        .or_else(|| {
            error
                .downcast_ref::<tokio_postgres::error::DbError>()
                .map(|e| e.code())
        })
    {
        return Some(ServerCode::SqlState(code.code().to_owned()));
    }
    #[cfg(feature = "mysql")]
    if let Some(mysql_async::Error::Server(server)) = error.downcast_ref::<mysql_async::Error>() {
        return Some(ServerCode::MySql(server.code));
    }
    // Each sqlx version's errors are its own types: each pool module reads its own.
    let sqlx_readers: &[fn(&(dyn StdError + 'static)) -> Option<ServerCode>] = &[
        #[cfg(feature = "sqlx-0_9-postgres")]
        crate::sqlx_0_9::server_code::<sqlx::Postgres>,
        #[cfg(feature = "sqlx-0_9-mysql")]
        crate::sqlx_0_9::server_code::<sqlx::MySql>,
        #[cfg(feature = "sqlx-0_8-postgres")]
        crate::sqlx_0_8::server_code::<sqlx08::Postgres>,
        #[cfg(feature = "sqlx-0_8-mysql")]
        crate::sqlx_0_8::server_code::<sqlx08::MySql>,
    ];
    sqlx_readers.iter().find_map(|read| read(error))
}

fn tls_hint(error: &(dyn StdError + 'static)) -> Option<&'static str> {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(cert) = error.downcast_ref::<rustls::Error>()? else {
        return Some("the TLS handshake failed, so no token was sent");
    };
    Some(match cert {
        C::UnknownIssuer => {
            "the server's certificate is not issued by a CA in the trust store, so no token \
             was sent: add its CA with `TrustStore::with_ca_file` (the Lambda examples: \
             `DBCaFile`); AWS GovCloud's RDS CAs are not in the default store"
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "the server's certificate is not valid for the signing hostname, so no token was \
             sent: connect with the endpoint's DNS name (through a tunnel, keep it as the \
             signing host and set the tunnel as the dial address)"
        }
        C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => {
            "the server's certificate is expired or not yet valid, so no token was sent: \
             check this machine's clock and the server's certificate"
        }
        C::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => {
            "the server presents a CA certificate (`CA:TRUE`, a self-signed certificate made as \
             a CA) as its own, and TLS refuses that, so no token was sent: give the server a \
             certificate of its own (`CA:FALSE`) signed by that CA, and trust the CA with \
             `TrustStore::with_ca_file`"
        }
        _ => "the server's certificate was refused, so no token was sent",
    })
}

fn io_hint(error: &(dyn StdError + 'static)) -> Option<&'static str> {
    Some(match error.downcast_ref::<io::Error>()?.kind() {
        io::ErrorKind::ConnectionRefused => {
            "nothing accepts connections at the dialled address: check the host and port, \
             that the instance is available, and the tunnel if there is one"
        }
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the handshake: check that the port is \
             the database's and that the server accepts TLS"
        }
        io::ErrorKind::TimedOut => {
            "the TCP connection timed out: check security groups, routes and the tunnel"
        }
        _ => return None,
    })
}

/// The driver's own words for a server that offers no TLS.
fn driver_hint(error: &(dyn StdError + 'static)) -> Option<&'static str> {
    const NO_TLS: &str = "the server offered no TLS, and an IAM token is never sent without \
                          it: enable TLS on the server (RDS always offers it)";
    #[cfg(feature = "mysql")]
    if let Some(mysql_async::DriverError::NoClientSslFlagFromServer) =
        error.downcast_ref::<mysql_async::DriverError>()
    {
        return Some(NO_TLS);
    }
    // tokio-postgres has no error kind for it; this text is its `sslmode=require` refusal.
    (error.to_string() == "server does not support TLS").then_some(NO_TLS)
}

/// PostgreSQL's (and Aurora DSQL's) refusals of a new connection over a limit.
#[cfg(feature = "postgres")]
fn connection_limit_hint(error: &(dyn StdError + 'static)) -> Option<&'static str> {
    use tokio_postgres::error::{DbError, SqlState};
    let code = error.downcast_ref::<DbError>()?.code();
    if *code == SqlState::CONFIGURATION_LIMIT_EXCEEDED {
        return Some(
            "the server refused a new connection over its rate limit (Aurora DSQL: 100 new \
             connections per second per cluster, not configurable): lower \
             `max_concurrent_logins`, grow pools more slowly, or try again after a pause",
        );
    }
    (*code == SqlState::TOO_MANY_CONNECTIONS).then_some(
        "the server has too many open connections (for the database, or for this role): \
         shrink the pools or raise the limit (RDS: `max_connections`; Aurora DSQL: 10,000 per \
         cluster by default, a service quota)",
    )
}

#[cfg(not(feature = "postgres"))]
fn connection_limit_hint(_: &(dyn StdError + 'static)) -> Option<&'static str> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrap(&'static str, Box<dyn StdError + Send + Sync>);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}{}", self.0, self.1)
        }
    }
    impl StdError for Wrap {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.1)
        }
    }

    fn rustls_in_io(e: rustls::Error) -> Wrap {
        Wrap("Input/output error: ", Box::new(io::Error::other(e)))
    }

    #[test]
    fn names_each_certificate_failure() {
        use rustls::CertificateError as C;
        for (cert, expected) in [
            (C::UnknownIssuer, "with_ca_file"),
            (C::NotValidForName, "not valid for the signing hostname"),
            (C::Expired, "expired"),
        ] {
            let e = rustls_in_io(rustls::Error::InvalidCertificate(cert));
            let hint = connect_hint(&e);
            assert!(hint.contains(expected), "{hint}");
            assert!(hint.contains("no token was sent"), "{hint}");
        }
    }

    #[test]
    fn a_ca_certificate_presented_as_the_servers_says_what_it_is() {
        // What rustls makes of webpki's `CaUsedAsEndEntity` (a self-signed `CA:TRUE`
        // certificate as the server's): an `Other` certificate error with that name.
        #[derive(Debug)]
        struct CaUsedAsEndEntity;
        impl std::fmt::Display for CaUsedAsEndEntity {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("CaUsedAsEndEntity")
            }
        }
        impl StdError for CaUsedAsEndEntity {}
        let other = rustls::OtherError(std::sync::Arc::new(CaUsedAsEndEntity));
        let e = rustls_in_io(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Other(other),
        ));
        let diagnosis = diagnose(&e);
        let hint = diagnosis.hint.unwrap();
        assert!(diagnosis.tls);
        assert!(
            hint.contains("presents a CA certificate (`CA:TRUE`"),
            "{hint}"
        );
        assert!(hint.contains("`CA:FALSE`"), "{hint}");
        assert!(hint.contains("no token was sent"), "{hint}");
    }

    #[test]
    fn a_refused_port_is_not_blamed_on_certificates() {
        let e = Wrap(
            "error connecting: ",
            Box::new(io::Error::from(io::ErrorKind::ConnectionRefused)),
        );
        let hint = connect_hint(&e);
        assert!(hint.contains("nothing accepts connections"), "{hint}");
        assert!(!hint.contains("CA"), "{hint}");
    }

    #[test]
    fn the_report_says_each_cause_once() {
        let e = rustls_in_io(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        let text = crate::error::report(&e);
        assert_eq!(text.matches("UnknownIssuer").count(), 1, "{text}");
        assert_eq!(
            text.matches("invalid peer certificate").count(),
            1,
            "{text}"
        );
    }
}
