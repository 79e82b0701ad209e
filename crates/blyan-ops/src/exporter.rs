//! The Prometheus exporter: a recorder for the facade and an HTTP listener
//! that serves its text exposition.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::SystemTime;

use metrics_exporter_prometheus::{
    BuildError, ExporterFuture, Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tokio::runtime::Runtime;

use crate::catalog::{ALL_METRICS, MetricKind};
use crate::error::OpsError;
use crate::metrics_collector;

/// Renders the metrics of a Prometheus recorder; the seed's `get_metrics`.
///
/// Cheap to clone; every clone renders the same recorder.
#[derive(Debug, Clone)]
pub struct MetricsHandle {
    handle: PrometheusHandle,
    listen_addr: Option<SocketAddr>,
}

impl MetricsHandle {
    /// The current metrics in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Where `/metrics` is served, if this handle came from [`install_prometheus`].
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    /// Drains histogram samples into their buckets. [`install_prometheus`]
    /// runs this every few seconds; call it yourself on a recorder from
    /// [`build_recorder`] that lives long and is rendered rarely.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// Creates the exporter's runtime and, in its context, the recorder and the
/// listening socket (`build` binds and spawns the upkeep task, both of which
/// need a runtime context but not a running runtime).
fn bind_exporter(
    builder: PrometheusBuilder,
    listen_addr: SocketAddr,
) -> Result<(Runtime, PrometheusRecorder, ExporterFuture), OpsError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| OpsError::Runtime { source })?;
    let (recorder, exporter) = {
        let _context = runtime.enter();
        builder.build().map_err(|source| match source {
            BuildError::FailedToCreateHTTPListener(reason) => OpsError::MetricsListener {
                addr: listen_addr,
                reason,
            },
            source => OpsError::Exporter { source },
        })?
    };
    Ok((runtime, recorder, exporter))
}

/// A builder with the catalog's histogram buckets.
fn prometheus_builder() -> Result<PrometheusBuilder, OpsError> {
    let mut builder = PrometheusBuilder::new();
    for def in ALL_METRICS
        .iter()
        .filter(|def| def.kind == MetricKind::Histogram)
    {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(def.name.to_owned()), def.buckets)
            .map_err(|source| OpsError::Exporter { source })?;
    }
    Ok(builder)
}

/// Builds a Prometheus recorder with the catalog's buckets, without
/// installing it or serving anything.
///
/// For tests and embedders: record under
/// `metrics::with_local_recorder(&recorder, ..)` (calling
/// [`describe_all`](crate::metrics_collector::describe_all) there first for
/// `# HELP` lines) and read the result with [`MetricsHandle::render`].
pub fn build_recorder() -> Result<(PrometheusRecorder, MetricsHandle), OpsError> {
    let recorder = prometheus_builder()?.build_recorder();
    let handle = MetricsHandle {
        handle: recorder.handle(),
        listen_addr: None,
    };
    Ok((recorder, handle))
}

/// Installs the global Prometheus recorder and serves `GET /metrics` (the
/// listener answers any path with the exposition, and `/health` with `OK`) on
/// `listen_addr` over HTTP/1.1.
///
/// The listener and upkeep run on a dedicated thread with its own
/// single-threaded tokio runtime, so scrapes are answered even when the
/// node's runtime is saturated, and the call works the same inside or outside
/// a runtime. The socket is bound before this returns: an address in use is
/// an error here, not a log line later. Every catalog metric is described
/// and its series created at zero, and `blyan_start_time_seconds` is set.
///
/// # Errors
///
/// [`OpsError::EphemeralMetricsPort`] for port 0 (scrapers need a known
/// port), [`OpsError::Exporter`] when the address cannot be bound,
/// [`OpsError::Runtime`] when the runtime or thread cannot be created,
/// [`OpsError::RecorderAlreadyInstalled`] when a global recorder exists.
pub fn install_prometheus(listen_addr: SocketAddr) -> Result<MetricsHandle, OpsError> {
    if listen_addr.port() == 0 {
        return Err(OpsError::EphemeralMetricsPort { addr: listen_addr });
    }
    let builder = prometheus_builder()?.with_http_listener(listen_addr);

    // The runtime is created, used and dropped on the exporter's own thread:
    // dropping a runtime inside the caller's async context would panic.
    // The thread binds the socket, hands back the recorder, and serves only
    // once the recorder is installed; if installing fails, dropping `start`
    // ends the thread and frees the socket.
    let (ready, built) = mpsc::sync_channel::<Result<PrometheusRecorder, OpsError>>(1);
    let (start, started) = mpsc::channel::<()>();
    thread::Builder::new()
        .name("blyan-metrics".to_owned())
        .spawn(move || {
            let (runtime, exporter) = match bind_exporter(builder, listen_addr) {
                Ok((runtime, recorder, exporter)) => {
                    if ready.send(Ok(recorder)).is_err() {
                        return;
                    }
                    (runtime, exporter)
                }
                Err(error) => {
                    let _ = ready.send(Err(error));
                    return;
                }
            };
            if started.recv().is_err() {
                return;
            }
            if let Err(error) = runtime.block_on(exporter) {
                tracing::error!(%listen_addr, ?error, "metrics exporter stopped");
            }
        })
        .map_err(|source| OpsError::Runtime { source })?;
    let recorder = built.recv().map_err(|_| OpsError::Runtime {
        source: std::io::Error::other("metrics exporter thread ended before binding"),
    })??;
    let handle = MetricsHandle {
        handle: recorder.handle(),
        listen_addr: Some(listen_addr),
    };
    metrics::set_global_recorder(recorder).map_err(|_| OpsError::RecorderAlreadyInstalled)?;
    // The thread is blocked in `recv` (it owns the receiver), so this send
    // cannot fail.
    let _ = start.send(());

    metrics_collector::describe_all();
    metrics_collector::register_all();
    metrics_collector::set_start_time(SystemTime::now());
    tracing::info!(%listen_addr, "serving Prometheus metrics");
    Ok(handle)
}
