//! The same token through aws-sigv4's general presigning path: the oracle that the crate's
//! fast path is checked against (tests) and measured against (benches).

use std::time::SystemTime;

use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rds_iam_auth::token::Action;
use rds_iam_auth::{Credentials, TokenRequest};

const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// The token for `request`, signed by `aws_sigv4::http_request::sign`.
pub fn token(credentials: &Credentials, request: &TokenRequest, at: SystemTime) -> String {
    let rds = request.action() == Action::RdsConnect;
    let authority = if rds {
        format!("{}:{}", request.host(), request.port())
    } else {
        request.host().to_owned()
    };
    let mut query = format!("Action={}", request.action().name());
    if rds {
        query.push_str("&DBUser=");
        query.push_str(&enc(request.user()));
    }
    let url = format!("https://{authority}/?{query}");
    // botocore signs the lowercased host, without HTTPS's default port.
    let mut host = request.host().to_ascii_lowercase();
    if rds && request.port() != 443 {
        host = format!("{host}:{}", request.port());
    }

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(request.expires_in());
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(request.region().as_str())
        .name(request.action().service())
        .time(at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "GET",
        url,
        std::iter::once(("host", host.as_str())),
        SignableBody::Bytes(&[]),
    )
    .unwrap();
    let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();

    // aws-sigv4 gives raw values in its own order; botocore puts the signature last.
    let mut out = format!("{authority}/?{query}");
    let mut signature = None;
    for (name, value) in instructions.params() {
        if *name == "X-Amz-Signature" {
            signature = Some(value.to_string());
            continue;
        }
        out.push_str(&format!("&{name}={}", enc(value)));
    }
    out.push_str(&format!("&X-Amz-Signature={}", signature.unwrap()));
    out
}
