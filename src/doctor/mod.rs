//! Why an IAM login fails, step by step: what `rds-iam-token doctor` prints.
//!
//! IAM database authentication fails with one opaque message (PostgreSQL's "PAM
//! authentication failed", MySQL's error 1045) whatever the cause. [`Doctor::run`] walks the
//! chain a login goes through and reports each link as a [`Check`]: the endpoint and region,
//! the credentials and the IAM principal they belong to (STS `GetCallerIdentity`), DNS, TCP,
//! TLS (certificate, chain, name), the login itself with a fresh token, and the local clock
//! against the server certificate's validity.
//!
//! Nothing secret is reported: no token, no signature, no secret key (access key ids are
//! masked). The TLS probe connection sends no password; only the login step sends a token,
//! through the same connector an application uses (verified TLS only).
//!
//! ```no_run
//! use rds_iam_auth::doctor::Doctor;
//! use rds_iam_auth::{Endpoint, Engine};
//!
//! # async fn run() -> Result<(), rds_iam_auth::Error> {
//! let endpoint = Endpoint::new("mydb.cluster-abc123.us-east-1.rds.amazonaws.com", 5432)?;
//! let report = Doctor::builder(Engine::Postgres, endpoint, "iam_user")
//!     .database("appdb")
//!     .build()
//!     .run()
//!     .await;
//! for check in report.checks() {
//!     println!("{check}");
//! }
//! std::process::exit(if report.logged_in() { 0 } else { 1 });
//! # }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;

use crate::cache::TokenCache;
use crate::connector::{Connector, Driver};
use crate::endpoint::Endpoint;
use crate::engine::Engine;
use crate::error::Detail;
use crate::login::{self, DEFAULT_CONNECT_TIMEOUT, Honours, LoginBuilder, Settings};
use crate::token::{Action, TokenGenerator, TokenRequest};

mod probe;
mod sts;

pub use probe::TlsProbe;

/// Diagnoses IAM logins to one endpoint as one user; see [`Doctor::builder`].
#[derive(Debug, Clone)]
pub struct Doctor {
    engine: Engine,
    settings: Settings,
    generator: TokenGenerator,
    sts_endpoint: Option<String>,
    /// Each network step's bound: the login settings' connect timeout.
    timeout: Duration,
}

/// Configures a [`Doctor`]: the [`LoginBuilder`] of the doctor; see [`Doctor::builder`].
///
/// Its setters are [`LoginBuilder`]'s: [`database`](crate::login::LoginBuilder::database), [`region`](crate::login::LoginBuilder::region), [`trust`](crate::login::LoginBuilder::trust),
/// [`service`](crate::login::LoginBuilder::service), [`token_lifetime`](crate::login::LoginBuilder::token_lifetime),
/// [`retry_jitter`](crate::login::LoginBuilder::retry_jitter),
/// [`connect_timeout`](crate::login::LoginBuilder::connect_timeout) (each network step's bound); then
/// [`generator`](LoginBuilder::generator), [`sts_endpoint`](LoginBuilder::sts_endpoint) and
/// [`build`](LoginBuilder::build).
pub type DoctorBuilder = LoginBuilder<Doctor>;

/// What only the doctor's builder holds.
#[derive(Debug, Default)]
pub struct DoctorSetup {
    generator: Option<TokenGenerator>,
    sts_endpoint: Option<String>,
}

impl login::FrontEnd for Doctor {}

impl login::sealed::FrontEnd for Doctor {
    type Setup = DoctorSetup;
    const BUILDER: &'static str = "DoctorBuilder";
    /// A diagnosis opens one login: a bound on concurrent logins means nothing to it.
    const HONOURS: Honours = Honours {
        dial_address: true,
        connect_timeout: true,
        max_concurrent_logins: false,
        dead_peer_timeout: true,
    };
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// This link works.
    Pass,
    /// This link is broken: the login cannot succeed until it is fixed.
    Fail,
    /// Something to look at that does not by itself stop the login.
    Warn,
    /// Not checked, because an earlier step failed.
    Skip,
}

impl Status {
    /// `pass`, `fail`, `warn` or `skip` (the JSON output's words).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::Skip => "skip",
        }
    }

    fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Fail => "✗",
            Status::Warn => "!",
            Status::Skip => "-",
        }
    }
}

/// One step of the diagnosis: what was checked, what was found, and what to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Check {
    /// The step: `endpoint`, `credentials`, `identity`, `dns`, `tcp`, `tls`, `login` or `clock`.
    pub step: &'static str,
    /// Its outcome.
    pub status: Status,
    /// What was found, in one line.
    pub message: String,
    /// Further facts (addresses, certificate fields, the policy ARN, a checklist), one per line.
    pub details: Vec<String>,
    /// What to do, when something is wrong.
    pub fix: Option<String>,
}

impl Check {
    /// Every text of a check goes through [`printable`]: much of it quotes the server (its
    /// error packets, greeting, certificate names), and a terminal must not take escape
    /// sequences or line breaks from there (a forged `✓ login` line).
    fn new(step: &'static str, status: Status, message: impl Into<String>) -> Self {
        Self {
            step,
            status,
            message: printable(&message.into()),
            details: Vec::new(),
            fix: None,
        }
    }

    fn pass(step: &'static str, message: impl Into<String>) -> Self {
        Self::new(step, Status::Pass, message)
    }

    fn fail(step: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(step, Status::Fail, message).fix(fix)
    }

    fn skip(step: &'static str, why: &str) -> Self {
        Self::new(step, Status::Skip, format!("not checked: {why}"))
    }

    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(printable(&fix.into()));
        self
    }

    fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(printable(&line.into()));
        self
    }
}

impl fmt::Display for Check {
    /// `✓ step: message`, then one indented line per detail and the fix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.mark(), self.step, self.message)?;
        for line in &self.details {
            write!(f, "\n    {line}")?;
        }
        if let Some(fix) = &self.fix {
            write!(f, "\n    fix: {fix}")?;
        }
        Ok(())
    }
}

/// Every check of one [`Doctor::run`], in order.
#[derive(Debug, Clone)]
pub struct Report {
    checks: Vec<Check>,
}

impl Report {
    /// The checks, in the order they ran.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The check of `step`, if it ran.
    pub fn check(&self, step: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.step == step)
    }

    /// `true` when the login with a fresh token succeeded (the CLI's exit status 0).
    pub fn logged_in(&self) -> bool {
        self.check("login")
            .is_some_and(|c| c.status == Status::Pass)
    }
}

impl Doctor {
    /// A doctor for `user`'s login to `endpoint` (the signing endpoint; set a dial address on
    /// it for a tunnel), with credentials from the standard AWS chain unless
    /// [`generator`](LoginBuilder::generator) says otherwise, and the AWS CAs trusted.
    pub fn builder(engine: Engine, endpoint: Endpoint, user: impl Into<String>) -> DoctorBuilder {
        LoginBuilder::new(engine, endpoint, user.into(), DoctorSetup::default())
    }

    /// Runs every step and reports each; never fails (a failure is a [`Check`]).
    pub async fn run(&self) -> Report {
        let mut checks = Vec::new();
        let request = self.endpoint_step(&mut checks);
        let credentials = self.credentials_step(&mut checks).await;
        checks.push(
            self.identity_step(request.as_ref(), credentials.as_ref())
                .await,
        );
        let tls = self.network_steps(&mut checks).await;
        let login = match (&request, &credentials) {
            (Some(request), Some(_)) => self.login_step(request, tls.as_ref()).await,
            _ => Check::skip("login", "no token can be signed (see above)"),
        };
        checks.push(login);
        if let Some(check) = tls.as_ref().and_then(|t| self.clock_step(t)) {
            checks.push(check);
        }
        Report { checks }
    }

    /// (1) What the token is signed for: host, port, region (given or inferred), and that
    /// the settings make a login.
    fn endpoint_step(&self, checks: &mut Vec<Check>) -> Option<TokenRequest> {
        let endpoint = &self.settings.endpoint;
        let host = endpoint.host();
        let (check, request) = match self
            .settings
            .login(self.engine, <Doctor as login::sealed::FrontEnd>::HONOURS)
        {
            Ok(login) => {
                let request = login.request;
                let source = if self.settings.region.is_some() {
                    "given"
                } else {
                    "inferred from the hostname"
                };
                let mut check = Check::pass(
                    "endpoint",
                    format!(
                        "tokens are signed for {host}:{}, region {} ({source})",
                        endpoint.port(),
                        request.region().as_str()
                    ),
                );
                if endpoint.is_tunnelled() {
                    let (h, p) = endpoint.dial_address();
                    check = check.detail(format!(
                        "connections go to {h}:{p}; TLS still verifies {host}"
                    ));
                }
                if endpoint.inferred_region().is_none() {
                    check = check.detail(
                        "this name is not an RDS endpoint name (a CNAME or a custom name?): RDS \
                         accepts only tokens signed for its own endpoint name; if logins are \
                         rejected, sign for the RDS name and dial this one (--dial)",
                    );
                }
                (check, Some(request))
            }
            Err(e) if matches!(e.detail(), Detail::RegionNotFound { .. }) => (
                Check::fail(
                    "endpoint",
                    format!("no region in the hostname `{host}` (a CNAME or a custom name?)"),
                    "pass the database's region (--region us-east-1); better, sign for the RDS \
                     endpoint name itself and dial this name with --dial",
                )
                .detail(e.to_string()),
                None,
            ),
            Err(e) => (
                Check::fail(
                    "endpoint",
                    e.to_string(),
                    "see the message; --region sets the region",
                ),
                None,
            ),
        };
        checks.push(check);
        request
    }

    /// (2) Which provider of the chain answered, which key, until when.
    async fn credentials_step(&self, checks: &mut Vec<Check>) -> Option<Credentials> {
        let provider = self.generator.provider();
        let resolved = tokio::time::timeout(self.timeout, provider.provide_credentials());
        let check = match resolved.await {
            Ok(Ok(credentials)) => {
                let expiry = match credentials.expiry() {
                    Some(at) => describe_expiry(at, self.generator.clock().now()),
                    None => "no expiry (long-term keys)".to_owned(),
                };
                let check = Check::pass(
                    "credentials",
                    format!(
                        "from {}: access key {}, {expiry}",
                        provider_name(&credentials),
                        mask(credentials.access_key_id())
                    ),
                );
                let expired = credentials
                    .expiry()
                    .is_some_and(|at| at <= self.generator.clock().now());
                checks.push(if expired {
                    Check {
                        status: Status::Fail,
                        ..check
                    }
                    .fix("refresh the credentials (aws sso login, a new session) and retry")
                } else {
                    check
                });
                return (!expired).then_some(credentials);
            }
            Ok(Err(e)) => Check::fail(
                "credentials",
                crate::Error::from(Detail::Credentials(e)).report(),
                "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, run `aws sso login`, \
                 or check the instance/task role",
            ),
            Err(_) => Check::fail(
                "credentials",
                format!("no credentials within {:?}", self.timeout),
                "a provider of the chain hangs (often IMDS off EC2): set AWS_PROFILE or the \
                 AWS_* variables",
            ),
        };
        checks.push(check);
        None
    }

    /// (2b) The IAM principal behind the credentials, and the resource ARN its policy needs.
    async fn identity_step(
        &self,
        request: Option<&TokenRequest>,
        credentials: Option<&Credentials>,
    ) -> Check {
        let Some(credentials) = credentials else {
            return Check::skip("identity", "no credentials");
        };
        let region = request.map_or("us-east-1", |r| r.region().as_str());
        let call = sts::caller_identity(
            credentials,
            region,
            self.sts_endpoint.as_deref(),
            self.generator.clock().now(),
        );
        let identity = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(identity)) => identity,
            Ok(Err(why)) => {
                return Check::new(
                    "identity",
                    Status::Warn,
                    format!("STS GetCallerIdentity failed: {why}"),
                )
                .fix(
                    "the credentials may be revoked or for another partition; an \
                      egress-restricted network may block STS (set AWS_ENDPOINT_URL_STS to a \
                      VPC endpoint)",
                );
            }
            Err(_) => {
                return Check::new(
                    "identity",
                    Status::Warn,
                    format!("STS did not answer within {:?}", self.timeout),
                )
                .fix("set AWS_ENDPOINT_URL_STS to an STS VPC endpoint if STS is unreachable");
            }
        };
        let check = Check::pass("identity", format!("IAM principal {}", identity.arn));
        match request {
            Some(request) if is_dsql(request) => dsql_policy_details(check, request, &identity),
            Some(request) => rds_policy_details(check, request, &identity),
            None => check,
        }
    }

    /// (3) DNS, TCP and TLS to the dialled address, without sending a password. Returns what
    /// TLS saw when the handshake got that far.
    async fn network_steps(&self, checks: &mut Vec<Check>) -> Option<TlsProbe> {
        let (host, port) = self.settings.endpoint.dial_address();
        let addrs = match self.dns_step(host, port).await {
            Ok((check, addrs)) => {
                checks.push(check);
                addrs
            }
            Err(check) => {
                checks.push(check);
                checks.push(Check::skip("tcp", "no address"));
                checks.push(Check::skip("tls", "no address"));
                return None;
            }
        };
        let tcp = match self.tcp_step(&addrs).await {
            Ok((check, tcp)) => {
                checks.push(check);
                tcp
            }
            Err(check) => {
                checks.push(check);
                checks.push(Check::skip("tls", "no TCP connection"));
                return None;
            }
        };
        let probe = probe::probe(
            self.engine,
            tcp,
            &self.settings.endpoint,
            &self.settings.trust,
        );
        let (check, probe) = match tokio::time::timeout(self.timeout, probe).await {
            Ok(Ok(probe)) => (
                probe::check(&probe, &self.settings.endpoint, &self.settings.trust),
                Some(probe),
            ),
            Ok(Err(check)) => (check, None),
            Err(_) => (
                Check::fail(
                    "tls",
                    format!("no TLS handshake within {:?}", self.timeout),
                    "check that the port is the database's (not a load balancer's or another \
                     service's)",
                ),
                None,
            ),
        };
        checks.push(check);
        probe
    }

    async fn dns_step(&self, host: &str, port: u16) -> Result<(Check, Vec<SocketAddr>), Check> {
        let lookup = tokio::time::timeout(self.timeout, tokio::net::lookup_host((host, port)));
        match lookup.await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                let ips: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
                Ok((
                    Check::pass("dns", format!("{host} → {}", ips.join(", "))),
                    addrs,
                ))
            }
            Ok(Err(e)) => Err(Check::fail(
                "dns",
                format!("cannot resolve `{host}`: {e}"),
                "check the name for typos; a private endpoint resolves only inside its VPC \
                 (connect through a tunnel: --dial 127.0.0.1:PORT)",
            )),
            Err(_) => Err(Check::fail(
                "dns",
                format!("no DNS answer for `{host}` within {:?}", self.timeout),
                "check the resolver (/etc/resolv.conf, the VPC's DNS settings)",
            )),
        }
    }

    async fn tcp_step(
        &self,
        addrs: &[SocketAddr],
    ) -> Result<(Check, tokio::net::TcpStream), Check> {
        let mut last = String::from("no address");
        for addr in addrs {
            let started = Instant::now();
            let connect = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(addr));
            match connect.await {
                Ok(Ok(tcp)) => {
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    return Ok((
                        Check::pass("tcp", format!("connected to {addr} in {ms:.1} ms")),
                        tcp,
                    ));
                }
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => last = format!("{addr}: no answer within {:?}", self.timeout),
            }
        }
        Err(Check::fail(
            "tcp",
            format!("cannot connect: {last}"),
            "check the port, that the instance is available, security groups (inbound from \
             this address), routes, and the tunnel if there is one",
        ))
    }

    /// (4) A login with a freshly signed token, through the connector applications use.
    async fn login_step(&self, request: &TokenRequest, tls: Option<&TlsProbe>) -> Check {
        // A cache of its own: a fresh token, whatever the generator's clones hold.
        let cache = TokenCache::new(self.generator.clone());
        let result = match self.engine {
            Engine::Postgres => self.login::<crate::connector::Postgres>(cache).await,
            Engine::MySql => self.login::<crate::connector::MySql>(cache).await,
        };
        match result {
            Ok(()) => Check::pass(
                "login",
                format!(
                    "logged in as `{}` with a fresh token ({}, region {})",
                    self.settings.user,
                    self.engine,
                    request.region().as_str()
                ),
            ),
            Err(e) if e.is_rejected() => self.rejected(request, tls),
            Err(e) => Check::fail(
                "login",
                e.report(),
                "fix the first failed step above; the message says what the driver saw",
            ),
        }
    }

    /// A connector with the doctor's own login settings, each attempt bounded by the step
    /// timeout.
    async fn login<D: Driver>(&self, cache: TokenCache) -> crate::Result<()> {
        let mut builder = Connector::<D>::builder(cache, self.settings.endpoint.clone(), "");
        builder.settings = self.settings.clone();
        builder.settings.connect_timeout = Some(self.timeout);
        builder.build()?.connect().await.map(drop)
    }

    /// The server refused a freshly signed token: the causes, most likely first.
    fn rejected(&self, request: &TokenRequest, tls: Option<&TlsProbe>) -> Check {
        let user = &self.settings.user;
        let (host, port) = (request.host(), request.port());
        if is_dsql(request) {
            return rejected_check(user, tls, dsql_rejection_causes(request));
        }
        let mut causes = match self.engine {
            Engine::Postgres => vec![format!(
                "the user is not allowed IAM logins: `GRANT rds_iam TO \"{user}\";` (and it must \
                 exist: `CREATE USER \"{user}\";`)"
            )],
            Engine::MySql => vec![format!(
                "the user is not an IAM user: `CREATE USER '{user}' IDENTIFIED WITH \
                 AWSAuthenticationPlugin AS 'RDS';` (a password user rejects every token)"
            )],
        };
        causes.extend([
            "IAM database authentication is not enabled on the instance/cluster \
             (--enable-iam-database-authentication; it takes effect after the modification)"
                .to_owned(),
            "the principal's policy lacks rds-db:connect on this user's dbuser ARN (see \
             `identity` above), or the account/resource id/region in it is another database's"
                .to_owned(),
            format!(
                "the server is not {host}:{port}: a token is valid only for the endpoint name and \
                 port it was signed for (behind a CNAME, proxy or tunnel, sign for the RDS name \
                 and dial the other address with --dial)"
            ),
            format!(
                "the region is wrong: signed for {}; a Global Database writer endpoint needs the \
                 current primary's region",
                request.region().as_str()
            ),
            "the credentials were revoked, or an SCP or permissions boundary denies \
             rds-db:connect"
                .to_owned(),
            "this machine's clock is off by more than 5 minutes (tokens carry their signing time)"
                .to_owned(),
        ]);
        if self.engine == Engine::MySql {
            causes.push(
                "cannot be checked from the client: whether the server would switch this user to \
                 mysql_clear_password (it says so only after the user name is sent, and only to \
                 IAM users)"
                    .to_owned(),
            );
        }
        rejected_check(user, tls, causes)
    }

    /// The local clock against the server certificate's validity: a coarse bound on skew.
    fn clock_step(&self, tls: &TlsProbe) -> Option<Check> {
        let (from, until) = tls.validity?;
        let now = SystemTime::now();
        Some(if now < from || now > until {
            Check::new(
                "clock",
                Status::Warn,
                format!(
                    "this machine's clock ({}) is outside the server certificate's validity \
                     ({} to {})",
                    rfc3339(now),
                    rfc3339(from),
                    rfc3339(until)
                ),
            )
            .fix("check the clock (NTP, chrony); tokens signed with a skewed clock are rejected")
        } else {
            Check::pass(
                "clock",
                format!(
                    "this machine's clock ({}) is inside the server certificate's validity; a \
                     skew of minutes cannot be seen from the client",
                    rfc3339(now)
                ),
            )
        })
    }
}

impl DoctorBuilder {
    /// The token generator: its credentials provider and clock (default: the standard AWS
    /// chain, for the endpoint's region, and the system clock).
    pub fn generator(mut self, generator: TokenGenerator) -> Self {
        self.setup.generator = Some(generator);
        self
    }

    /// Where STS is (`http://127.0.0.1:PORT` for a test fake). Default:
    /// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else `https://sts.<region>.<domain>`.
    pub fn sts_endpoint(mut self, url: impl Into<String>) -> Self {
        self.setup.sts_endpoint = Some(url.into());
        self
    }

    /// The doctor. Never fails: settings that make no login are the `endpoint` step's
    /// finding.
    pub fn build(self) -> Doctor {
        let settings = self.settings;
        let generator = self.setup.generator.unwrap_or_else(|| {
            let region = settings
                .region
                .as_deref()
                .and_then(|r| crate::Region::new(r).ok())
                .or_else(|| settings.endpoint.inferred_region());
            TokenGenerator::new(crate::credentials::aws_config::LazyDefaultChain::new(
                region.as_ref(),
            ))
        });
        let sts_endpoint = self
            .setup
            .sts_endpoint
            .or_else(|| configured_sts_endpoint(|name| std::env::var(name).ok()));
        Doctor {
            engine: self.engine,
            timeout: settings.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            settings,
            generator,
            sts_endpoint,
        }
    }
}

fn is_dsql(request: &TokenRequest) -> bool {
    matches!(
        request.action(),
        Action::DsqlConnect | Action::DsqlConnectAdmin
    )
}

/// What the principal's policy must allow for an RDS token.
fn rds_policy_details(check: Check, request: &TokenRequest, identity: &sts::Identity) -> Check {
    let arn = crate::policy::RdsDbUserArn::new(
        request.region().as_str(),
        &identity.account,
        "*",
        request.user(),
    );
    let Ok(arn) = arn else { return check };
    check
        .detail(format!(
            "its policy must allow rds-db:connect on {arn} (narrow `*` to the DbiResourceId \
             `db-...` or DbClusterResourceId `cluster-...`)"
        ))
        .detail(
            "the resource id is in the console (Configuration tab) or `aws rds \
             describe-db-clusters --query 'DBClusters[].DbClusterResourceId'` (instances: \
             describe-db-instances, DbiResourceId)",
        )
}

/// What the principal's policy must allow for a DSQL token: the action the token asks for,
/// on the cluster.
fn dsql_policy_details(check: Check, request: &TokenRequest, identity: &sts::Identity) -> Check {
    let cluster = request.host().split('.').next().unwrap_or_default();
    let arn =
        crate::policy::DsqlClusterArn::new(request.region().as_str(), &identity.account, cluster)
            .map_or_else(
                |_| format!("the cluster `{}`", request.host()),
                |arn| arn.to_string(),
            );
    check.detail(format!(
        "its policy must allow dsql:{} on {arn}",
        request.action().name()
    ))
}

/// A DSQL server refused a freshly signed token: the causes, most likely first.
fn dsql_rejection_causes(request: &TokenRequest) -> Vec<String> {
    let user = request.user();
    let mut causes = Vec::new();
    if request.action() == Action::DsqlConnect {
        causes.push(format!(
            "the role `{user}` does not exist or is not linked to this IAM principal: as admin, \
             `CREATE ROLE {user} WITH LOGIN;` then `AWS IAM GRANT {user} TO '<principal ARN>';`"
        ));
    }
    causes.extend([
        format!(
            "the principal's policy lacks dsql:{} on this cluster (see `identity` above)",
            request.action().name()
        ),
        format!(
            "the token was signed for another cluster or region than the server's (signed for \
             {}, region {})",
            request.host(),
            request.region().as_str()
        ),
        "the credentials were revoked, or an SCP or permissions boundary denies it".to_owned(),
        "this machine's clock is off by more than 5 minutes (tokens carry their signing time)"
            .to_owned(),
    ]);
    causes
}

/// The `login` check of a rejected token, with `causes` numbered.
fn rejected_check(user: &str, tls: Option<&TlsProbe>, causes: Vec<String>) -> Check {
    let mut check = Check::fail(
        "login",
        format!("the server rejected a freshly signed token for `{user}`"),
        "work through the causes above in order; the server's log names the reason \
         (PostgreSQL: `PAM authentication failed`; RDS events for IAM DB auth errors)",
    );
    if let Some(tls) = tls {
        check = check.detail(format!(
            "TLS was fine ({}): the token reached the server",
            tls.protocol
        ));
    }
    for (i, cause) in causes.into_iter().enumerate() {
        check = check.detail(format!("{}. {cause}", i + 1));
    }
    check
}

/// The STS endpoint the AWS configuration names: `AWS_ENDPOINT_URL_STS`, else
/// `AWS_ENDPOINT_URL`, unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is `true` (as the SDKs do).
fn configured_sts_endpoint(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let ignore = var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if ignore {
        return None;
    }
    ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|name| var(name).filter(|v| !v.is_empty()))
}

/// The name of the provider that produced `credentials` (`EnvironmentVariable`, `Profile`,
/// `WebIdentityToken`, `ECS`, `IMDSv2`...). aws-credential-types 1.3 has no getter for it; its
/// `Debug` starts with it (and redacts the secret key and omits the session token).
fn provider_name(credentials: &Credentials) -> String {
    let debug = format!("{credentials:?}");
    debug
        .split_once("provider_name: \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or_else(
            || "the credentials provider".to_owned(),
            |(name, _)| name.to_owned(),
        )
}

/// `AKIA…WXYZ`: enough to tell keys apart, not enough to use one.
fn mask(access_key_id: &str) -> String {
    let chars: Vec<char> = access_key_id.chars().collect();
    if chars.len() <= 8 {
        return "****".to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

fn describe_expiry(at: SystemTime, now: SystemTime) -> String {
    match at.duration_since(now) {
        Ok(left) => format!("expires {} (in {} min)", rfc3339(at), left.as_secs() / 60),
        Err(_) => format!("EXPIRED at {}", rfc3339(at)),
    }
}

/// `at` as RFC 3339 (`2026-12-03T10:00:00Z`), whole seconds; a time `time` cannot represent
/// (before year -9999 or after 9999, as a provider's expiry may say) as `SystemTime`'s `Debug`.
/// Never panics, as `OffsetDateTime::from(SystemTime)` would out of range.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    use time::format_description::well_known::Rfc3339;
    let seconds = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).ok(),
        Err(before) => i64::try_from(before.duration().as_secs()).ok().map(|s| -s),
    };
    seconds
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{at:?}"))
}

/// `text` with every control character escaped (`\u{1b}`, `\n`): what a terminal or a log
/// line can show without obeying it.
pub(crate) fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_access_key_ids() {
        assert_eq!(mask("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(mask("short"), "****");
    }

    #[test]
    fn names_the_provider_without_the_secret() {
        let credentials = Credentials::new("AKIDEXAMPLE", "s3cr3t", None, None, "Profile");
        assert_eq!(provider_name(&credentials), "Profile");
    }

    #[test]
    fn configured_endpoint_urls_can_be_ignored() {
        fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
            move |name| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        }
        let both = [
            ("AWS_ENDPOINT_URL", "https://all.example"),
            ("AWS_ENDPOINT_URL_STS", "https://sts.example"),
        ];
        assert_eq!(
            configured_sts_endpoint(vars(&both)).as_deref(),
            Some("https://sts.example")
        );
        let general = [("AWS_ENDPOINT_URL", "https://all.example")];
        assert_eq!(
            configured_sts_endpoint(vars(&general)).as_deref(),
            Some("https://all.example")
        );
        let ignored = [
            ("AWS_ENDPOINT_URL_STS", "https://sts.example"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ];
        assert_eq!(configured_sts_endpoint(vars(&ignored)), None);
    }

    #[test]
    fn dates_past_year_9999_do_not_panic() {
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert!(rfc3339(far).contains("SystemTime"), "{}", rfc3339(far));
        assert!(describe_expiry(far, SystemTime::now()).starts_with("expires "));
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_705_322_096);
        assert_eq!(rfc3339(t), "2024-01-15T12:34:56Z");
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(rfc3339(before), "1969-12-31T00:00:00Z");
    }

    #[test]
    fn server_text_cannot_forge_lines_or_colours() {
        let forged = "denied\x1b[32m\n\u{2713} tls: certificate verified\r";
        let check = Check::fail("tls", format!("the server says: {forged}"), "none")
            .detail(forged)
            .fix(forged);
        let shown = check.to_string();
        assert!(
            !shown.contains('\x1b') && !shown.contains('\r'),
            "{shown:?}"
        );
        assert_eq!(
            shown.lines().count(),
            3,
            "message, one detail, the fix: {shown:?}"
        );
        assert!(shown.contains("\\u{1b}[32m\\n"), "{shown:?}");
    }

    #[test]
    fn a_check_reads_as_one_line_then_details() {
        let check = Check::fail("tcp", "cannot connect", "open the port").detail("10.0.0.1");
        assert_eq!(
            check.to_string(),
            "✗ tcp: cannot connect\n    10.0.0.1\n    fix: open the port"
        );
    }
}
