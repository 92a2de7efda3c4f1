//! The upstream leg: TCP to the dial address (the endpoint, or its tunnel), then TLS
//! verified against the signing hostname with the crate's trust store.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::{Detail, Error, Result};
use crate::login::Login;
use crate::tls::client_config;

/// Resolves the dial address (at each attempt: DNS changes across a failover) and connects
/// to the first address that answers; returns the stream and the address it went to.
pub(super) async fn dial(login: &Login, dead_peer: Duration) -> Result<(TcpStream, SocketAddr)> {
    let (host, port) = login.endpoint.dial_address();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| Detail::ResolveDialAddress {
            engine: login.engine,
            host: host.to_owned(),
            source,
        })?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                tune(&stream, dead_peer).map_err(|e| login.driver_error(e, false))?;
                return Ok((stream, addr));
            }
            Err(error) => last = error,
        }
    }
    Err(login.driver_error(last, false))
}

/// Connects to `addr` exactly (a cancel goes where its session went).
pub(super) async fn dial_exactly(addr: SocketAddr, dead_peer: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    tune(&stream, dead_peer)?;
    Ok(stream)
}

/// `TCP_NODELAY` (the relay forwards each small message at once) and keepalive probes from
/// half the dead-peer timeout on, three of them a sixth apart, as the connectors do.
pub(super) fn tune(stream: &TcpStream, dead_peer: Duration) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(dead_peer / 2)
        .with_interval(dead_peer / 6)
        .with_retries(3);
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

/// The TLS handshake, verified against the signing hostname (not the dialled address).
pub(super) async fn tls(login: &Login, tcp: TcpStream) -> Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(login.endpoint.host().to_owned())
        .map_err(|e| login.driver_error(e, false))?;
    TlsConnector::from(client_config(&login.trust))
        .connect(name, tcp)
        .await
        .map_err(|e| login.driver_error(e, false))
}

/// The error of a failed attempt that is not about the token.
pub(super) fn failed(
    login: &Login,
    error: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    login.driver_error(error, false)
}
