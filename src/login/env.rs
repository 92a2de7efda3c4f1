//! Connection settings from the environment, under the names of AWS's Lambda samples.

use crate::endpoint::Endpoint;
use crate::engine::Engine;
use crate::error::{Detail, Error, Result};

/// Environment variable names read by every front end's `builder_from_env` (those of the
/// AWS Lambda samples for RDS IAM authentication): the endpoint, `host` or `host:port`.
pub const ENV_ENDPOINT: &str = "DBEndPoint";
/// The database name variable, see [`ENV_ENDPOINT`].
pub const ENV_DATABASE: &str = "DatabaseName";
/// The database user variable, see [`ENV_ENDPOINT`].
pub const ENV_USER: &str = "DBUserName";
/// Optional: the port, when [`ENV_ENDPOINT`] carries none (it wins over the one there).
pub const ENV_PORT: &str = "DBPort";
/// Optional: the region to sign for, when the hostname carries none (a CNAME, say).
pub const ENV_REGION: &str = "DBRegion";
/// Optional: a PEM file of CAs to trust besides the AWS ones (a GovCloud bundle, a proxy's CA).
pub const ENV_CA_FILE: &str = "DBCaFile";

/// Connection settings read from the `ENV_*` variables.
#[derive(Debug)]
pub(crate) struct EnvSettings {
    pub(crate) endpoint: Endpoint,
    pub(crate) user: String,
    pub(crate) database: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) ca_file: Option<String>,
}

/// Reads the settings through `var` (the process environment, or a map in tests).
/// `DBEndPoint` is `host` or `host:port`, with the engine's default port when none is given.
pub(crate) fn settings_from_vars(
    engine: Engine,
    var: impl Fn(&str) -> Option<String>,
) -> Result<EnvSettings> {
    let invalid = |name, reason: &str| -> Error {
        Detail::InvalidEnvVar {
            name,
            reason: reason.to_owned(),
        }
        .into()
    };
    let endpoint = var(ENV_ENDPOINT)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            invalid(
                ENV_ENDPOINT,
                "is not set: set it to the endpoint's DNS name, optionally with `:port`",
            )
        })?;
    let endpoint = endpoint.trim();
    if endpoint.starts_with('/') {
        return Err(invalid(
            ENV_ENDPOINT,
            "names a Unix socket: IAM tokens are only sent over verified TLS, \
             set it to the endpoint's DNS name",
        ));
    }
    let endpoint = if endpoint.contains(':') && !endpoint.starts_with('[') {
        endpoint.parse::<Endpoint>()?
    } else {
        Endpoint::new(endpoint, engine.default_port())?
    };
    let endpoint = match var(ENV_PORT).filter(|v| !v.trim().is_empty()) {
        Some(port) => {
            let port = port.trim().parse::<u16>().map_err(|_| {
                invalid(
                    ENV_PORT,
                    "is not a port number: set it to a number from 1 to 65535",
                )
            })?;
            Endpoint::new(endpoint.host(), port)?
        }
        None => endpoint,
    };
    let user = var(ENV_USER).filter(|v| !v.is_empty()).ok_or_else(|| {
        let setup = engine.iam_user_setup("<user>");
        invalid(
            ENV_USER,
            &format!("is not set: set it to a database user set up for IAM login ({setup})"),
        )
    })?;
    let optional = |name| var(name).filter(|v| !v.trim().is_empty());
    Ok(EnvSettings {
        endpoint,
        user,
        database: optional(ENV_DATABASE),
        region: optional(ENV_REGION),
        ca_file: optional(ENV_CA_FILE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(engine: Engine, vars: &[(&str, &str)]) -> Result<EnvSettings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        settings_from_vars(engine, |k| map.get(k).cloned())
    }

    const HOST: &str = "mydb.cluster-abc.eu-west-1.rds.amazonaws.com";

    #[test]
    fn default_port_per_engine_and_explicit_port() {
        for (engine, port) in [(Engine::Postgres, 5432), (Engine::MySql, 3306)] {
            let s = from(engine, &[("DBEndPoint", HOST), ("DBUserName", "u")]).unwrap();
            assert_eq!(s.endpoint.port(), port);
            assert_eq!(s.database, None);
            let with_port = format!("{HOST}:4000");
            let s = from(
                engine,
                &[
                    ("DBEndPoint", &with_port),
                    ("DBUserName", "u"),
                    ("DatabaseName", "db"),
                ],
            )
            .unwrap();
            assert_eq!(s.endpoint.port(), 4000);
            assert_eq!(s.database.as_deref(), Some("db"));
        }
    }

    #[test]
    fn optional_port_region_and_ca_file() {
        let s = from(
            Engine::Postgres,
            &[
                ("DBEndPoint", "db.example.com"),
                ("DBUserName", "u"),
                ("DBPort", " 6432 "),
                ("DBRegion", "eu-west-1"),
                ("DBCaFile", "/opt/ca.pem"),
            ],
        )
        .unwrap();
        assert_eq!(
            (s.endpoint.host(), s.endpoint.port()),
            ("db.example.com", 6432)
        );
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.ca_file.as_deref(), Some("/opt/ca.pem"));
        for bad in ["x", "65536", "-1"] {
            let e = from(
                Engine::MySql,
                &[("DBEndPoint", HOST), ("DBUserName", "u"), ("DBPort", bad)],
            )
            .unwrap_err();
            assert!(e.to_string().contains("DBPort"), "{e}");
        }
    }

    #[test]
    fn the_missing_user_message_says_how_the_engine_sets_it_up() {
        let e = from(Engine::MySql, &[("DBEndPoint", HOST)]).unwrap_err();
        assert!(e.to_string().contains("AWSAuthenticationPlugin"), "{e}");
        let e = from(Engine::Postgres, &[("DBEndPoint", HOST)]).unwrap_err();
        assert!(e.to_string().contains("rds_iam"), "{e}");
    }

    #[test]
    fn errors_name_the_variable() {
        let e = from(Engine::Postgres, &[("DBUserName", "u")]).unwrap_err();
        assert!(e.to_string().contains("DBEndPoint"), "{e}");
        let e = from(Engine::Postgres, &[("DBEndPoint", HOST)]).unwrap_err();
        assert!(e.to_string().contains("DBUserName"), "{e}");
        for socket in ["/var/run/postgresql", "/var/run/mysqld/mysqld.sock"] {
            let e = from(
                Engine::MySql,
                &[("DBEndPoint", socket), ("DBUserName", "u")],
            )
            .unwrap_err();
            assert!(e.to_string().contains("Unix socket"), "{e}");
        }
        let e = from(
            Engine::Postgres,
            &[("DBEndPoint", "10.0.0.1"), ("DBUserName", "u")],
        )
        .unwrap_err();
        assert_eq!(e.setting(), Some("hostname"), "{e:?}");
        assert!(e.to_string().contains("is an IP address"), "{e:?}");
    }
}
