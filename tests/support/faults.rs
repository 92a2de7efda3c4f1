//! A loopback TCP proxy that injects one fault per connection: a reset (RST) or a stall once
//! the client has sent a chosen number of bytes, or a half-open peer that accepts and never
//! answers. It records every byte it saw, both ways, so tests can check that no token ever
//! crossed it in clear.
//!
//! Protocol steps are counted in the client's flights (its reads, on loopback): nothing yet is
//! before TLS; after two flights (PostgreSQL's `SSLRequest` or MySQL's SSL request packet, then
//! the TLS ClientHello) is mid-handshake; the password is the first later flight at least as
//! long as the token (no other login message is that long). Byte offsets would not do: a
//! second TLS handshake's ClientHello is shorter (rustls remembers the server's key exchange).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A point in the client's login, in flights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// At accept, before the client sent anything.
    Accept,
    /// After the client's first `n` flights.
    Flights(usize),
    /// After the first flight past the TLS ClientHello (the 2nd) of at least this many bytes.
    FlightOfAtLeast(usize),
}

/// What the proxy does to each new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Forward until `after`, then reset both sides.
    Reset { after: Step },
    /// Forward until `after`, then stop forwarding, both ways, with both sockets kept open.
    Stall { after: Step },
    /// Accept, never read, never answer, never connect upstream.
    HalfOpen,
}

#[derive(Default)]
struct Shared {
    /// Every byte read from either side, in order.
    seen: Mutex<Vec<u8>>,
    accepted: AtomicUsize,
    accept_times: Mutex<Vec<Instant>>,
    tasks: Mutex<Vec<AbortHandle>>,
    /// Bumped by [`FaultProxy::stall_open_connections`]: a connection opened before the bump
    /// forwards nothing more (what a failover or a NAT that dropped idle state looks like).
    stall_epoch: AtomicUsize,
}

pub struct FaultProxy {
    pub port: u16,
    fault: Arc<Mutex<Fault>>,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// A proxy on a free loopback port to `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let fault = Arc::new(Mutex::new(Fault::Pass));
        let shared = Arc::new(Shared::default());
        let (f, s) = (fault.clone(), shared.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                s.accepted.fetch_add(1, Ordering::SeqCst);
                s.accept_times.lock().unwrap().push(Instant::now());
                let fault = *f.lock().unwrap();
                let task = tokio::spawn(serve(client, upstream, fault, s.clone()));
                s.tasks.lock().unwrap().push(task.abort_handle());
            }
        });
        shared.tasks.lock().unwrap().push(accept.abort_handle());
        Self {
            port,
            fault,
            shared,
        }
    }

    /// Every connection open now stops forwarding, both ways, its sockets kept open: the
    /// next bytes either side sends go nowhere. Connections accepted later are not affected.
    pub fn stall_open_connections(&self) {
        self.shared.stall_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The fault for connections accepted from now on.
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// When each connection was accepted, in order.
    pub fn accept_times(&self) -> Vec<Instant> {
        self.shared.accept_times.lock().unwrap().clone()
    }

    /// `true` when `needle` is among the bytes the proxy saw (either direction).
    pub fn saw(&self, needle: &[u8]) -> bool {
        let seen = self.shared.seen.lock().unwrap();
        !needle.is_empty() && seen.windows(needle.len()).any(|w| w == needle)
    }

    pub fn bytes_seen(&self) -> usize {
        self.shared.seen.lock().unwrap().len()
    }
}

impl Drop for FaultProxy {
    /// Closes every connection it holds (stalled and half-open ones included).
    fn drop(&mut self) {
        for task in self.shared.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

async fn serve(mut client: TcpStream, upstream: u16, fault: Fault, shared: Arc<Shared>) {
    let step = match fault {
        Fault::Pass => None,
        Fault::Reset { after } | Fault::Stall { after } => Some(after),
        Fault::HalfOpen => return hold().await,
    };
    if fault
        == (Fault::Reset {
            after: Step::Accept,
        })
    {
        return reset(client);
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let epoch = shared.stall_epoch.load(Ordering::SeqCst);
    let stalled = || shared.stall_epoch.load(Ordering::SeqCst) != epoch;
    let (mut cbuf, mut sbuf) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let mut flights = 0;
    let mut reached = step == Some(Step::Accept);
    while !reached {
        tokio::select! {
            n = client.read(&mut cbuf) => {
                let Ok(n @ 1..) = n else { return };
                if stalled() {
                    break;
                }
                shared.seen.lock().unwrap().extend_from_slice(&cbuf[..n]);
                flights += 1;
                if server.write_all(&cbuf[..n]).await.is_err() {
                    return;
                }
                reached = match step {
                    None | Some(Step::Accept) => false,
                    Some(Step::Flights(k)) => flights >= k,
                    Some(Step::FlightOfAtLeast(len)) => flights > 2 && n >= len,
                };
            }
            n = server.read(&mut sbuf) => {
                let Ok(n @ 1..) = n else { return };
                if stalled() {
                    break;
                }
                shared.seen.lock().unwrap().extend_from_slice(&sbuf[..n]);
                if client.write_all(&sbuf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    match fault {
        _ if stalled() => {
            let _keep = (client, server);
            hold().await
        }
        Fault::Reset { .. } => {
            reset(server);
            reset(client);
        }
        // Both sockets stay open (and silent) while the task lives.
        _ => {
            let _keep = (client, server);
            hold().await
        }
    }
}

/// Closes with RST instead of FIN (`SO_LINGER` 0): what a crashed peer or a middlebox does.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Keeps the task, and the sockets it owns, alive and silent until the proxy is dropped.
async fn hold() {
    tokio::time::sleep(Duration::from_secs(3600)).await;
}
