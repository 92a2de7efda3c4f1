//! IAM policy helpers: the resource ARNs and `connect` policy documents that let a role
//! log in to a database with IAM auth.
//!
//! ```
//! use rds_iam_auth::policy::{RdsDbUserArn, rds_connect_policy};
//!
//! let arn = RdsDbUserArn::new("us-east-1", "123456789012", "cluster-ABCDEFGHIJKL0123456789", "iam_user")?;
//! assert_eq!(
//!     arn.to_string(),
//!     "arn:aws:rds-db:us-east-1:123456789012:dbuser:cluster-ABCDEFGHIJKL0123456789/iam_user"
//! );
//! let policy = rds_connect_policy(&[arn]);
//! assert!(policy.contains(r#""Action": "rds-db:connect""#));
//! # Ok::<(), rds_iam_auth::Error>(())
//! ```

use std::fmt::{self, Write as _};

use crate::error::{Detail, Result};
use crate::region::{Partition, Region};
use crate::token::MAX_USER_LEN;

/// The ARN of a database user for `rds-db:connect`:
/// `arn:<partition>:rds-db:<region>:<account-id>:dbuser:<DbiResourceId>/<db-user>`.
///
/// The resource id is the instance's `DbiResourceId` (`db-...`), the cluster's
/// `DbClusterResourceId` (`cluster-...`) or the proxy's id (`prx-...`), not its name.
/// Region, account, resource id and user may each be `*`; the user may also end in `*`.
/// A `*` region is taken to be in the `aws` partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdsDbUserArn {
    partition: Partition,
    region: String,
    account_id: String,
    resource_id: String,
    db_user: String,
}

impl RdsDbUserArn {
    /// Validates the parts and builds the ARN.
    pub fn new(region: &str, account_id: &str, resource_id: &str, db_user: &str) -> Result<Self> {
        let partition = region_partition(region)?;
        validate_account(account_id)?;
        validate_resource_id(resource_id)?;
        if db_user.is_empty()
            || db_user.len() > MAX_USER_LEN
            || db_user.chars().any(char::is_control)
        {
            return Err(Detail::InvalidUser {
                reason: format!(
                    "an ARN needs a user name of 1 to {MAX_USER_LEN} bytes without control characters"
                ),
            }.into());
        }
        Ok(Self {
            partition,
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            resource_id: resource_id.to_owned(),
            db_user: db_user.to_owned(),
        })
    }
}

impl fmt::Display for RdsDbUserArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:rds-db:{}:{}:dbuser:{}/{}",
            self.partition, self.region, self.account_id, self.resource_id, self.db_user
        )
    }
}

/// The ARN of an Aurora DSQL cluster: `arn:<partition>:dsql:<region>:<account-id>:cluster/<cluster-id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsqlClusterArn {
    partition: Partition,
    region: String,
    account_id: String,
    cluster_id: String,
}

impl DsqlClusterArn {
    /// Validates the parts and builds the ARN. Region, account and cluster id may be `*`.
    pub fn new(region: &str, account_id: &str, cluster_id: &str) -> Result<Self> {
        let partition = region_partition(region)?;
        validate_account(account_id)?;
        validate_resource_id(cluster_id)?;
        Ok(Self {
            partition,
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            cluster_id: cluster_id.to_owned(),
        })
    }
}

impl fmt::Display for DsqlClusterArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:dsql:{}:{}:cluster/{}",
            self.partition, self.region, self.account_id, self.cluster_id
        )
    }
}

/// An IAM policy document allowing `rds-db:connect` to the given database users.
pub fn rds_connect_policy(resources: &[RdsDbUserArn]) -> String {
    policy_document("rds-db:connect", resources)
}

/// An IAM policy document allowing `dsql:DbConnectAdmin` (for `admin`) or
/// `dsql:DbConnect` (for custom roles) on the given clusters.
pub fn dsql_connect_policy(resources: &[DsqlClusterArn], admin: bool) -> String {
    let action = if admin {
        "dsql:DbConnectAdmin"
    } else {
        "dsql:DbConnect"
    };
    policy_document(action, resources)
}

fn policy_document<T: fmt::Display>(action: &str, resources: &[T]) -> String {
    let mut out = String::from("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n");
    let _ = writeln!(out, "      \"Effect\": \"Allow\",");
    let _ = writeln!(out, "      \"Action\": {},", json_string(action));
    out.push_str("      \"Resource\": [");
    for (i, r) in resources.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        let _ = write!(out, "        {}", json_string(&r.to_string()));
    }
    out.push_str(if resources.is_empty() {
        "]\n"
    } else {
        "\n      ]\n"
    });
    out.push_str("    }\n  ]\n}\n");
    out
}

/// A JSON string literal (user names may hold `"` or `\`).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn region_partition(region: &str) -> Result<Partition> {
    if region == "*" {
        Ok(Partition::Aws)
    } else {
        Ok(Region::new(region)?.partition())
    }
}

fn validate_account(account_id: &str) -> Result<()> {
    let ok = account_id == "*"
        || (account_id.len() == 12 && account_id.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(Detail::InvalidPolicyInput {
            field: "account id",
            reason: "expected 12 digits (or `*`)",
        }
        .into())
    }
}

fn validate_resource_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*');
    if ok {
        Ok(())
    } else {
        Err(Detail::InvalidPolicyInput {
            field: "resource id",
            reason: "expected the resource id (`db-...`, `cluster-...`, `prx-...` or a DSQL cluster id), not a name or ARN",
        }.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_aware_arns() {
        let arn = |r| {
            RdsDbUserArn::new(r, "123456789012", "db-ABC", "u")
                .unwrap()
                .to_string()
        };
        assert_eq!(
            arn("cn-north-1"),
            "arn:aws-cn:rds-db:cn-north-1:123456789012:dbuser:db-ABC/u"
        );
        assert_eq!(
            arn("us-gov-west-1"),
            "arn:aws-us-gov:rds-db:us-gov-west-1:123456789012:dbuser:db-ABC/u"
        );
        assert_eq!(arn("*"), "arn:aws:rds-db:*:123456789012:dbuser:db-ABC/u");
        // Every partition whose regions the hostname inference knows, and the ISO ones.
        for (region, partition) in [
            ("us-east-1", "aws"),
            ("cn-northwest-1", "aws-cn"),
            ("eusc-de-east-1", "aws-eusc"),
            ("us-iso-east-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
            ("eu-isoe-west-1", "aws-iso-e"),
            ("us-isof-south-1", "aws-iso-f"),
        ] {
            assert_eq!(
                arn(region),
                format!("arn:{partition}:rds-db:{region}:123456789012:dbuser:db-ABC/u")
            );
            let dsql = DsqlClusterArn::new(region, "123456789012", "abc").unwrap();
            assert_eq!(
                dsql.to_string(),
                format!("arn:{partition}:dsql:{region}:123456789012:cluster/abc")
            );
        }
        let dsql = DsqlClusterArn::new("us-gov-east-1", "123456789012", "abc123").unwrap();
        assert_eq!(
            dsql.to_string(),
            "arn:aws-us-gov:dsql:us-gov-east-1:123456789012:cluster/abc123"
        );
    }

    #[test]
    fn wildcards_where_aws_allows_them() {
        let arn = RdsDbUserArn::new("us-east-1", "*", "*", "*").unwrap();
        assert_eq!(arn.to_string(), "arn:aws:rds-db:us-east-1:*:dbuser:*/*");
    }

    #[test]
    fn bad_parts_are_typed_errors() {
        assert!(matches!(
            RdsDbUserArn::new("us-east-1", "1234", "db-A", "u")
                .as_ref()
                .map_err(crate::Error::detail),
            Err(&Detail::InvalidPolicyInput {
                field: "account id",
                ..
            })
        ));
        assert!(matches!(
            RdsDbUserArn::new("us-east-1", "123456789012", "my cluster", "u")
                .as_ref()
                .map_err(crate::Error::detail),
            Err(&Detail::InvalidPolicyInput {
                field: "resource id",
                ..
            })
        ));
        assert!(RdsDbUserArn::new("nowhere", "123456789012", "db-A", "u").is_err());
        assert!(RdsDbUserArn::new("us-east-1", "123456789012", "db-A", "").is_err());
    }

    #[test]
    fn policy_document_is_valid_json_with_escaped_users() {
        let arns = [
            RdsDbUserArn::new("us-east-1", "123456789012", "db-A", "a\"b\\c").unwrap(),
            RdsDbUserArn::new("us-east-1", "123456789012", "db-A", "ro_*").unwrap(),
        ];
        let doc: serde_json::Value = serde_json::from_str(&rds_connect_policy(&arns)).unwrap();
        assert_eq!(doc["Version"], "2012-10-17");
        assert_eq!(doc["Statement"][0]["Action"], "rds-db:connect");
        assert_eq!(
            doc["Statement"][0]["Resource"][0],
            "arn:aws:rds-db:us-east-1:123456789012:dbuser:db-A/a\"b\\c"
        );
        let dsql = [DsqlClusterArn::new("us-east-1", "123456789012", "abc").unwrap()];
        let doc: serde_json::Value =
            serde_json::from_str(&dsql_connect_policy(&dsql, true)).unwrap();
        assert_eq!(doc["Statement"][0]["Action"], "dsql:DbConnectAdmin");
        let empty: serde_json::Value = serde_json::from_str(&rds_connect_policy(&[])).unwrap();
        assert_eq!(empty["Statement"][0]["Resource"], serde_json::json!([]));
    }
}
