//! [`LoginBuilder`]: one setter per login setting, for every front end, and the checks that
//! turn the settings into a [`Login`].

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::env::settings_from_vars;
use super::routine::is_dsql;
use super::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_DEAD_PEER_TIMEOUT, DEFAULT_RETRY_JITTER, Login};
use crate::dsql::DSQL_DEFAULT_MAX_CONCURRENT_LOGINS;
use crate::endpoint::Endpoint;
use crate::engine::Engine;
use crate::error::{Detail, Error, Result};
use crate::tls::TrustStore;
use crate::token::TokenRequest;

/// Which service tokens are signed for (see [`LoginBuilder::service`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenService {
    /// RDS, Aurora and RDS Proxy: `rds-db:connect`.
    Rds,
    /// Aurora DSQL: `DbConnectAdmin` for the `admin` role, `DbConnect` for any other.
    Dsql,
}

/// A front end that logs in through a [`LoginBuilder`]: the connectors (and the pools built
/// on them), the sqlx pools and the doctor. Sealed: implemented in this crate only.
pub trait FrontEnd: sealed::FrontEnd {}

pub(crate) mod sealed {
    use super::*;

    /// What a front end adds to the common settings, and what it can honour.
    pub trait FrontEnd: Sized {
        /// What only this front end is configured with (its token cache, its pool options).
        type Setup: fmt::Debug + Send;
        /// The name `Debug` gives its builder.
        const BUILDER: &'static str;
        /// The settings it can honour.
        const HONOURS: Honours;
    }

    /// A PostgreSQL front end: it can take PostgreSQL's own settings (`application_name`).
    pub trait PostgresFrontEnd: FrontEnd {}
}

/// The settings a front end can honour beyond those every login has.
#[derive(Debug, Clone, Copy)]
pub struct Honours {
    /// A dial address apart from the signing endpoint (a tunnel).
    pub(crate) dial_address: bool,
    /// A timeout of its own for each attempt.
    pub(crate) connect_timeout: bool,
    /// A bound on concurrent logins.
    pub(crate) max_concurrent_logins: bool,
    /// TCP keepalive and user-timeout settings on the connections it opens.
    pub(crate) dead_peer_timeout: bool,
}

impl Honours {
    /// Every setting.
    #[cfg_attr(
        not(any(test, feature = "postgres", feature = "mysql")),
        allow(dead_code)
    )]
    pub(crate) const ALL: Honours = Honours {
        dial_address: true,
        connect_timeout: true,
        max_concurrent_logins: true,
        dead_peer_timeout: true,
    };
}

/// Configures a login to one endpoint as one user, for the front end `F`: a connector
/// ([`PgConnectorBuilder`](crate::connector::PgConnectorBuilder),
/// [`MySqlConnectorBuilder`](crate::connector::MySqlConnectorBuilder)), a sqlx pool
/// (`sqlx_0_9::IamPoolBuilder`) or the doctor (`doctor::DoctorBuilder`).
///
/// Every setter here is one of the login's settings; the front end's own settings and its
/// `build` are on the front end's builder type. `build` checks everything at once, and
/// refuses a setting the front end cannot honour.
pub struct LoginBuilder<F: FrontEnd> {
    pub(crate) engine: Engine,
    pub(crate) settings: Settings,
    pub(crate) setup: <F as sealed::FrontEnd>::Setup,
}

/// What a login needs, as set: checked by [`Settings::login`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) endpoint: Endpoint,
    pub(crate) user: String,
    pub(crate) database: Option<String>,
    pub(crate) region: Option<String>,
    /// `None`: the endpoint's name decides.
    pub(crate) service: Option<TokenService>,
    pub(crate) token_lifetime: Option<Duration>,
    pub(crate) trust: TrustStore,
    pub(crate) retry_jitter: Duration,
    /// `None`: the default (front ends without a timeout of their own take none).
    pub(crate) connect_timeout: Option<Duration>,
    /// `None`: the default (a bound for DSQL, none for RDS); `Some(None)`: no bound.
    pub(crate) max_concurrent_logins: Option<Option<usize>>,
    /// `None`: [`DEFAULT_DEAD_PEER_TIMEOUT`] where the front end honours it.
    pub(crate) dead_peer_timeout: Option<Duration>,
    pub(crate) application_name: Option<String>,
}

impl<F: FrontEnd> LoginBuilder<F> {
    /// A builder for `user`'s logins to `endpoint` with `engine`.
    pub(crate) fn new(
        engine: Engine,
        endpoint: Endpoint,
        user: String,
        setup: <F as sealed::FrontEnd>::Setup,
    ) -> Self {
        Self {
            engine,
            settings: Settings::new(endpoint, user),
            setup,
        }
    }

    /// A builder from the environment variables of AWS's Lambda samples, read through `var`
    /// (see [`ENV_ENDPOINT`](super::ENV_ENDPOINT)).
    pub(crate) fn from_vars(
        engine: Engine,
        setup: <F as sealed::FrontEnd>::Setup,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let vars = settings_from_vars(engine, var)?;
        let mut builder = Self::new(engine, vars.endpoint, vars.user, setup);
        builder.settings.database = vars.database;
        builder.settings.region = vars.region;
        if let Some(path) = vars.ca_file {
            builder.settings.trust = TrustStore::aws_default().with_ca_file(path)?;
        }
        Ok(builder)
    }

    /// The database to connect to (PostgreSQL's default is the user name, Aurora DSQL's
    /// `postgres`; MySQL's is none).
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.settings.database = Some(database.into());
        self
    }

    /// The region to sign for, when it cannot be inferred from the hostname.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.settings.region = Some(region.into());
        self
    }

    /// Which CAs to trust (default [`TrustStore::aws_default`]). Chain and host name are
    /// always verified.
    pub fn trust(mut self, trust: TrustStore) -> Self {
        self.settings.trust = trust;
        self
    }

    /// Signs Aurora DSQL tokens ([`TokenService::Dsql`]) or RDS ones ([`TokenService::Rds`])
    /// whatever the hostname looks like. By default the endpoint decides
    /// ([`Endpoint::is_dsql`]); set it for a name that does not tell, such as a DNS alias of
    /// a DSQL cluster.
    pub fn service(mut self, service: TokenService) -> Self {
        self.settings.service = Some(service);
        self
    }

    /// How long the tokens are valid: default 900 s; at most 900 s for RDS
    /// ([`RDS_MAX_EXPIRY`](crate::token::RDS_MAX_EXPIRY)) and one week for Aurora DSQL
    /// ([`DSQL_MAX_EXPIRY`](crate::token::DSQL_MAX_EXPIRY)), checked at `build`. A token is
    /// checked at login only: its lifetime bounds how long the cache may reuse it, not how
    /// long a connection lives.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.settings.token_lifetime = Some(lifetime);
        self
    }

    /// The longest random wait before the retry that follows a rejected token; default
    /// [`DEFAULT_RETRY_JITTER`] (250 ms), zero to retry at once.
    ///
    /// The wait counts in the retry's time: a bound over half the attempt's timeout (the
    /// connect timeout, or a sqlx pool's acquire timeout) is cut to that half, so the retry
    /// always keeps time to connect.
    pub fn retry_jitter(mut self, bound: Duration) -> Self {
        self.settings.retry_jitter = bound;
        self
    }

    /// How long one attempt (token, TCP connect, TLS handshake, login) may take; default
    /// [`DEFAULT_CONNECT_TIMEOUT`]. A rejected token's retry gets the same again. For the
    /// doctor, the bound of each network step. sqlx pools refuse it: their bound is sqlx's
    /// `acquire_timeout` (in the pool options).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = Some(timeout);
        self
    }

    /// At most `limit` logins run at once (of one connector and the pools using it); `None`:
    /// no bound. Default: [`DSQL_DEFAULT_MAX_CONCURRENT_LOGINS`] for Aurora DSQL (whose
    /// clusters accept 100 new connections per second), none for RDS. Logins beyond the
    /// bound wait their turn (outside the connect timeout): a pool warming up does not
    /// stampede the database. sqlx pools and the doctor refuse it (sqlx opens connections
    /// of its own accord, which no bound here could hold back).
    pub fn max_concurrent_logins(mut self, limit: Option<usize>) -> Self {
        self.settings.max_concurrent_logins = Some(limit);
        self
    }

    /// How long an open connection may leave the other side unheard before it counts as
    /// dead (a failover, a partition, a NAT that dropped its idle state): TCP keepalive
    /// probes start after half of it and three unanswered probes end the connection; data the
    /// server never acknowledges ends it after the whole (`TCP_USER_TIMEOUT`). Default
    /// [`DEFAULT_DEAD_PEER_TIMEOUT`] (60 s); the kernel's own defaults would take over two
    /// hours.
    ///
    /// PostgreSQL connections get all of it. mysql_async sets only the keepalive idle time
    /// (half of this); the interval and count of probes are the kernel's (`net.ipv4.tcp_keepalive_*`,
    /// 75 s × 9 by default). A pool's check of a pooled connection is bounded by the
    /// [connect timeout](Self::connect_timeout) in any case. sqlx pools refuse it: sqlx opens
    /// its sockets itself, with no keepalive.
    pub fn dead_peer_timeout(mut self, timeout: Duration) -> Self {
        self.settings.dead_peer_timeout = Some(timeout);
        self
    }
}

impl<F: FrontEnd + sealed::PostgresFrontEnd> LoginBuilder<F> {
    /// `application_name`, shown in `pg_stat_activity` and the server log.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.settings.application_name = Some(name.into());
        self
    }
}

impl Settings {
    pub(crate) fn new(endpoint: Endpoint, user: String) -> Self {
        Self {
            endpoint,
            user,
            database: None,
            region: None,
            service: None,
            token_lifetime: None,
            trust: TrustStore::aws_default(),
            retry_jitter: DEFAULT_RETRY_JITTER,
            connect_timeout: None,
            max_concurrent_logins: None,
            dead_peer_timeout: None,
            application_name: None,
        }
    }

    /// The token request: the service by the endpoint's name unless set, the region given
    /// or inferred, the lifetime given or the default.
    pub(crate) fn token_request(&self) -> Result<TokenRequest> {
        let user = self.user.clone();
        let mut request = match self.service {
            None => TokenRequest::for_endpoint(&self.endpoint, user),
            Some(TokenService::Dsql) => TokenRequest::dsql(&self.endpoint, user),
            Some(TokenService::Rds) => TokenRequest::rds(&self.endpoint, user),
        };
        if let Some(region) = &self.region {
            request = request.region(region);
        }
        if let Some(lifetime) = self.token_lifetime {
            request = request.expires_in(lifetime);
        }
        request.build()
    }

    /// Checks everything, for a front end of `engine` that honours `honours`.
    ///
    /// # Errors
    /// A region that is invalid or cannot be inferred, an invalid user name, a token
    /// lifetime beyond the service's maximum, a DSQL endpoint for another engine than
    /// PostgreSQL, a zero connect timeout or login bound, a setting the front end cannot
    /// honour, or a [`TrustStore`] without certificates (no server could ever be verified).
    pub(crate) fn login(&self, engine: Engine, honours: Honours) -> Result<Login> {
        if self.endpoint.is_tunnelled() && !honours.dial_address {
            let (host, port) = self.endpoint.dial_address();
            return Err(Detail::DialAddressNotSupported {
                host: self.endpoint.host().to_owned(),
                dial: format!("{host}:{port}"),
            }
            .into());
        }
        let request = self.token_request()?;
        let dsql = is_dsql(request.action());
        if dsql && engine != Engine::Postgres {
            return Err(invalid(
                "service",
                "Aurora DSQL speaks PostgreSQL only: connect with the PostgreSQL connector or pool",
            ));
        }
        let connect_timeout = match (self.connect_timeout, honours.connect_timeout) {
            (Some(_), false) => {
                return Err(invalid(
                    "connect_timeout",
                    "sqlx pools bound each connection by sqlx's own `acquire_timeout`: set it \
                     in the pool options",
                ));
            }
            (Some(timeout), true) if timeout.is_zero() => {
                return Err(invalid("connect_timeout", "must be longer than zero"));
            }
            (timeout, true) => Some(timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)),
            (None, false) => None,
        };
        let max_concurrent_logins =
            match (self.max_concurrent_logins, honours.max_concurrent_logins) {
                (Some(Some(_)), false) => {
                    return Err(invalid(
                        "max_concurrent_logins",
                        "this front end cannot bound its logins (sqlx opens connections of its own \
                     accord): leave it unset",
                    ));
                }
                (Some(Some(0)), true) => {
                    return Err(invalid(
                        "max_concurrent_logins",
                        "must be at least 1 (or None for no bound)",
                    ));
                }
                (Some(limit), true) => limit,
                (None, true) => dsql.then_some(DSQL_DEFAULT_MAX_CONCURRENT_LOGINS),
                (_, false) => None,
            };
        let dead_peer_timeout = match (self.dead_peer_timeout, honours.dead_peer_timeout) {
            (Some(_), false) => {
                return Err(invalid(
                    "dead_peer_timeout",
                    "sqlx opens its sockets itself, with no TCP keepalive: leave it unset",
                ));
            }
            (Some(timeout), true) if timeout < Duration::from_secs(2) => {
                return Err(invalid(
                    "dead_peer_timeout",
                    "must be at least 2 s (TCP keepalive counts whole seconds)",
                ));
            }
            (timeout, true) => Some(timeout.unwrap_or(DEFAULT_DEAD_PEER_TIMEOUT)),
            (None, false) => None,
        };
        if self.trust.is_empty() {
            return Err(Detail::EmptyTrustStore.into());
        }
        // DSQL has one database; PostgreSQL's default (the user name) names none there.
        let database = match &self.database {
            None if dsql => Some("postgres".to_owned()),
            database => database.clone(),
        };
        // Half the attempt's timeout at most: the retry keeps time to connect.
        let retry_jitter = match connect_timeout {
            Some(timeout) => self.retry_jitter.min(timeout / 2),
            None => self.retry_jitter,
        };
        Ok(Login {
            engine,
            request,
            endpoint: self.endpoint.clone(),
            database,
            application_name: self.application_name.clone(),
            trust: self.trust.clone(),
            connect_timeout,
            retry_jitter,
            timeout_setting: "`.connect_timeout(...)`",
            max_concurrent_logins,
            logins: max_concurrent_logins.map(Semaphore::new),
            dead_peer_timeout,
        })
    }
}

#[cfg(feature = "__sqlx")]
impl Login {
    /// Bounds each attempt by `bound`, a front end's own timeout (sqlx's acquire timeout),
    /// and caps the retry's random wait at half of it. A user cannot set the connect timeout
    /// of such a front end: its own setting is the bound.
    pub(crate) fn bound_attempts(mut self, bound: Duration) -> Self {
        self.connect_timeout = Some(bound);
        self.timeout_setting = "the pool options' `acquire_timeout`";
        self.retry_jitter = self.retry_jitter.min(bound / 2);
        self
    }
}

fn invalid(name: &'static str, reason: &'static str) -> Error {
    Detail::InvalidSetting {
        name,
        reason: Cow::Borrowed(reason),
    }
    .into()
}

impl<F: FrontEnd> fmt::Debug for LoginBuilder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct(<F as sealed::FrontEnd>::BUILDER)
            .field("engine", &self.engine)
            .field("endpoint", &s.endpoint)
            .field("user", &s.user)
            .field("database", &s.database)
            .field("region", &s.region)
            .field("service", &s.service)
            .field("token_lifetime", &s.token_lifetime)
            .field("trust", &s.trust)
            .field("retry_jitter", &s.retry_jitter)
            .field("connect_timeout", &s.connect_timeout)
            .field("max_concurrent_logins", &s.max_concurrent_logins)
            .field("dead_peer_timeout", &s.dead_peer_timeout)
            .field("application_name", &s.application_name)
            .field("setup", &self.setup)
            .finish_non_exhaustive()
    }
}
