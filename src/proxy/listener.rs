//! Where clients reach the proxy: a TCP port (loopback unless allowed otherwise) or a Unix
//! socket that nobody else can open, from the moment it exists.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::TcpListener;
#[cfg(unix)]
use tokio::net::UnixListener;

use super::ClientIo;
use crate::engine::Engine;
use crate::error::{Detail, Result};

pub(super) enum Listener {
    Tcp(TcpListener, SocketAddr),
    #[cfg(unix)]
    Unix(UnixListener, PathBuf),
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listener::Tcp(_, addr) => write!(f, "tcp {addr}"),
            #[cfg(unix)]
            Listener::Unix(_, path) => write!(f, "unix {}", path.display()),
        }
    }
}

fn listen_error(what: String, source: io::Error) -> crate::Error {
    Detail::ProxyListen { what, source }.into()
}

impl Listener {
    pub(super) async fn tcp(addr: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| listen_error(addr.to_string(), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| listen_error(addr.to_string(), e))?;
        Ok(Listener::Tcp(listener, local))
    }

    /// Binds `dir/.s.PGSQL.<number>` (libpq's name for a socket directory and port).
    ///
    /// The socket is bound inside a fresh `0700` directory of `dir`, made `0600` there, and
    /// only then renamed to its public name: at no moment can another user open it (a
    /// `chmod` after binding in `dir` would leave a window, and the umask is process-wide).
    #[cfg(unix)]
    pub(super) fn unix(dir: &Path, engine: Engine, number: u16) -> Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let name = match engine {
            Engine::Postgres => format!(".s.PGSQL.{number}"),
            Engine::MySql => format!("mysql-{number}.sock"),
        };
        let path = dir.join(&name);
        let what = || format!("the Unix socket `{}`", path.display());
        let private = dir.join(format!(".rds-iam-proxy-{}-{number}", std::process::id()));
        let _ = std::fs::remove_dir_all(&private);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&private)
            .map_err(|e| listen_error(what(), e))?;
        let staged = private.join(&name);
        let result = (|| {
            let listener = UnixListener::bind(&staged)?;
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
            // A socket left by a proxy that did not shut down cleanly: a live one would
            // answer a connect, a stale file does not.
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another process listens on this socket",
                ));
            }
            std::fs::rename(&staged, &path)?;
            Ok(listener)
        })();
        let _ = std::fs::remove_dir_all(&private);
        let listener = result.map_err(|e| listen_error(what(), e))?;
        Ok(Listener::Unix(listener, path))
    }

    #[cfg(not(unix))]
    pub(super) fn unix(dir: &Path, _: Engine, _: u16) -> Result<Self> {
        Err(listen_error(
            dir.display().to_string(),
            io::Error::new(
                io::ErrorKind::Unsupported,
                "Unix sockets need a Unix system",
            ),
        ))
    }

    pub(super) fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(_, addr) => Some(*addr),
            #[cfg(unix)]
            Listener::Unix(..) => None,
        }
    }

    pub(super) fn socket_path(&self) -> Option<&Path> {
        match self {
            Listener::Tcp(..) => None,
            #[cfg(unix)]
            Listener::Unix(_, path) => Some(path),
        }
    }

    /// The next client, with `TCP_NODELAY` on (the start-up is a few small messages, and
    /// every query after it one more: Nagle would add delays at each).
    pub(super) async fn accept(&self) -> io::Result<(Box<dyn ClientIo>, String)> {
        match self {
            Listener::Tcp(listener, _) => {
                let (stream, peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                Ok((Box::new(stream), peer.to_string()))
            }
            #[cfg(unix)]
            Listener::Unix(listener, path) => {
                let (stream, _) = listener.accept().await?;
                Ok((Box::new(stream), format!("unix:{}", path.display())))
            }
        }
    }

    /// Removes the Unix socket's file at shutdown (a TCP port needs nothing).
    pub(super) fn remove_socket_file(&self) {
        #[cfg(unix)]
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}
