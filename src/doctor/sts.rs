//! STS `GetCallerIdentity`: which IAM principal the credentials belong to.
//!
//! One SigV4-signed POST, made here rather than with aws-sdk-sts: the doctor needs one call
//! and two fields of its XML answer. Signed with aws-sigv4's `http_request` signer, sent with
//! hyper (both already in the tree for aws-config), over TLS verified against the AWS roots
//! (STS presents Amazon Trust Services certificates), or plain HTTP for a local fake.

use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// The most of an STS answer read (its answers are well under 2 KB): an endpoint that streams
/// without end cannot grow the doctor's memory.
const MAX_ANSWER: usize = 64 * 1024;

/// The principal, as STS names it.
#[derive(Debug)]
pub(super) struct Identity {
    /// `arn:aws:sts::123456789012:assumed-role/Role/session` or `arn:aws:iam::...:user/name`.
    pub(super) arn: String,
    pub(super) account: String,
}

/// Calls STS at `endpoint` (default: the region's STS) with `credentials`, signed at `now`.
/// The error is a sentence for the report (never holding a secret: STS's own message).
pub(super) async fn caller_identity(
    credentials: &Credentials,
    region: &str,
    endpoint: Option<&str>,
    now: SystemTime,
) -> Result<Identity, String> {
    let url = endpoint.map_or_else(|| default_endpoint(region), str::to_owned);
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("invalid STS endpoint `{url}`: {e}"))?;
    refuse_plain_http(&uri)?;
    let request = signed_request(&uri, credentials, region, now)?;
    let (status, body) = send(&uri, request).await?;
    let text = String::from_utf8_lossy(&body);
    if status != 200 {
        let code = xml_field(&text, "Code").unwrap_or("no error code");
        let message = xml_field(&text, "Message").unwrap_or("");
        return Err(format!("HTTP {status} from {url}: {code} {message}"));
    }
    match (xml_field(&text, "Arn"), xml_field(&text, "Account")) {
        (Some(arn), Some(account)) => Ok(Identity {
            arn: arn.to_owned(),
            account: account.to_owned(),
        }),
        _ => Err(format!("no <Arn> in the answer from {url}")),
    }
}

/// The signed request holds the session token: it goes in clear to a loopback address only
/// (a local fake or a proxy on this machine), never across a network.
fn refuse_plain_http(uri: &http::Uri) -> Result<(), String> {
    if uri.scheme_str() != Some("http") {
        return Ok(());
    }
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return Ok(());
    }
    Err(format!(
        "not called: the STS endpoint `{uri}` is plain http, and the signed request (with the \
         session token) would cross the network unencrypted; use https"
    ))
}

fn default_endpoint(region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://sts.{region}.{domain}/")
}

fn signed_request(
    uri: &http::Uri,
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
) -> Result<http::Request<Full<Bytes>>, String> {
    let host = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    // Origin form (`POST / HTTP/1.1`) on the wire: the connection goes to the host itself.
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = http::Request::post(path)
        .header("host", host)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(BODY.as_bytes())))
        .map_err(|e| e.to_string())?;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or_default()));
    let signable = SignableRequest::new(
        "POST",
        uri.to_string(),
        headers,
        SignableBody::Bytes(BODY.as_bytes()),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("cannot sign the STS request: {e}"))?
        .into_parts();
    instructions.apply_to_request_http1x(&mut request);
    Ok(request)
}

async fn send(
    uri: &http::Uri,
    request: http::Request<Full<Bytes>>,
) -> Result<(u16, Bytes), String> {
    let host = uri.host().ok_or("the STS endpoint has no host")?.to_owned();
    let https = uri.scheme_str() != Some("http");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    if !https {
        return exchange(tcp, request).await;
    }
    let name = rustls_pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
    let config = crate::tls::client_config(&crate::tls::TrustStore::aws_default());
    let tls = tokio_rustls::TlsConnector::from(Arc::clone(&config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS to {host} failed: {e}"))?;
    exchange(tls, request).await
}

async fn exchange(
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    request: http::Request<Full<Bytes>>,
) -> Result<(u16, Bytes), String> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    let connection = tokio::spawn(connection);
    let response = sender.send_request(request).await;
    let result = async {
        let response = response.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    connection.abort();
    result
}

/// The text of the first `<name>...</name>` (STS's answers are flat and unescaped where it
/// matters: ARNs and account ids hold no `<` or `&`).
fn xml_field<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..start + len].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_arn_and_account() {
        let xml = "<GetCallerIdentityResponse><GetCallerIdentityResult>\
                   <Arn>arn:aws:iam::123456789012:user/alice</Arn><UserId>AID</UserId>\
                   <Account>123456789012</Account></GetCallerIdentityResult>\
                   </GetCallerIdentityResponse>";
        assert_eq!(
            xml_field(xml, "Arn"),
            Some("arn:aws:iam::123456789012:user/alice")
        );
        assert_eq!(xml_field(xml, "Account"), Some("123456789012"));
        assert_eq!(xml_field(xml, "Code"), None);
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "https://sts.us-east-1.amazonaws.com/",
            "http://127.0.0.1:4566/",
            "http://localhost:4566/",
            "http://[::1]:4566/",
        ] {
            assert!(refuse_plain_http(&ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in ["http://sts.internal.example.com/", "http://10.0.0.5/"] {
            let why = refuse_plain_http(&bad.parse().unwrap()).unwrap_err();
            assert!(why.contains("unencrypted"), "{why}");
        }
    }

    #[test]
    fn china_regions_have_their_own_domain() {
        assert_eq!(
            default_endpoint("cn-north-1"),
            "https://sts.cn-north-1.amazonaws.com.cn/"
        );
    }
}
