//! The `keyflow` binary's wiring, as a library so integration tests start exactly what the CLI
//! starts: configuration, `run`, `demo`.

pub mod bench;
pub mod config;
pub mod demo;
pub mod run;

/// The API crate, re-exported for tests (keys, app state).
pub use api;

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
