//! The PostgreSQL side of the proxy: the client's start-up packets answered locally, the
//! login upstream (TLS, the client's StartupMessage, the token as the cleartext password),
//! then a byte relay. Cancel requests go over TLS to the address their session went to.
//!
//! postgres-protocol encodes the frontend messages sent upstream; it has no parser for a
//! client's start-up packets and its backend parser refuses NegotiateProtocolVersion and
//! 3.2's longer cancel keys, so those few messages are framed here by hand, bounded as
//! PostgreSQL bounds them, and tested byte by byte.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use zeroize::Zeroize;

use super::listener::Listener;
use super::{CancelKey, ClientIo, Shared, escaped, upstream};
use crate::error::{Error, ErrorKind, ServerCode};
use crate::login::Login;
use crate::login::wire::ServerError;
use crate::token::IamAuthToken;

/// PostgreSQL's own bound on a start-up packet (`MAX_STARTUP_PACKET_LENGTH`).
pub(crate) const MAX_STARTUP_PACKET: u32 = 10_000;
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;
/// Protocol 3.x: the major version in the high 16 bits.
const PROTOCOL_3: u32 = 3 << 16;
/// The longest cancel key protocol 3.2 allows.
const MAX_CANCEL_KEY: usize = 256;
/// The longest message the server may send before ReadyForQuery (ParameterStatus, notices,
/// errors are far smaller): a bound, so that no upstream can make the proxy buffer without end.
const MAX_LOGIN_MESSAGE: usize = 1 << 20;
/// The first byte of a TLS record carrying a handshake: a ClientHello of `sslnegotiation=direct`.
const TLS_HANDSHAKE: u8 = 0x16;

/// One of the packets a client may open with.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Packet {
    SslRequest,
    GssEncRequest,
    /// The whole packet, forwarded as it came (its key may be longer than 4 bytes).
    Cancel {
        process_id: u32,
        key: Vec<u8>,
        raw: Vec<u8>,
    },
    Startup {
        version: u32,
        params: Vec<(String, String)>,
    },
}

/// Why a client's first packets are refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BadPacket {
    /// A TLS ClientHello instead of a packet (`sslnegotiation=direct`).
    DirectTls,
    TooShort(u32),
    TooLong(u32),
    UnsupportedProtocol(u32),
    Malformed(&'static str),
}

impl fmt::Display for BadPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadPacket::DirectTls => f.write_str(
                "the client opened with a TLS ClientHello (sslnegotiation=direct), which the \
                 proxy does not accept: connect with sslnegotiation=postgres (the default)",
            ),
            BadPacket::TooShort(n) => write!(f, "a start-up packet of {n} bytes is too short"),
            BadPacket::TooLong(n) => write!(
                f,
                "a start-up packet of {n} bytes is over PostgreSQL's bound of {MAX_STARTUP_PACKET}"
            ),
            BadPacket::UnsupportedProtocol(v) => write!(
                f,
                "unsupported frontend protocol {}.{}: the proxy speaks 3.x",
                v >> 16,
                v & 0xffff
            ),
            BadPacket::Malformed(what) => write!(f, "malformed start-up packet: {what}"),
        }
    }
}

/// The length a start-up packet's first 4 bytes announce (itself included), checked.
pub(crate) fn packet_length(header: [u8; 4]) -> Result<u32, BadPacket> {
    if header[0] == TLS_HANDSHAKE {
        return Err(BadPacket::DirectTls);
    }
    let length = u32::from_be_bytes(header);
    if length < 8 {
        return Err(BadPacket::TooShort(length));
    }
    if length > MAX_STARTUP_PACKET {
        return Err(BadPacket::TooLong(length));
    }
    Ok(length)
}

/// Parses one whole start-up packet (its length included).
pub(crate) fn parse_packet(packet: &[u8]) -> Result<Packet, BadPacket> {
    let header: [u8; 4] = packet
        .get(..4)
        .and_then(|h| h.try_into().ok())
        .ok_or(BadPacket::Malformed("truncated"))?;
    if packet_length(header)? as usize != packet.len() {
        return Err(BadPacket::Malformed("the length does not match"));
    }
    let code = u32::from_be_bytes(packet[4..8].try_into().expect("8 bytes at least"));
    let body = &packet[8..];
    match code {
        SSL_REQUEST | GSSENC_REQUEST if !body.is_empty() => {
            Err(BadPacket::Malformed("an encryption request has no body"))
        }
        SSL_REQUEST => Ok(Packet::SslRequest),
        GSSENC_REQUEST => Ok(Packet::GssEncRequest),
        CANCEL_REQUEST => {
            if body.len() < 8 || body.len() > 4 + MAX_CANCEL_KEY {
                return Err(BadPacket::Malformed("a cancel key of a wrong length"));
            }
            Ok(Packet::Cancel {
                process_id: u32::from_be_bytes(body[..4].try_into().expect("4 bytes")),
                key: body[4..].to_vec(),
                raw: packet.to_vec(),
            })
        }
        version if version >> 16 == PROTOCOL_3 >> 16 => Ok(Packet::Startup {
            version,
            params: parse_params(body)?,
        }),
        other => Err(BadPacket::UnsupportedProtocol(other)),
    }
}

/// `name\0value\0` pairs, then a final `\0`, nothing after.
fn parse_params(mut body: &[u8]) -> Result<Vec<(String, String)>, BadPacket> {
    let mut params = Vec::new();
    loop {
        let name = cstr(&mut body)?;
        if name.is_empty() {
            return if body.is_empty() {
                Ok(params)
            } else {
                Err(BadPacket::Malformed("bytes after the parameters"))
            };
        }
        let value = cstr(&mut body)?;
        params.push((name, value));
    }
}

fn cstr(body: &mut &[u8]) -> Result<String, BadPacket> {
    let end = body
        .iter()
        .position(|&b| b == 0)
        .ok_or(BadPacket::Malformed("a parameter without its NUL"))?;
    let text = std::str::from_utf8(&body[..end])
        .map_err(|_| BadPacket::Malformed("a parameter that is not UTF-8"))?
        .to_owned();
    *body = &body[end + 1..];
    Ok(text)
}

/// Reads one start-up packet from the client, bounded before it is read.
pub(crate) async fn read_packet(
    client: &mut (impl AsyncRead + Unpin),
) -> io::Result<Result<Packet, BadPacket>> {
    let mut header = [0u8; 4];
    client.read_exact(&mut header).await?;
    let length = match packet_length(header) {
        Ok(length) => length as usize,
        Err(bad) => return Ok(Err(bad)),
    };
    let mut packet = vec![0u8; length];
    packet[..4].copy_from_slice(&header);
    client.read_exact(&mut packet[4..]).await?;
    Ok(parse_packet(&packet))
}

/// A StartupMessage with `version` and `params`.
pub(crate) fn startup_message(version: u32, params: &[(String, String)]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0];
    out.extend_from_slice(&version.to_be_bytes());
    for (name, value) in params {
        for text in [name, value] {
            out.extend_from_slice(text.as_bytes());
            out.push(0);
        }
    }
    out.push(0);
    let length = out.len() as u32;
    out[..4].copy_from_slice(&length.to_be_bytes());
    out
}

/// A FATAL ErrorResponse (what the server itself would send), fields escaped of NULs.
pub(crate) fn error_response(code: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, text) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', code),
        (b'M', message),
    ] {
        body.push(field);
        body.extend(text.bytes().filter(|&b| b != 0));
        body.push(0);
    }
    body.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The fields of an ErrorResponse's body: SQLSTATE (`C`) and message (`M`).
fn error_fields(body: &[u8]) -> (String, String) {
    let (mut code, mut message) = (String::new(), String::new());
    for field in body.split(|&b| b == 0) {
        match field.split_first() {
            Some((b'C', text)) => code = String::from_utf8_lossy(text).into_owned(),
            Some((b'M', text)) => message = String::from_utf8_lossy(text).into_owned(),
            _ => {}
        }
    }
    (code, message)
}

/// What went wrong with an upstream login, other than the server's own ErrorResponse.
#[derive(Debug)]
enum WireError {
    /// Also the words the login layer's diagnosis recognizes as "no TLS".
    NoTls,
    /// Bytes after the server's `S`, before the handshake (CVE-2021-23222).
    BytesAfterTlsYes,
    UnexpectedTlsAnswer(u8),
    NotIamUser {
        method: &'static str,
        user: String,
    },
    Protocol(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::NoTls => f.write_str("server does not support TLS"),
            WireError::BytesAfterTlsYes => f.write_str(
                "the server sent bytes after agreeing to TLS and before the handshake (someone \
                 on the path injecting data, CVE-2021-23222): refused, no token was sent",
            ),
            WireError::UnexpectedTlsAnswer(byte) => write!(
                f,
                "the server answered the TLS request with {:?}, not `S` or `N`: is this port \
                 PostgreSQL's?",
                char::from(*byte)
            ),
            WireError::NotIamUser { method, user } => write!(
                f,
                "the server asked for {method} authentication, not a cleartext password: \
                 `{}` is not an IAM user there (PostgreSQL: `GRANT rds_iam TO \"{}\"`), or \
                 this is not an RDS endpoint; no token was sent",
                escaped(user),
                escaped(user)
            ),
            WireError::Protocol(what) => write!(f, "unexpected answer from the server: {what}"),
        }
    }
}

impl std::error::Error for WireError {}

/// An upstream connection that is logged in, and what the server sent the client-to-be up
/// to its first ReadyForQuery.
struct Upstream {
    stream: TlsStream<TcpStream>,
    addr: SocketAddr,
    to_client: Vec<u8>,
    key: Option<CancelKey>,
}

/// Reads one backend message (tag, length, body) into a buffer of its own.
async fn read_message(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).await?;
    let length = u32::from_be_bytes(header[1..].try_into().expect("4 bytes")) as usize;
    if !(4..=MAX_LOGIN_MESSAGE).contains(&length) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a server message of an impossible length during the login",
        ));
    }
    let mut message = vec![0u8; 1 + length];
    message[..5].copy_from_slice(&header);
    stream.read_exact(&mut message[5..]).await?;
    Ok(message)
}

/// TCP, then the SSLRequest, then TLS verified against the signing name.
async fn open_tls(login: &Login, tcp: TcpStream) -> Result<TlsStream<TcpStream>, Error> {
    let mut tcp = tcp;
    let mut request = BytesMut::new();
    frontend::ssl_request(&mut request);
    tcp.write_all(&request)
        .await
        .map_err(|e| upstream::failed(login, e))?;
    // Read more than the one byte expected: anything after `S` is injected.
    let mut answer = [0u8; 64];
    let n = tcp
        .read(&mut answer)
        .await
        .map_err(|e| upstream::failed(login, e))?;
    match (n, answer[0]) {
        (0, _) => Err(upstream::failed(
            login,
            io::Error::from(io::ErrorKind::UnexpectedEof),
        )),
        (1, b'S') => upstream::tls(login, tcp).await,
        (_, b'S') => Err(upstream::failed(login, WireError::BytesAfterTlsYes)),
        (_, b'N') => Err(upstream::failed(login, WireError::NoTls)),
        (_, other) => Err(upstream::failed(
            login,
            WireError::UnexpectedTlsAnswer(other),
        )),
    }
}

/// One login attempt with `token`: TLS, the client's StartupMessage, the token when the
/// server asks for the cleartext password, then everything up to ReadyForQuery.
async fn attempt(
    login: &Login,
    dead_peer: std::time::Duration,
    version: u32,
    params: &[(String, String)],
    token: IamAuthToken,
) -> Result<Upstream, Error> {
    let (tcp, addr) = upstream::dial(login, dead_peer).await?;
    let mut stream = open_tls(login, tcp).await?;
    let io = |e: io::Error| upstream::failed(login, e);
    stream
        .write_all(&startup_message(version, params))
        .await
        .map_err(io)?;
    let mut to_client = Vec::new();
    let mut authenticated = false;
    let mut password_sent = false;
    let mut key = None;
    loop {
        let message = read_message(&mut stream).await.map_err(io)?;
        let body = &message[5..];
        match (message[0], authenticated) {
            (b'R', false) => {
                let code = body
                    .get(..4)
                    .map(|c| u32::from_be_bytes(c.try_into().expect("4")));
                match code {
                    Some(0) => {
                        authenticated = true;
                        // The client's AuthenticationOk: the same bytes the server sent.
                        to_client.extend_from_slice(&message);
                    }
                    Some(3) if !password_sent => {
                        let mut buf = BytesMut::new();
                        frontend::password_message(token.expose().as_bytes(), &mut buf)
                            .map_err(io)?;
                        let written = stream.write_all(&buf).await;
                        buf[..].zeroize();
                        written.map_err(io)?;
                        password_sent = true;
                    }
                    Some(5) | Some(10) | Some(7) | Some(9) => {
                        let method = match code {
                            Some(5) => "MD5 password",
                            Some(10) => "SCRAM (SASL)",
                            _ => "GSSAPI/SSPI",
                        };
                        return Err(upstream::failed(
                            login,
                            WireError::NotIamUser {
                                method,
                                user: login.request.user().to_owned(),
                            },
                        ));
                    }
                    _ => {
                        return Err(upstream::failed(
                            login,
                            WireError::Protocol("an authentication request of an unknown kind"),
                        ));
                    }
                }
            }
            // NegotiateProtocolVersion (a 3.2 client, a 3.0 server) and notices: the client's.
            (b'v' | b'N', _) => to_client.extend_from_slice(&message),
            (b'E', _) => {
                let (code, text) = error_fields(body);
                // A refused password before authentication is the token's rejection; an error
                // after it (a database that does not exist) is not.
                let rejected = !authenticated && (code == "28P01" || code == "28000");
                let server = ServerError {
                    code: ServerCode::SqlState(code),
                    message: text,
                };
                return Err(login.driver_error(server, rejected));
            }
            (b'K', true) if body.len() >= 8 && body.len() <= 4 + MAX_CANCEL_KEY => {
                let pid = u32::from_be_bytes(body[..4].try_into().expect("4 bytes"));
                key = Some((pid, body[4..].to_vec()));
                to_client.extend_from_slice(&message);
            }
            (b'Z', true) => {
                to_client.extend_from_slice(&message);
                return Ok(Upstream {
                    stream,
                    addr,
                    to_client,
                    key,
                });
            }
            (_, true) => to_client.extend_from_slice(&message),
            (_, false) => {
                return Err(upstream::failed(
                    login,
                    WireError::Protocol("a message before the authentication was done"),
                ));
            }
        }
    }
}

/// The start-up phase, answered locally: encryption requests get `N` (or `S` and a TLS
/// handshake with local TLS), a cancel is forwarded, a StartupMessage ends it.
async fn negotiate(
    shared: &Shared,
    mut client: Box<dyn ClientIo>,
    peer: &str,
) -> io::Result<Option<(Box<dyn ClientIo>, u32, Vec<(String, String)>)>> {
    let mut encrypted = false;
    loop {
        match read_packet(&mut client).await? {
            Ok(Packet::SslRequest) => match &shared.tls {
                Some(tls) if !encrypted => {
                    client.write_all(b"S").await?;
                    client = Box::new(tls.acceptor().accept(client).await?);
                    encrypted = true;
                }
                _ => client.write_all(b"N").await?,
            },
            Ok(Packet::GssEncRequest) => client.write_all(b"N").await?,
            Ok(Packet::Cancel {
                process_id,
                key,
                raw,
            }) => {
                forward_cancel(shared, (process_id, key), &raw, peer).await;
                return Ok(None);
            }
            Ok(Packet::Startup { version, params }) => return Ok(Some((client, version, params))),
            Err(BadPacket::DirectTls) => {
                // A ClientHello cannot be answered with an ErrorResponse: log and close.
                tracing::warn!(client = %peer, "{}", BadPacket::DirectTls);
                return Ok(None);
            }
            Err(bad) => {
                tracing::info!(client = %peer, "refused: {bad}");
                let _ = client
                    .write_all(&error_response("08P01", &bad.to_string()))
                    .await;
                return Ok(None);
            }
        }
    }
}

/// Serves one client connection from its first byte to its last.
pub(super) async fn session(shared: Arc<Shared>, client: Box<dyn ClientIo>, peer: String) {
    let negotiated =
        tokio::time::timeout(shared.connect_timeout(), negotiate(&shared, client, &peer)).await;
    let (mut client, version, mut params) = match negotiated {
        Ok(Ok(Some(startup))) => startup,
        Ok(Ok(None)) => return,
        Ok(Err(error)) => {
            tracing::debug!(client = %peer, %error, "the client left during the start-up");
            return;
        }
        Err(_) => {
            tracing::info!(client = %peer, "the client sent no start-up packet in time");
            return;
        }
    };
    let asked = params
        .iter()
        .find(|(name, _)| name == "user")
        .map(|(_, user)| user.clone());
    let user = match (&shared.pinned_user, asked) {
        (Some(pinned), Some(asked)) if *pinned != asked => {
            let message = format!(
                "this proxy logs in as `{}` only: connect with user={}",
                escaped(pinned),
                escaped(pinned)
            );
            tracing::info!(client = %peer, user = %escaped(&asked), "refused: {message}");
            let _ = client.write_all(&error_response("28000", &message)).await;
            return;
        }
        (Some(pinned), _) => pinned.clone(),
        (None, Some(asked)) => asked,
        (None, None) => {
            let _ = client
                .write_all(&error_response(
                    "28000",
                    "no user name in the start-up packet",
                ))
                .await;
            return;
        }
    };
    let login = match shared.login_for(&user) {
        Ok(login) => login,
        Err(error) => {
            tracing::info!(client = %peer, user = %escaped(&user), error = %error, "refused");
            let _ = client
                .write_all(&error_response("28000", &error.to_string()))
                .await;
            return;
        }
    };
    // The user signed for, and the database: the client's, else the configured default.
    params.retain(|(name, _)| name != "user");
    params.insert(0, ("user".to_owned(), user.clone()));
    if !params.iter().any(|(name, _)| name == "database")
        && let Some(database) = &login.database
    {
        params.push(("database".to_owned(), database.clone()));
    }
    let database = params
        .iter()
        .find(|(name, _)| name == "database")
        .map_or(user.as_str(), |(_, db)| db.as_str())
        .to_owned();

    let started = Instant::now();
    let dead_peer = shared.dead_peer_timeout();
    let result = login
        .run(&shared.cache, |token| {
            attempt(&login, dead_peer, version, &params, token)
        })
        .await;
    let mut upstream = match result {
        Ok(upstream) => upstream,
        Err(error) => {
            tracing::warn!(
                client = %peer,
                user = %escaped(&user),
                database = %escaped(&database),
                error = %error.report(),
                "upstream login failed"
            );
            let code = client_code(&error);
            let message = (shared.hooks.rephrase)(&format!("rds-iam-auth proxy: {error}"));
            let _ = client.write_all(&error_response(&code, &message)).await;
            if let Some(hook) = &shared.hooks.on_login_failure {
                hook(&super::FailedLogin {
                    user: &user,
                    database: &database,
                    client: &peer,
                    error: &error,
                });
            }
            return;
        }
    };
    tracing::info!(
        client = %peer,
        user = %escaped(&user),
        database = %escaped(&database),
        upstream = %upstream.addr,
        login_ms = started.elapsed().as_millis() as u64,
        "proxied connection logged in"
    );
    if client.write_all(&upstream.to_client).await.is_err() {
        return;
    }
    let _registered = upstream
        .key
        .take()
        .map(|key| Registered::new(&shared, key, upstream.addr, login.clone()));
    match tokio::io::copy_bidirectional(&mut client, &mut upstream.stream).await {
        Ok((sent, received)) => tracing::debug!(
            client = %peer,
            bytes_to_server = sent,
            bytes_to_client = received,
            "proxied connection closed"
        ),
        Err(error) => tracing::debug!(client = %peer, %error, "proxied connection ended"),
    }
}

/// The SQLSTATE a client gets for a failed upstream login: the server's when it gave one.
fn client_code(error: &Error) -> String {
    if let Some(code) = error.sqlstate() {
        return code.to_owned();
    }
    match error.kind() {
        ErrorKind::Rejected => "28P01",
        ErrorKind::InvalidInput => "28000",
        _ if error.to_string().contains("is not an IAM user") => "28000",
        // sqlclient_unable_to_establish_sqlconnection
        _ => "08001",
    }
    .to_owned()
}

/// A session's cancel key, known while the session lasts.
struct Registered {
    shared: Arc<Shared>,
    key: CancelKey,
}

impl Registered {
    fn new(shared: &Arc<Shared>, key: CancelKey, addr: SocketAddr, login: Arc<Login>) -> Self {
        shared
            .sessions
            .lock()
            .expect("not poisoned")
            .insert(key.clone(), (addr, login));
        Self {
            shared: shared.clone(),
            key,
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared
            .sessions
            .lock()
            .expect("not poisoned")
            .remove(&self.key);
    }
}

/// Forwards a CancelRequest to the upstream of the session it names, over TLS (with
/// `rds.force_ssl` a plaintext cancel is refused), to the address that session went to. A
/// key no session of this proxy has is dropped: nobody is cancelled through the proxy but
/// its own sessions.
async fn forward_cancel(shared: &Shared, key: CancelKey, raw: &[u8], peer: &str) {
    let Some((addr, login)) = shared
        .sessions
        .lock()
        .expect("not poisoned")
        .get(&key)
        .cloned()
    else {
        tracing::info!(client = %peer, "a cancel request for no session of this proxy: dropped");
        return;
    };
    let cancel = async {
        let tcp = upstream::dial_exactly(addr, shared.dead_peer_timeout())
            .await
            .map_err(|e| upstream::failed(&login, e))?;
        let mut tls = open_tls(&login, tcp).await?;
        tls.write_all(raw)
            .await
            .map_err(|e| upstream::failed(&login, e))?;
        tls.shutdown()
            .await
            .map_err(|e| upstream::failed(&login, e))?;
        Ok::<_, Error>(())
    };
    match tokio::time::timeout(shared.connect_timeout(), cancel).await {
        Ok(Ok(())) => {
            tracing::info!(client = %peer, upstream = %addr, "cancel request forwarded");
        }
        Ok(Err(error)) => {
            tracing::warn!(client = %peer, error = %error.report(), "forwarding a cancel failed");
        }
        Err(_) => tracing::warn!(client = %peer, "forwarding a cancel timed out"),
    }
}

/// Answers a client over the connection limit with PostgreSQL's own "too many connections".
pub(super) async fn refuse_over_limit(mut client: Box<dyn ClientIo>, peer: String, limit: usize) {
    tracing::warn!(client = %peer, limit, "refused: the proxy's connection limit is reached");
    // Answer the encryption requests first: libpq reads a one-byte answer to those.
    let answered = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match read_packet(&mut client).await {
                Ok(Ok(Packet::SslRequest | Packet::GssEncRequest)) => {
                    client.write_all(b"N").await?;
                }
                _ => return Ok::<_, io::Error>(()),
            }
        }
    })
    .await;
    if matches!(answered, Ok(Ok(()))) {
        let message = format!("the proxy serves at most {limit} connections at once");
        let _ = client.write_all(&error_response("53300", &message)).await;
    }
}

/// Ready-to-paste ways to reach `listener`.
pub(super) fn connection_strings(
    listener: &Listener,
    user: &str,
    database: &str,
    tls: bool,
) -> Vec<String> {
    let sslmode = if tls { "require" } else { "disable" };
    if let Some(path) = listener.socket_path() {
        let dir = path
            .parent()
            .map_or_else(String::new, |d| d.display().to_string());
        let port = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.rsplit('.').next())
            .unwrap_or("5432");
        return vec![format!(
            "psql \"host={dir} port={port} user={user} dbname={database}\""
        )];
    }
    let Some(addr) = listener.local_addr() else {
        return Vec::new();
    };
    let host = match addr {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    };
    let port = addr.port();
    vec![
        format!(
            "psql \"host={} port={port} user={user} dbname={database} sslmode={sslmode}\"",
            addr.ip()
        ),
        format!("postgresql://{user}@{host}:{port}/{database}?sslmode={sslmode}"),
        format!("jdbc:postgresql://{host}:{port}/{database}?user={user}&sslmode={sslmode}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: u32, body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&code.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// Reads `bytes` one byte per read, as a slow client would send them.
    async fn read_slowly(bytes: &[u8]) -> io::Result<Result<Packet, BadPacket>> {
        let (mut client, mut proxy) = tokio::io::duplex(1);
        let bytes = bytes.to_vec();
        let writer = tokio::spawn(async move {
            for byte in bytes {
                if client.write_all(&[byte]).await.is_err() {
                    break;
                }
            }
        });
        let read = read_packet(&mut proxy).await;
        drop(proxy);
        writer.await.unwrap();
        read
    }

    #[tokio::test]
    async fn protocol_3_0_and_3_2_startups_read_byte_by_byte() {
        for version in [196_608, 196_610] {
            let expected = params(&[("user", "iam_user"), ("database", "appdb"), ("options", "")]);
            let bytes = startup_message(version, &expected);
            // The exact layout libpq sends: length, version, pairs, a final NUL.
            assert_eq!(&bytes[4..8], &version.to_be_bytes());
            assert_eq!(*bytes.last().unwrap(), 0);
            assert_eq!(
                bytes.len() as u32,
                u32::from_be_bytes(bytes[..4].try_into().unwrap())
            );
            let read = read_slowly(&bytes).await.unwrap().unwrap();
            assert_eq!(
                read,
                Packet::Startup {
                    version,
                    params: expected
                }
            );
        }
    }

    #[tokio::test]
    async fn encryption_requests_and_cancels() {
        let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        assert_eq!(read_slowly(&ssl).await.unwrap(), Ok(Packet::SslRequest));
        let gss = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
        assert_eq!(read_slowly(&gss).await.unwrap(), Ok(Packet::GssEncRequest));
        // Protocol 3.0: a 4-byte key; 3.2: up to 256 bytes.
        for key in [vec![1, 2, 3, 4], vec![7u8; 32], vec![9u8; 256]] {
            let mut body = 4242u32.to_be_bytes().to_vec();
            body.extend_from_slice(&key);
            let raw = packet(CANCEL_REQUEST, &body);
            assert_eq!(
                read_slowly(&raw).await.unwrap(),
                Ok(Packet::Cancel {
                    process_id: 4242,
                    key: key.clone(),
                    raw: raw.clone()
                })
            );
        }
        let mut body = 1u32.to_be_bytes().to_vec();
        body.extend_from_slice(&[0u8; 257]);
        assert!(matches!(
            parse_packet(&packet(CANCEL_REQUEST, &body)),
            Err(BadPacket::Malformed(_))
        ));
        assert!(matches!(
            parse_packet(&packet(CANCEL_REQUEST, &[0, 0, 0, 1])),
            Err(BadPacket::Malformed(_))
        ));
        // An SSLRequest with a body is not an SSLRequest.
        assert!(parse_packet(&packet(SSL_REQUEST, &[0])).is_err());
    }

    #[tokio::test]
    async fn a_tls_client_hello_is_recognized_before_anything_is_read() {
        // A TLS 1.2/1.3 ClientHello record header: handshake, version 3.1, length.
        let hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];
        assert_eq!(
            read_slowly(&hello).await.unwrap(),
            Err(BadPacket::DirectTls)
        );
        assert!(
            BadPacket::DirectTls
                .to_string()
                .contains("sslnegotiation=postgres")
        );
    }

    #[tokio::test]
    async fn the_length_is_bounded_before_the_packet_is_read() {
        assert_eq!(packet_length(10_000u32.to_be_bytes()), Ok(10_000));
        assert_eq!(
            packet_length(10_001u32.to_be_bytes()),
            Err(BadPacket::TooLong(10_001))
        );
        assert_eq!(
            packet_length(7u32.to_be_bytes()),
            Err(BadPacket::TooShort(7))
        );
        // Only the header was read: a 2 GB announcement allocates nothing.
        let huge = read_slowly(&0x7fff_ffffu32.to_be_bytes()).await.unwrap();
        assert_eq!(huge, Err(BadPacket::TooLong(0x7fff_ffff)));
        // A whole 10,000-byte startup is accepted, 10,001 is not.
        let startup = |filler: usize| {
            let options = "x".repeat(filler);
            startup_message(PROTOCOL_3, &params(&[("user", "a"), ("options", &options)]))
        };
        // 8 (length, version) + "user\0a\0" + "options\0" + the value's NUL + the final NUL.
        let at_bound = startup(10_000 - 25);
        assert_eq!(at_bound.len(), 10_000);
        assert!(read_slowly(&at_bound).await.unwrap().is_ok());
        let over = startup(10_000 - 24);
        assert_eq!(
            read_slowly(&over).await.unwrap(),
            Err(BadPacket::TooLong(10_001))
        );
    }

    #[test]
    fn malformed_parameters_are_refused() {
        let bad = |body: &[u8]| parse_packet(&packet(PROTOCOL_3, body));
        assert!(
            matches!(bad(b"user\0a\0"), Err(BadPacket::Malformed(_))),
            "no final NUL"
        );
        assert!(matches!(bad(b"user\0a"), Err(BadPacket::Malformed(_))));
        assert!(matches!(bad(b"user\0a\0\0x"), Err(BadPacket::Malformed(_))));
        assert!(matches!(
            bad(b"us\xffer\0a\0\0"),
            Err(BadPacket::Malformed(_))
        ));
        assert_eq!(
            bad(b"\0"),
            Ok(Packet::Startup {
                version: PROTOCOL_3,
                params: vec![]
            })
        );
        // Protocol 2.0 and unknown codes.
        assert_eq!(
            parse_packet(&packet(2 << 16, b"\0")),
            Err(BadPacket::UnsupportedProtocol(2 << 16))
        );
        // A length that lies about the packet.
        let mut lying = packet(PROTOCOL_3, b"\0");
        lying[3] += 1;
        assert!(parse_packet(&lying).is_err());
    }

    #[test]
    fn error_responses_carry_code_and_message_without_nuls() {
        let e = error_response("28000", "no\0pe");
        assert_eq!(e[0], b'E');
        assert_eq!(
            u32::from_be_bytes(e[1..5].try_into().unwrap()) as usize,
            e.len() - 1
        );
        let (code, message) = error_fields(&e[5..]);
        assert_eq!((code.as_str(), message.as_str()), ("28000", "nope"));
    }
}
