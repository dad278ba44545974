//! The `keyflow` binary's wiring, as a library so integration tests start exactly what the CLI
//! starts: configuration, `run`, `demo`.

pub mod alloc;
pub mod config;
pub mod demo;
pub mod import;
pub mod run;

/// The API crate, re-exported for tests (keys, app state).
pub use api;

/// Logs to stderr, filtered by `RUST_LOG` (default: info, the embedded broker's and libSQL's
/// own chatter at warn), coloured only on a terminal. Shared by `keyflow` and `keyflow-bench`.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tansu=warn,libsql=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Resolves on ctrl-c or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: a signal that arrives while the caller is still starting up is kept,
/// and the future then resolves at once (a SIGTERM during start-up used to kill the process
/// with the signal's default action instead of a clean stop).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let (int, term) = streams;
            tokio::select! { _ = wait(int) => {}, _ = wait(term) => {} }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
