//! botocore reference vectors: `tests/data/botocore-vectors.json`, made by
//! `scripts/gen-token-vectors.py` (provenance in `tests/data/README.md`).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rds_iam_auth::{Credentials, Endpoint, TokenRequest};
use serde_json::Value;

/// One botocore-made token and its inputs.
#[derive(Debug, Clone)]
pub struct Vector {
    pub name: String,
    pub service: String,
    pub action: String,
    pub hostname: String,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub region: String,
    /// The region the hostname carries (what inference must find), if any.
    pub host_region: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub time_utc: String,
    pub unix_time: u64,
    pub expires_in: u64,
    pub expected_token: String,
}

impl Vector {
    pub fn credentials(&self) -> Credentials {
        Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "vectors",
        )
    }

    pub fn signing_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.unix_time)
    }

    pub fn is_dsql(&self) -> bool {
        self.service == "dsql"
    }

    /// The user to log in as: DSQL vectors carry no user, their action names the role.
    pub fn user(&self) -> &str {
        match (self.username.as_deref(), self.action.as_str()) {
            (Some(u), _) => u,
            (None, "DbConnectAdmin") => "admin",
            (None, _) => "app_role",
        }
    }

    pub fn request(&self) -> TokenRequest {
        let endpoint = Endpoint::new(&self.hostname, self.port.unwrap_or(5432)).unwrap();
        let builder = if self.is_dsql() {
            TokenRequest::dsql(&endpoint, self.user())
        } else {
            TokenRequest::rds(&endpoint, self.user())
        };
        builder
            .region(&self.region)
            .expires_in(Duration::from_secs(self.expires_in))
            .build()
            .unwrap()
    }
}

pub fn load(path: &Path) -> Vec<Vector> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().map(str::to_owned);
            Vector {
                name: s("name").unwrap(),
                service: s("service").unwrap(),
                action: s("action").unwrap(),
                hostname: s("hostname").unwrap(),
                port: v["port"].as_u64().map(|p| p as u16),
                username: s("username"),
                region: s("region").unwrap(),
                host_region: s("host_region"),
                access_key_id: s("access_key_id").unwrap(),
                secret_access_key: s("secret_access_key").unwrap(),
                session_token: s("session_token"),
                time_utc: s("time_utc").unwrap(),
                unix_time: v["unix_time"].as_u64().unwrap(),
                expires_in: v["expires_in"].as_u64().unwrap(),
                expected_token: s("expected_token").unwrap(),
            }
        })
        .collect()
}

/// Every vector, from the file in the repository.
pub fn all() -> Vec<Vector> {
    load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/botocore-vectors.json"))
}
