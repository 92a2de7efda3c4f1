//! AWS regions and the partitions they belong to.

use std::fmt;
use std::str::FromStr;

use crate::error::{Detail, Error, Result};

/// A syntactically valid AWS region name, such as `us-east-1`.
///
/// Validation is by shape (`<area>-<direction...>-<number>`), not against a list, so that
/// regions launched after this crate was released work without an upgrade.
///
/// ```
/// use rds_iam_auth::Region;
///
/// let region: Region = "eu-west-1".parse()?;
/// assert_eq!(region.as_str(), "eu-west-1");
/// assert!("us_east_1".parse::<Region>().is_err());
/// # Ok::<(), rds_iam_auth::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(String);

impl Region {
    /// Validates `name` as a region name.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        if is_region_name(&name) {
            Ok(Self(name))
        } else {
            Err(Detail::InvalidRegion { region: name }.into())
        }
    }

    /// The region name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The partition the region belongs to.
    pub fn partition(&self) -> Partition {
        Partition::of(&self.0)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Region {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl AsRef<str> for Region {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An AWS partition: the first field of every ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Partition {
    /// Commercial regions (`aws`).
    Aws,
    /// China regions (`aws-cn`).
    AwsCn,
    /// GovCloud (US) regions (`aws-us-gov`).
    AwsUsGov,
    /// US ISO regions (`aws-iso`).
    AwsIso,
    /// US ISOB regions (`aws-iso-b`).
    AwsIsoB,
    /// European Sovereign Cloud regions (`aws-eusc`).
    AwsEusc,
    /// ISO-E regions (`aws-iso-e`, `eu-isoe-*`).
    AwsIsoE,
    /// ISO-F regions (`aws-iso-f`, `us-isof-*`).
    AwsIsoF,
}

impl Partition {
    /// The partition of a region name, from the region prefixes in botocore's
    /// `partitions.json` (`regionRegex`); any other name is a commercial region.
    fn of(region: &str) -> Self {
        const PREFIXES: &[(&str, Partition)] = &[
            ("cn-", Partition::AwsCn),
            ("us-gov-", Partition::AwsUsGov),
            ("us-iso-", Partition::AwsIso),
            ("us-isob-", Partition::AwsIsoB),
            ("eu-isoe-", Partition::AwsIsoE),
            ("us-isof-", Partition::AwsIsoF),
            ("eusc-", Partition::AwsEusc),
        ];
        PREFIXES
            .iter()
            .find(|(prefix, _)| region.starts_with(prefix))
            .map_or(Self::Aws, |&(_, partition)| partition)
    }

    /// The partition's name as it appears in ARNs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::AwsCn => "aws-cn",
            Self::AwsUsGov => "aws-us-gov",
            Self::AwsIso => "aws-iso",
            Self::AwsIsoB => "aws-iso-b",
            Self::AwsEusc => "aws-eusc",
            Self::AwsIsoE => "aws-iso-e",
            Self::AwsIsoF => "aws-iso-f",
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `true` for names shaped like `us-east-1`, `us-gov-west-1`, `ap-southeast-5`, `eusc-de-east-1`:
/// a 2-4 letter area, one or more lowercase words, then a 1-2 digit number.
pub(crate) fn is_region_name(name: &str) -> bool {
    let mut parts = name.split('-');
    let Some(area) = parts.next() else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    let Some((number, words)) = rest.split_last() else {
        return false;
    };
    let is_word = |w: &&str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase());
    (2..=4).contains(&area.len())
        && is_word(&area)
        && !words.is_empty()
        && words.iter().all(is_word)
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-5",
            "us-gov-west-1",
            "cn-northwest-1",
            "il-central-1",
            "us-isob-east-1",
            "eusc-de-east-1",
        ] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "useast1",
            "us_east_1",
            "US-EAST-1",
            "us-east-123",
            "us--1",
            "-us-east-1",
            "us-east-1-",
            "u-east-1",
            "us-east-1 ",
        ] {
            assert!(!is_region_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn partitions() {
        let p = |r: &str| Region::new(r).unwrap().partition().as_str();
        assert_eq!(p("us-east-1"), "aws");
        assert_eq!(p("cn-north-1"), "aws-cn");
        assert_eq!(p("us-gov-east-1"), "aws-us-gov");
        assert_eq!(p("us-iso-east-1"), "aws-iso");
        assert_eq!(p("us-isob-east-1"), "aws-iso-b");
        assert_eq!(p("eusc-de-east-1"), "aws-eusc");
        assert_eq!(p("eu-isoe-west-1"), "aws-iso-e");
        assert_eq!(p("us-isof-south-1"), "aws-iso-f");
        assert_eq!(p("eu-west-1"), "aws");
    }
}
