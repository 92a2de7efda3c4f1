//! Credentials from the process environment, without aws-config.
//!
//! An AWS Lambda function finds its execution role's credentials in `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, the first provider of the standard
//! chain. A function built without the `aws-config` feature links none of the chain's
//! other providers (profiles, SSO, web identity, ECS, IMDS, with their HTTPS client):
//! a smaller binary, and in a cold start a smaller peak memory, since the kernel maps a
//! binary's pages around every page it touches (see the README's "Lambda cold start").
//!
//! Read the way aws-config's `EnvironmentVariableCredentialsProvider` reads them (same
//! names, same fallback `SECRET_ACCESS_KEY`, blank values treated as unset), at every
//! resolution: the generator remembers them like any provider's.

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, future};

/// The provider name the credentials carry (aws-config's is "Environment" too).
const PROVIDER_NAME: &str = "Environment";

/// The environment's credentials; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct EnvVarCredentials;

impl ProvideCredentials for EnvVarCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(from_vars(|name| std::env::var(name).ok()))
    }
}

/// The credentials `var` (the process environment, or a map in tests) holds.
fn from_vars(var: impl Fn(&str) -> Option<String>) -> provider::Result {
    let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    let access_key_id = set("AWS_ACCESS_KEY_ID").ok_or_else(|| not_set("AWS_ACCESS_KEY_ID"))?;
    let secret_access_key = set("AWS_SECRET_ACCESS_KEY")
        .or_else(|| set("SECRET_ACCESS_KEY"))
        .ok_or_else(|| not_set("AWS_SECRET_ACCESS_KEY"))?;
    let session_token = set("AWS_SESSION_TOKEN").map(|token| token.trim().to_owned());
    Ok(Credentials::new(
        access_key_id,
        secret_access_key,
        session_token,
        None,
        PROVIDER_NAME,
    ))
}

/// "Not loaded": the chain's word for "this provider has nothing", naming the variable
/// (never a value).
fn not_set(name: &str) -> CredentialsError {
    CredentialsError::not_loaded(format!("environment variable not set: {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(vars: &[(&str, &str)]) -> provider::Result {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn keys_and_an_optional_session_token() {
        let c = resolve(&[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ])
        .unwrap();
        assert_eq!(c.access_key_id(), "AKIDEXAMPLE");
        assert_eq!(c.secret_access_key(), "secret");
        assert_eq!(c.session_token(), None);
        assert_eq!(c.expiry(), None);

        let c = resolve(&[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("SECRET_ACCESS_KEY", "fallback"),
            ("AWS_SESSION_TOKEN", " session \n"),
        ])
        .unwrap();
        assert_eq!(c.secret_access_key(), "fallback");
        assert_eq!(c.session_token(), Some("session"));
    }

    #[test]
    fn missing_or_blank_keys_are_not_loaded_and_named_without_values() {
        for vars in [
            &[("AWS_SECRET_ACCESS_KEY", "s3cr3t")][..],
            &[
                ("AWS_ACCESS_KEY_ID", "  "),
                ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ],
            &[("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")],
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", ""),
            ],
        ] {
            let e = resolve(vars).unwrap_err();
            assert!(
                matches!(e, CredentialsError::CredentialsNotLoaded(_)),
                "{e:?}"
            );
            let text = format!("{e:?} {}", aws_smithy_error_chain(&e));
            assert!(
                text.contains("environment variable not set: AWS_"),
                "{text}"
            );
            assert!(!text.contains("s3cr3t"), "{text}");
        }
    }

    fn aws_smithy_error_chain(e: &(dyn std::error::Error + 'static)) -> String {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    }
}
