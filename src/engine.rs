//! The database engines a login is for.

use std::fmt;

/// The database engine a connection or a diagnosis is for, as errors and spans name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Engine {
    /// PostgreSQL, Aurora PostgreSQL, Aurora DSQL.
    Postgres,
    /// MySQL, Aurora MySQL, MariaDB.
    MySql,
}

impl Engine {
    /// The port the engine listens on unless configured otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::MySql => 3306,
        }
    }

    /// OpenTelemetry's `db.system.name` for the engine.
    #[cfg_attr(not(feature = "__login"), allow(dead_code))]
    pub(crate) fn otel_system_name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgresql",
            Engine::MySql => "mysql",
        }
    }

    /// How a database user is allowed to log in with IAM tokens on this engine (RDS docs).
    pub(crate) fn iam_user_setup(self, user: &str) -> String {
        match self {
            Engine::Postgres => format!("PostgreSQL: `GRANT rds_iam TO \"{user}\"`"),
            Engine::MySql => format!(
                "MySQL: `CREATE USER '{user}' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'`"
            ),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Postgres => "PostgreSQL",
            Engine::MySql => "MySQL",
        })
    }
}
