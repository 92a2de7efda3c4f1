//! The MySQL / MariaDB side of the proxy: the upstream's greeting mirrored to the client
//! (server version, connection id, capabilities, MariaDB's extended ones), the client's
//! handshake response read (its password ignored; inside local TLS after an SSLRequest when
//! the proxy offers it), the login upstream inside TLS with `mysql_clear_password`, an OK to
//! the client, then a byte relay.
//!
//! Hand-written rather than with mysql_common: its `HandshakeResponse` fixes the collation
//! (the client's must be kept) and it has no server-side OK writer; what is framed here is
//! two packets each way, bounded and tested byte by byte.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use zeroize::Zeroize;

use super::{ClientIo, Shared, escaped, upstream};
use crate::error::{Error, ErrorKind, ServerCode};
use crate::login::Login;
use crate::login::wire::ServerError;
use crate::token::IamAuthToken;

/// `CLIENT_LONG_PASSWORD`, which MariaDB leaves unset (it is MariaDB's "CLIENT_MYSQL" bit:
/// unset, the greeting's last filler bytes carry the extended capabilities).
const CLIENT_MYSQL: u32 = 1;
const CLIENT_CONNECT_WITH_DB: u32 = 1 << 3;
const CLIENT_COMPRESS: u32 = 1 << 5;
const CLIENT_LOCAL_FILES: u32 = 1 << 7;
const CLIENT_PROTOCOL_41: u32 = 1 << 9;
const CLIENT_SSL: u32 = 1 << 11;
const CLIENT_SECURE_CONNECTION: u32 = 1 << 15;
const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
const CLIENT_CONNECT_ATTRS: u32 = 1 << 20;
/// Without it the auth data has a 1-byte length: a 1.5 KB token is cut at 255 bytes.
const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
const CLIENT_ZSTD_COMPRESSION: u32 = 1 << 26;
/// The flags the auth phase needs, whatever the client asked for.
const FORCED: u32 = CLIENT_SSL
    | CLIENT_PROTOCOL_41
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;
/// The longest packet read before the relay starts (greetings, responses and errors are
/// far smaller; connection attributes are bounded by the server at 64 KB).
const MAX_HANDSHAKE_PACKET: usize = 1 << 16;
const MAX_PACKET_SIZE: u32 = 1 << 24;
const CLEAR_PASSWORD: &str = "mysql_clear_password";

/// The server's Initial Handshake v10, with where its capability bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Greeting {
    payload: Vec<u8>,
    caps_low: usize,
    caps_high: usize,
    /// Where MariaDB's extended capabilities are (`None`: MySQL).
    ext_caps: Option<usize>,
    pub(crate) version: String,
    pub(crate) connection_id: u32,
}

fn u32_le(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes.try_into().expect("4 bytes"))
}

impl Greeting {
    pub(crate) fn parse(payload: &[u8]) -> Result<Self, &'static str> {
        if payload.first() != Some(&10) {
            return Err("not a protocol 10 greeting");
        }
        let nul = payload[1..]
            .iter()
            .position(|&b| b == 0)
            .ok_or("no end to the server version")?;
        let version = String::from_utf8_lossy(&payload[1..1 + nul]).into_owned();
        let at = 1 + nul + 1;
        // id (4), scramble part 1 (8), filler (1), caps low (2), charset (1), status (2),
        // caps high (2), auth data length (1), reserved (10: MariaDB's last 4 = extended caps).
        if payload.len() < at + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10 {
            return Err("a greeting too short for protocol 4.1");
        }
        let connection_id = u32_le(&payload[at..at + 4]);
        let caps_low = at + 13;
        let caps_high = caps_low + 5;
        let mut greeting = Self {
            payload: payload.to_vec(),
            caps_low,
            caps_high,
            ext_caps: None,
            version,
            connection_id,
        };
        if greeting.caps() & CLIENT_MYSQL == 0 {
            greeting.ext_caps = Some(caps_high + 2 + 1 + 6);
        }
        if greeting.caps() & CLIENT_PROTOCOL_41 == 0 {
            return Err("a server without protocol 4.1");
        }
        Ok(greeting)
    }

    pub(crate) fn caps(&self) -> u32 {
        let low =
            u16::from_le_bytes([self.payload[self.caps_low], self.payload[self.caps_low + 1]]);
        let high = u16::from_le_bytes([
            self.payload[self.caps_high],
            self.payload[self.caps_high + 1],
        ]);
        u32::from(low) | (u32::from(high) << 16)
    }

    pub(crate) fn ext_caps(&self) -> Option<u32> {
        self.ext_caps.map(|at| u32_le(&self.payload[at..at + 4]))
    }

    /// The greeting the client gets: the same bytes, with the capabilities the proxy does not
    /// pass through taken out (compression: the relay would have to understand it; `LOAD
    /// DATA LOCAL` unless allowed) and TLS offered only with local TLS (the server's TLS is
    /// the upstream leg's, not this one's).
    pub(crate) fn for_client(&self, allow_local_infile: bool, local_tls: bool) -> Vec<u8> {
        let mut caps = self.caps() & !(CLIENT_SSL | CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION);
        if !allow_local_infile {
            caps &= !CLIENT_LOCAL_FILES;
        }
        if local_tls {
            caps |= CLIENT_SSL;
        }
        let mut payload = self.payload.clone();
        payload[self.caps_low..self.caps_low + 2].copy_from_slice(&(caps as u16).to_le_bytes());
        payload[self.caps_high..self.caps_high + 2]
            .copy_from_slice(&((caps >> 16) as u16).to_le_bytes());
        payload
    }
}

/// What the client answered the greeting with (its password is never kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) caps: u32,
    pub(crate) charset: u8,
    /// MariaDB's extended capabilities (the last 4 bytes of the filler).
    pub(crate) ext_caps: u32,
    pub(crate) user: String,
    pub(crate) database: Option<String>,
    /// The connection attributes as sent (length-encoded), forwarded unchanged.
    pub(crate) attributes: Option<Vec<u8>>,
}

/// A length-encoded integer at the start of `bytes`, and its size.
fn lenenc(bytes: &[u8]) -> Option<(u64, usize)> {
    Some(match *bytes.first()? {
        n @ 0..=0xfa => (u64::from(n), 1),
        0xfc => (
            u64::from(u16::from_le_bytes(bytes.get(1..3)?.try_into().ok()?)),
            3,
        ),
        0xfd => {
            let b = bytes.get(1..4)?;
            (
                u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16,
                4,
            )
        }
        0xfe => (u64::from_le_bytes(bytes.get(1..9)?.try_into().ok()?), 9),
        _ => return None,
    })
}

fn put_lenenc(out: &mut Vec<u8>, n: usize) {
    match n {
        0..=0xfa => out.push(n as u8),
        0xfb..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u64).to_le_bytes());
        }
    }
}

fn take_cstr<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let end = bytes.iter().position(|&b| b == 0)?;
    let text = &bytes[..end];
    *bytes = &bytes[end + 1..];
    Some(text)
}

impl Response {
    pub(crate) fn parse(payload: &[u8]) -> Result<Self, &'static str> {
        if payload.len() < 32 {
            return Err("a handshake response too short for protocol 4.1");
        }
        let caps = u32_le(&payload[..4]);
        if caps & CLIENT_PROTOCOL_41 == 0 {
            return Err("a client without protocol 4.1");
        }
        let charset = payload[8];
        let ext_caps = u32_le(&payload[28..32]);
        let mut rest = &payload[32..];
        let user = take_cstr(&mut rest).ok_or("no end to the user name")?;
        let user = std::str::from_utf8(user)
            .map_err(|_| "a user name that is not UTF-8")?
            .to_owned();
        // The password: skipped, whatever its form.
        if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            let (n, size) = lenenc(rest).ok_or("a bad auth data length")?;
            rest = rest
                .get(size + n as usize..)
                .ok_or("auth data past the packet")?;
        } else if caps & CLIENT_SECURE_CONNECTION != 0 {
            let n = *rest.first().ok_or("no auth data length")? as usize;
            rest = rest.get(1 + n..).ok_or("auth data past the packet")?;
        } else {
            take_cstr(&mut rest).ok_or("no end to the auth data")?;
        }
        let mut database = None;
        if caps & CLIENT_CONNECT_WITH_DB != 0 && !rest.is_empty() {
            let db = take_cstr(&mut rest).ok_or("no end to the database name")?;
            database = Some(
                std::str::from_utf8(db)
                    .map_err(|_| "a database name that is not UTF-8")?
                    .to_owned(),
            );
        }
        if caps & CLIENT_PLUGIN_AUTH != 0 && !rest.is_empty() {
            take_cstr(&mut rest).ok_or("no end to the plugin name")?;
        }
        let mut attributes = None;
        if caps & CLIENT_CONNECT_ATTRS != 0 && !rest.is_empty() {
            let (n, size) = lenenc(rest).ok_or("a bad attributes length")?;
            let all = rest
                .get(..size + n as usize)
                .ok_or("attributes past the packet")?;
            attributes = Some(all.to_vec());
        }
        Ok(Self {
            caps,
            charset,
            ext_caps,
            user,
            database: database.filter(|d| !d.is_empty()),
            attributes,
        })
    }
}

/// The capabilities sent upstream: those both sides have, the auth phase's forced on, and
/// none the relay cannot carry.
pub(crate) fn upstream_caps(client: u32, server: u32, database: bool, local_infile: bool) -> u32 {
    let mut caps = (client & server) | FORCED;
    caps &= !(CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION);
    if !local_infile {
        caps &= !CLIENT_LOCAL_FILES;
    }
    if database {
        caps |= CLIENT_CONNECT_WITH_DB;
    } else {
        caps &= !CLIENT_CONNECT_WITH_DB;
    }
    caps
}

/// The 32 bytes both the SSLRequest and the HandshakeResponse41 start with.
fn response_head(caps: u32, charset: u8, ext_caps: Option<u32>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&caps.to_le_bytes());
    out.extend_from_slice(&MAX_PACKET_SIZE.to_le_bytes());
    out.push(charset);
    out.extend_from_slice(&[0; 19]);
    out.extend_from_slice(&ext_caps.unwrap_or(0).to_le_bytes());
    out
}

/// The HandshakeResponse41 sent upstream, the token as the cleartext password.
pub(crate) fn handshake_response(
    caps: u32,
    response: &Response,
    ext_caps: Option<u32>,
    user: &str,
    token: &[u8],
) -> Vec<u8> {
    let mut out = response_head(caps, response.charset, ext_caps);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    // `mysql_clear_password` sends the password NUL-terminated.
    put_lenenc(&mut out, token.len() + 1);
    out.extend_from_slice(token);
    out.push(0);
    if caps & CLIENT_CONNECT_WITH_DB != 0 {
        out.extend_from_slice(response.database.as_deref().unwrap_or("").as_bytes());
        out.push(0);
    }
    out.extend_from_slice(CLEAR_PASSWORD.as_bytes());
    out.push(0);
    if caps & CLIENT_CONNECT_ATTRS != 0 {
        match &response.attributes {
            Some(attributes) => out.extend_from_slice(attributes),
            None => out.push(0),
        }
    }
    out
}

/// An ERR packet's payload (protocol 4.1: with the SQLSTATE).
pub(crate) fn err_payload(code: u16, sqlstate: &str, message: &str) -> Vec<u8> {
    let mut out = vec![0xff];
    out.extend_from_slice(&code.to_le_bytes());
    out.push(b'#');
    out.extend_from_slice(&sqlstate.as_bytes()[..5]);
    out.extend_from_slice(message.as_bytes());
    out
}

fn parse_err(payload: &[u8]) -> ServerError {
    let code = payload
        .get(1..3)
        .map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
    let text = match payload.get(3) {
        Some(b'#') => payload.get(9..).unwrap_or_default(),
        _ => payload.get(3..).unwrap_or_default(),
    };
    ServerError {
        code: ServerCode::MySql(code),
        message: String::from_utf8_lossy(text).into_owned(),
    }
}

async fn write_packet(
    stream: &mut (impl AsyncWrite + Unpin),
    seq: u8,
    payload: &[u8],
) -> io::Result<()> {
    let length = payload.len() as u32;
    let mut packet = Vec::with_capacity(4 + payload.len());
    packet.extend_from_slice(&length.to_le_bytes()[..3]);
    packet.push(seq);
    packet.extend_from_slice(payload);
    let written = stream.write_all(&packet).await;
    packet.zeroize();
    written
}

/// One packet of the handshake: its sequence id and payload, bounded.
pub(crate) async fn read_packet(
    stream: &mut (impl AsyncRead + Unpin),
) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let length = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    if length > MAX_HANDSHAKE_PACKET {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a handshake packet over 64 KB",
        ));
    }
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).await?;
    Ok((header[3], payload))
}

#[derive(Debug)]
enum WireError {
    NoTls,
    Protocol(&'static str),
    NotIamUser { plugin: String, user: String },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The words the login layer's diagnosis knows for "no TLS".
            WireError::NoTls => f.write_str("server does not support TLS"),
            WireError::Protocol(what) => write!(f, "unexpected answer from the server: {what}"),
            WireError::NotIamUser { plugin, user } => write!(
                f,
                "the server asked for the `{}` plugin, not `mysql_clear_password`: `{}` is not \
                 an IAM user there (MySQL: `CREATE USER '{}' IDENTIFIED WITH \
                 AWSAuthenticationPlugin AS 'RDS'`); no token was sent",
                escaped(plugin),
                escaped(user),
                escaped(user)
            ),
        }
    }
}

impl std::error::Error for WireError {}

/// An upstream TCP connection whose greeting was read.
struct Greeted {
    tcp: TcpStream,
    addr: SocketAddr,
    greeting: Greeting,
}

async fn greeted(login: &Login, shared: &Shared) -> Result<Greeted, Error> {
    let (mut tcp, addr) = upstream::dial(login, shared.dead_peer_timeout()).await?;
    let (_, payload) = read_packet(&mut tcp)
        .await
        .map_err(|e| upstream::failed(login, e))?;
    if payload.first() == Some(&0xff) {
        // Refused before the greeting (too many connections, a blocked host).
        return Err(login.driver_error(parse_err(&payload), false));
    }
    let greeting =
        Greeting::parse(&payload).map_err(|e| upstream::failed(login, WireError::Protocol(e)))?;
    Ok(Greeted {
        tcp,
        addr,
        greeting,
    })
}

/// One login attempt: the greeted connection (a new one for the retry), SSLRequest, TLS,
/// HandshakeResponse41 with the token, an AuthSwitch to the cleartext plugin answered, OK.
async fn attempt(
    login: &Login,
    shared: &Shared,
    first: &Mutex<Option<Greeted>>,
    response: &Response,
    token: IamAuthToken,
) -> Result<(TlsStream<TcpStream>, SocketAddr, Vec<u8>), Error> {
    let taken = first.lock().expect("not poisoned").take();
    let Greeted {
        mut tcp,
        addr,
        greeting,
    } = match taken {
        Some(greeted) => greeted,
        None => greeted(login, shared).await?,
    };
    let io = |e: io::Error| upstream::failed(login, e);
    if greeting.caps() & CLIENT_SSL == 0 {
        return Err(upstream::failed(login, WireError::NoTls));
    }
    let ext = greeting.ext_caps().map(|server| server & response.ext_caps);
    let caps = upstream_caps(
        response.caps,
        greeting.caps(),
        response.database.is_some(),
        false,
    );
    write_packet(&mut tcp, 1, &response_head(caps, response.charset, ext))
        .await
        .map_err(io)?;
    let mut tls = upstream::tls(login, tcp).await?;
    let mut payload = handshake_response(
        caps,
        response,
        ext,
        login.request.user(),
        token.expose().as_bytes(),
    );
    let written = write_packet(&mut tls, 2, &payload).await;
    payload.zeroize();
    written.map_err(io)?;
    let mut switched = false;
    loop {
        let (seq, payload) = read_packet(&mut tls).await.map_err(io)?;
        match payload.first() {
            Some(0x00) => return Ok((tls, addr, payload)),
            Some(0xff) => {
                let server = parse_err(&payload);
                let rejected = matches!(server.code, ServerCode::MySql(1045));
                return Err(login.driver_error(server, rejected));
            }
            Some(0xfe) if !switched => {
                let mut rest = &payload[1..];
                let plugin = take_cstr(&mut rest).unwrap_or(rest);
                if plugin != CLEAR_PASSWORD.as_bytes() {
                    return Err(upstream::failed(
                        login,
                        WireError::NotIamUser {
                            plugin: String::from_utf8_lossy(plugin).into_owned(),
                            user: login.request.user().to_owned(),
                        },
                    ));
                }
                let mut answer = token.expose().as_bytes().to_vec();
                answer.push(0);
                let written = write_packet(&mut tls, seq.wrapping_add(1), &answer).await;
                answer.zeroize();
                written.map_err(io)?;
                switched = true;
            }
            _ => {
                return Err(upstream::failed(
                    login,
                    WireError::Protocol("an authentication message of an unknown kind"),
                ));
            }
        }
    }
}

/// The error code and SQLSTATE a client gets for a failed upstream login.
fn client_code(error: &Error) -> (u16, &'static str) {
    match (error.mysql_error_code(), error.kind()) {
        (Some(1045), _) | (_, ErrorKind::Rejected) => (1045, "28000"),
        (Some(code), _) => (code, "HY000"),
        (None, ErrorKind::InvalidInput) => (1045, "28000"),
        // CR_CONN_HOST_ERROR: what clients say when they cannot reach a server.
        _ => (2003, "HY000"),
    }
}

/// The client's answer to the greeting: its HandshakeResponse41 (read inside TLS when it
/// sent an SSLRequest first), and the sequence number the proxy's next packet takes.
struct ClientResponse {
    parsed: Result<Response, &'static str>,
    /// 2 after a plain response (packet 1), 3 after an SSLRequest and the response inside
    /// TLS (packets 1 and 2).
    reply: u8,
}

/// Reads the client's answer to the greeting. An SSLRequest (the 32-byte head of a response
/// with `CLIENT_SSL`) gets the local TLS handshake, then the response is read inside it; a
/// client asking for TLS the greeting did not offer is closed (not one to guess about).
/// `None`: the client went away, or is closed.
async fn client_response(
    shared: &Shared,
    mut client: Box<dyn ClientIo>,
    peer: &str,
) -> io::Result<Option<(Box<dyn ClientIo>, ClientResponse)>> {
    let (_, payload) = read_packet(&mut client).await?;
    let caps = payload.get(..4).map_or(0, u32_le);
    if caps & CLIENT_SSL == 0 {
        let parsed = Response::parse(&payload);
        return Ok(Some((client, ClientResponse { parsed, reply: 2 })));
    }
    let Some(tls) = &shared.tls else {
        tracing::info!(client = %peer, "refused: the client asked for TLS, not offered");
        return Ok(None);
    };
    if payload.len() != 32 {
        // A whole response with CLIENT_SSL set, in plaintext: not an SSLRequest.
        tracing::info!(client = %peer, "refused: TLS asked for after the handshake response");
        return Ok(None);
    }
    let mut client: Box<dyn ClientIo> = Box::new(tls.acceptor().accept(client).await?);
    let (_, payload) = read_packet(&mut client).await?;
    let parsed = Response::parse(&payload);
    Ok(Some((client, ClientResponse { parsed, reply: 3 })))
}

/// Serves one MySQL client connection.
pub(super) async fn session(shared: Arc<Shared>, mut client: Box<dyn ClientIo>, peer: String) {
    let base = match shared.login_for(shared.pinned_user.as_deref().unwrap_or("proxy_client")) {
        Ok(login) => login,
        Err(error) => {
            tracing::warn!(client = %peer, error = %error.report(), "refused");
            return;
        }
    };
    let timeout = shared.connect_timeout();
    let first = match tokio::time::timeout(timeout, greeted(&base, &shared)).await {
        Ok(Ok(first)) => first,
        Ok(Err(error)) => return refuse(&shared, client, &peer, 0, &error).await,
        Err(_) => {
            tracing::warn!(client = %peer, "the server sent no greeting in time");
            return;
        }
    };
    let greeting = first
        .greeting
        .for_client(shared.allow_local_infile, shared.tls.is_some());
    if write_packet(&mut client, 0, &greeting).await.is_err() {
        return;
    }
    let Ok(Ok(Some((mut client, response)))) =
        tokio::time::timeout(timeout, client_response(&shared, client, &peer)).await
    else {
        return;
    };
    let reply = response.reply;
    let mut response = match response.parsed {
        Ok(response) => response,
        Err(bad) => {
            tracing::info!(client = %peer, "refused: {bad}");
            let _ = write_packet(&mut client, reply, &err_payload(1043, "08S01", bad)).await;
            return;
        }
    };
    if let Some(pinned) = &shared.pinned_user
        && *pinned != response.user
    {
        let message = format!(
            "this proxy logs in as `{}` only: connect with --user={}",
            escaped(pinned),
            escaped(pinned)
        );
        tracing::info!(client = %peer, user = %escaped(&response.user), "refused: {message}");
        let _ = write_packet(&mut client, reply, &err_payload(1045, "28000", &message)).await;
        return;
    }
    let login = match shared.login_for(&response.user) {
        Ok(login) => login,
        Err(error) => return refuse(&shared, client, &peer, reply, &error).await,
    };
    if response.database.is_none() {
        response.database = login.database.clone();
    }
    let database = response.database.clone().unwrap_or_default();
    let user = response.user.clone();
    let started = Instant::now();
    let first = Mutex::new(Some(first));
    let result = login
        .run(&shared.cache, |token| {
            attempt(&login, &shared, &first, &response, token)
        })
        .await;
    let (mut stream, addr, ok) = match result {
        Ok(up) => up,
        Err(error) => {
            if let Some(hook) = &shared.hooks.on_login_failure {
                hook(&super::FailedLogin {
                    user: &user,
                    database: &database,
                    client: &peer,
                    error: &error,
                });
            }
            return refuse(&shared, client, &peer, reply, &error).await;
        }
    };
    tracing::info!(
        client = %peer,
        user = %escaped(&user),
        database = %escaped(&database),
        upstream = %addr,
        login_ms = started.elapsed().as_millis() as u64,
        "proxied connection logged in"
    );
    // The OK continues the client's handshake.
    if write_packet(&mut client, reply, &ok).await.is_err() {
        return;
    }
    match tokio::io::copy_bidirectional(&mut client, &mut stream).await {
        Ok((sent, received)) => tracing::debug!(
            client = %peer,
            bytes_to_server = sent,
            bytes_to_client = received,
            "proxied connection closed"
        ),
        Err(error) => tracing::debug!(client = %peer, %error, "proxied connection ended"),
    }
}

async fn refuse(
    shared: &Shared,
    mut client: Box<dyn ClientIo>,
    peer: &str,
    seq: u8,
    error: &Error,
) {
    tracing::warn!(client = %peer, error = %error.report(), "upstream login failed");
    let (code, state) = client_code(error);
    let message = (shared.hooks.rephrase)(&format!("rds-iam-auth proxy: {error}"));
    let _ = write_packet(&mut client, seq, &err_payload(code, state, &message)).await;
}

/// Answers a client over the connection limit as the server would: ERR 1040 instead of a
/// greeting.
pub(super) async fn refuse_over_limit(mut client: Box<dyn ClientIo>, peer: String, limit: usize) {
    tracing::warn!(client = %peer, limit, "refused: the proxy's connection limit is reached");
    let message = format!("Too many connections (the proxy serves at most {limit} at once)");
    let _ = write_packet(&mut client, 0, &err_payload(1040, "08004", &message)).await;
}

/// Ready-to-paste ways to reach the proxy.
pub(super) fn connection_strings(
    listener: &super::listener::Listener,
    user: &str,
    database: &str,
    tls: bool,
) -> Vec<String> {
    // With local TLS, TLS required (the certificate is self-signed or the user's own: the
    // clients' verification is theirs to turn on); without it, off, so that a client that
    // prefers TLS does not ask the greeting for what it does not offer.
    let (ssl, ssl_mode) = if tls {
        ("--ssl", "REQUIRED")
    } else {
        ("--skip-ssl", "DISABLED")
    };
    if let Some(path) = listener.socket_path() {
        return vec![format!(
            "mysql --socket={} --user={user} {database}",
            path.display()
        )];
    }
    let Some(addr) = listener.local_addr() else {
        return Vec::new();
    };
    let host = match addr {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    };
    vec![
        format!(
            "mysql --host={} --port={} --protocol=TCP {ssl} --user={user} {database}",
            addr.ip(),
            addr.port()
        ),
        format!(
            "jdbc:mysql://{host}:{}/{database}?user={user}&sslMode={ssl_mode}",
            addr.port()
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MariaDB 10.11 greeting as the test server sends it (CLIENT_MYSQL unset).
    fn mariadb_greeting(caps: u32, ext: u32) -> Vec<u8> {
        let mut g = vec![10];
        g.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
        g.extend_from_slice(&77u32.to_le_bytes());
        g.extend_from_slice(b"abcdefgh\0");
        g.extend_from_slice(&(caps as u16).to_le_bytes());
        g.push(45);
        g.extend_from_slice(&2u16.to_le_bytes());
        g.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        g.push(21);
        g.extend_from_slice(&[0; 6]);
        g.extend_from_slice(&ext.to_le_bytes());
        g.extend_from_slice(b"ijklmnopqrst\0");
        g.extend_from_slice(b"mysql_native_password\0");
        g
    }

    #[test]
    fn the_greeting_is_mirrored_minus_tls_compression_and_local_files() {
        let caps = 0xfffe_f7fe | CLIENT_SSL | CLIENT_COMPRESS | CLIENT_LOCAL_FILES;
        let caps = caps & !CLIENT_MYSQL;
        let raw = mariadb_greeting(caps, 0x1d);
        let greeting = Greeting::parse(&raw).unwrap();
        assert_eq!(greeting.version, "5.5.5-10.11.6-MariaDB-0+deb12u1");
        assert_eq!(greeting.connection_id, 77);
        assert_eq!(greeting.caps(), caps);
        assert_eq!(greeting.ext_caps(), Some(0x1d));
        let to_client = Greeting::parse(&greeting.for_client(false, false)).unwrap();
        assert_eq!(
            to_client.caps(),
            caps & !(CLIENT_SSL | CLIENT_COMPRESS | CLIENT_LOCAL_FILES | CLIENT_ZSTD_COMPRESSION)
        );
        // Everything else byte for byte: version, id, scramble, extended caps, plugin.
        assert_eq!(to_client.ext_caps(), Some(0x1d));
        assert_eq!(to_client.connection_id, 77);
        let differing = raw
            .iter()
            .zip(greeting.for_client(false, false))
            .filter(|(a, b)| **a != *b)
            .count();
        assert!(differing <= 4, "{differing}");
        assert!(
            Greeting::parse(&greeting.for_client(true, false))
                .unwrap()
                .caps()
                & CLIENT_LOCAL_FILES
                != 0
        );
        // With local TLS the greeting offers TLS: that of this leg, not the server's.
        let with_tls = Greeting::parse(&greeting.for_client(false, true)).unwrap();
        assert_eq!(with_tls.caps(), to_client.caps() | CLIENT_SSL);
        // MySQL's greeting (CLIENT_MYSQL set) has no extended caps.
        let mysql = Greeting::parse(&mariadb_greeting(caps | CLIENT_MYSQL, 0x1d)).unwrap();
        assert_eq!(mysql.ext_caps(), None);
        assert!(Greeting::parse(&raw[..20]).is_err());
        assert!(Greeting::parse(&[9, 0]).is_err());
    }

    fn client_response(caps: u32, auth: &[u8], db: Option<&str>, attrs: Option<&[u8]>) -> Vec<u8> {
        let mut r = response_head(caps, 33, Some(0x1d));
        r.extend_from_slice(b"iam_user\0");
        if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            put_lenenc(&mut r, auth.len());
        } else {
            r.push(auth.len() as u8);
        }
        r.extend_from_slice(auth);
        if let Some(db) = db {
            r.extend_from_slice(db.as_bytes());
            r.push(0);
        }
        r.extend_from_slice(b"mysql_native_password\0");
        if let Some(attrs) = attrs {
            r.extend_from_slice(attrs);
        }
        r
    }

    #[test]
    fn the_client_response_is_read_and_its_password_dropped() {
        let caps = CLIENT_PROTOCOL_41
            | CLIENT_SECURE_CONNECTION
            | CLIENT_PLUGIN_AUTH
            | CLIENT_CONNECT_WITH_DB
            | CLIENT_CONNECT_ATTRS;
        let attrs = b"\x0a\x04_pid\x041234";
        let raw = client_response(caps, &[7; 20], Some("appdb"), Some(attrs));
        let response = Response::parse(&raw).unwrap();
        assert_eq!(response.user, "iam_user");
        assert_eq!(response.charset, 33);
        assert_eq!(response.ext_caps, 0x1d);
        assert_eq!(response.database.as_deref(), Some("appdb"));
        assert_eq!(response.attributes.as_deref(), Some(&attrs[..]));
        assert!(!format!("{response:?}").contains("\u{7}"));
        // A length-encoded password, no database.
        let lenenc_caps = (caps | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) & !CLIENT_CONNECT_ATTRS;
        let raw = client_response(lenenc_caps & !CLIENT_CONNECT_WITH_DB, &[1; 300], None, None);
        let response = Response::parse(&raw).unwrap();
        assert_eq!(response.database, None);
        // Truncated anywhere: an error, never a panic.
        let raw = client_response(caps, &[7; 20], Some("appdb"), Some(attrs));
        for cut in 0..raw.len() {
            let _ = Response::parse(&raw[..cut]);
        }
        assert!(Response::parse(&raw[..40]).is_err());
    }

    #[test]
    fn the_upstream_response_carries_the_whole_token_and_the_clients_charset() {
        let client_caps =
            CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_LOCAL_FILES | CLIENT_COMPRESS;
        let server_caps = !CLIENT_MYSQL;
        let caps = upstream_caps(client_caps, server_caps, true, false);
        for forced in [
            CLIENT_SSL,
            CLIENT_PLUGIN_AUTH,
            CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
        ] {
            assert_ne!(caps & forced, 0);
        }
        assert_eq!(caps & (CLIENT_LOCAL_FILES | CLIENT_COMPRESS), 0);
        // Flags the client lacks stay off (the wire format after login must agree).
        assert_eq!(caps & CLIENT_CONNECT_ATTRS, 0);
        let response = Response {
            caps: client_caps,
            charset: 224,
            ext_caps: 0,
            user: "iam_user".into(),
            database: Some("appdb".into()),
            attributes: None,
        };
        let token = vec![b'x'; 1500];
        let packet = handshake_response(caps, &response, None, "iam_user", &token);
        assert_eq!(packet[8], 224, "the client's charset");
        let mut rest = &packet[32..];
        assert_eq!(take_cstr(&mut rest), Some(&b"iam_user"[..]));
        let (n, size) = lenenc(rest).unwrap();
        assert_eq!(n, 1501, "the whole token and its NUL, not cut at 255");
        assert_eq!(&rest[size..size + 1500], &token[..]);
        rest = &rest[size + 1501..];
        assert_eq!(take_cstr(&mut rest), Some(&b"appdb"[..]));
        assert_eq!(take_cstr(&mut rest), Some(CLEAR_PASSWORD.as_bytes()));
        assert!(rest.is_empty());
    }

    #[test]
    fn err_packets_round_trip() {
        let e = err_payload(1045, "28000", "Access denied");
        let parsed = parse_err(&e);
        assert_eq!(parsed.code, ServerCode::MySql(1045));
        assert_eq!(parsed.message, "Access denied");
        assert_eq!(lenenc(&[0xfc, 0x01, 0x02]), Some((0x0201, 3)));
        assert_eq!(lenenc(&[0xfb]), None);
        let mut out = Vec::new();
        put_lenenc(&mut out, 70_000);
        assert_eq!(lenenc(&out), Some((70_000, 4)));
    }
}
