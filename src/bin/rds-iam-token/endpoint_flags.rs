//! The flags `doctor` and `proxy` share to name a database: `--engine`, `--hostname`, `--port`
//! and `--dial`; and how both read `--timeout`.

use rds_iam_auth::{Endpoint, Engine};

use crate::wording::{Where, explain};

/// `--engine`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum EngineArg {
    Postgres,
    Mysql,
}

impl EngineArg {
    pub(crate) fn engine(self) -> Engine {
        match self {
            EngineArg::Postgres => Engine::Postgres,
            EngineArg::Mysql => Engine::MySql,
        }
    }
}

/// `--timeout SECONDS`: at least 1, refused by clap otherwise (a zero timeout would fail
/// every step at once).
pub(crate) fn seconds() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..)
}

/// The endpoint `--hostname` and `--port` name (the engine's port by default), dialled at
/// `--dial HOST:PORT` when given; errors in the command's words.
pub(crate) fn endpoint(
    engine: Engine,
    hostname: &str,
    port: Option<u16>,
    dial: Option<&str>,
) -> Result<Endpoint, String> {
    let endpoint = Endpoint::new(hostname, port.unwrap_or(engine.default_port()))
        .map_err(|e| explain(&e, Where::Doctor))?;
    let Some(dial) = dial else {
        return Ok(endpoint);
    };
    let (host, port) = dial
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("--dial `{dial}` is not HOST:PORT"))?;
    endpoint
        .with_dial_address(host, port)
        .map_err(|e| explain(&e, Where::Doctor))
}
