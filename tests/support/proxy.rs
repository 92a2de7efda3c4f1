//! The proxy tests' in-process proxy: built against an endpoint, trusting only the test CA,
//! listening on a free loopback port, served on the test's runtime and stopped within its
//! grace.

use std::net::SocketAddr;
use std::time::Duration;

use rds_iam_auth::proxy::{Listening, Proxy, ProxyBuilder};
use rds_iam_auth::{Endpoint, Engine, TokenCache};
use tokio::sync::oneshot;

use super::iam;

/// A running in-process proxy and the way to stop it.
pub struct Running {
    addr: Option<SocketAddr>,
    /// The local TLS certificate's fingerprint, when it offers local TLS.
    pub fingerprint: Option<String>,
    /// What the proxy prints for clients to connect with.
    pub lines: Vec<String>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("a TCP listener")
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the proxy stops within its grace")
            .unwrap();
    }
}

pub async fn start(listening: Listening) -> Running {
    let (stop, stopped) = oneshot::channel();
    let addr = listening.local_addr();
    let fingerprint = listening.certificate_fingerprint().map(str::to_owned);
    let lines = listening.connection_strings();
    let task = tokio::spawn(listening.serve(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        fingerprint,
        lines,
        stop: Some(stop),
        task,
    }
}

/// A proxy to `endpoint` (signed for its name, dialled where it says), trusting only the
/// test CA, with short timeouts and no retry jitter, listening on a free loopback port.
pub fn builder_to(engine: Engine, cache: TokenCache, endpoint: Endpoint) -> ProxyBuilder {
    Proxy::builder(engine, cache, endpoint)
        .trust(iam::test_trust())
        .connect_timeout(Duration::from_secs(5))
        .retry_jitter(Duration::ZERO)
        .shutdown_grace(Duration::from_secs(2))
        .listen("127.0.0.1:0".parse().unwrap())
}

/// `builder` built, bound and serving.
pub async fn serve(builder: ProxyBuilder) -> Running {
    start(builder.build().unwrap().bind().await.unwrap()).await
}
