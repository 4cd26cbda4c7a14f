//! The host's metrics, in a registry of its own (several hosts in one
//! process keep separate counts), served as Prometheus text at
//! `GET /metrics`.
//!
//! Counted as they happen: runs by container and outcome source, run
//! latency by source, runs in flight, refusals (429) by reason, and
//! management-API requests. Read from the executor at each scrape: resident
//! containers, evictions, quarantines, heap bytes, executor threads.

use crate::sandbox::Executor;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RunLabels {
    pub(crate) container: String,
    /// `webtask`, `compiler` or `proxy`, as in `x-wt-response-source`.
    pub(crate) source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SourceLabels {
    pub(crate) source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabels {
    /// `in_flight`, `cpu_budget`, `quarantine` (runs), `writes` (management
    /// writes over the rate limit), `log_subscribers`.
    pub(crate) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    /// `ok` (answered, any status), `refused` (egress policy), `limit`,
    /// `failed` (network, time).
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    /// `sent` (request bodies) or `received` (response bodies).
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ApiLabels {
    /// The standard methods by name, anything else as `OTHER`.
    pub(crate) method: &'static str,
    /// `management`, `run`, `editor`, `other`.
    pub(crate) kind: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 33 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 17,
    ))
}

pub(crate) struct HostMetrics {
    registry: Registry,
    pub(crate) runs: Family<RunLabels, Counter>,
    pub(crate) run_seconds: Family<SourceLabels, Histogram, fn() -> Histogram>,
    pub(crate) in_flight: Gauge,
    pub(crate) rejected: Family<ReasonLabels, Counter>,
    pub(crate) api_requests: Family<ApiLabels, Counter>,
}

impl HostMetrics {
    pub(crate) fn new(executor: Executor) -> Self {
        let mut registry = Registry::with_prefix("extend_host");
        let runs = Family::<RunLabels, Counter>::default();
        registry.register(
            "runs",
            "Runs answered, by container and by what answered (x-wt-response-source)",
            runs.clone(),
        );
        let run_seconds =
            Family::<SourceLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "run_duration_seconds",
            "Time from reading a run's request to its answer, by what answered",
            run_seconds.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "runs_in_flight",
            "Runs admitted and not answered yet",
            in_flight.clone(),
        );
        let rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "rejected",
            "Requests refused with 429, by reason",
            rejected.clone(),
        );
        let api_requests = Family::<ApiLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests received, by method and kind",
            api_requests.clone(),
        );
        registry.register_collector(Box::new(ExecutorCollector(executor)));
        HostMetrics {
            registry,
            runs,
            run_seconds,
            in_flight,
            rejected,
            api_requests,
        }
    }

    /// A run was answered by `source` after `took`.
    pub(crate) fn ran(&self, container: &str, source: crate::error::Source, took: Duration) {
        let source = source.as_str();
        self.runs
            .get_or_create(&RunLabels {
                container: container.to_owned(),
                source,
            })
            .inc();
        self.run_seconds
            .get_or_create(&SourceLabels { source })
            .observe(took.as_secs_f64());
    }

    /// Drops the per-container series of `container`, which holds no
    /// webtask any more, so that deleted containers do not pile up.
    pub(crate) fn forget_container(&self, container: &str) {
        for source in [
            crate::error::Source::Webtask,
            crate::error::Source::Compiler,
            crate::error::Source::Proxy,
        ] {
            self.runs.remove(&RunLabels {
                container: container.to_owned(),
                source: source.as_str(),
            });
        }
    }

    /// Counts a request (in the middleware every request passes).
    pub(crate) fn request(&self, method: &axum::http::Method, kind: &'static str) {
        use axum::http::Method;
        let method = match *method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            Method::PATCH => "PATCH",
            Method::HEAD => "HEAD",
            Method::OPTIONS => "OPTIONS",
            _ => "OTHER",
        };
        self.api_requests
            .get_or_create(&ApiLabels { method, kind })
            .inc();
    }

    /// Counts a run in flight until the guard is dropped (also when the
    /// caller goes away mid-run).
    pub(crate) fn running(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    pub(crate) fn reject(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// The OpenMetrics text of every metric.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A run in flight, see [`HostMetrics::running`].
pub(crate) struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The executor's own counters, read at each scrape.
#[derive(Debug)]
struct ExecutorCollector(Executor);

fn put(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let m = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m)
}

impl Collector for ExecutorCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = self.0.stats();
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        put(
            &mut encoder,
            "resident_containers",
            "Containers with a JavaScript runtime in memory",
            &ConstGauge::new(n(s.resident_containers)),
        )?;
        put(
            &mut encoder,
            "heap_bytes",
            "QuickJS heap bytes of all containers, after their last measured run",
            &ConstGauge::new(i64::try_from(s.heap_bytes).unwrap_or(i64::MAX)),
        )?;
        put(
            &mut encoder,
            "executor_threads",
            "Threads (or worker processes) that take runs",
            &ConstGauge::new(n(s.workers)),
        )?;
        put(
            &mut encoder,
            "executor_busy",
            "Threads (or worker processes) in a run right now",
            &ConstGauge::new(n(s.busy)),
        )?;
        put(
            &mut encoder,
            "evictions",
            "Runtimes dropped to stay under the resident memory limit",
            &ConstCounter::new(s.evictions),
        )?;
        put(
            &mut encoder,
            "quarantines",
            "Containers quarantined for a run stuck past its hard limit",
            &ConstCounter::new(s.quarantines),
        )?;
        put(
            &mut encoder,
            "workers_killed",
            "Worker processes killed for a run past its hard limit",
            &ConstCounter::new(s.killed),
        )?;
        // Extensions' outbound requests: no label per container, so that
        // the series stay few whatever the tenants do.
        let c = &self.0.egress().counters;
        let read = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let mut family = encoder.encode_descriptor(
            "subrequests",
            "Outbound requests (fetch) of extensions, by result",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (result, n) in [
            ("ok", read(&c.ok)),
            ("refused", read(&c.refused)),
            ("limit", read(&c.limited)),
            ("failed", read(&c.failed)),
        ] {
            ConstCounter::new(n).encode(family.encode_family(&ResultLabels { result })?)?;
        }
        let mut family = encoder.encode_descriptor(
            "egress_bytes",
            "Body bytes of extensions' outbound requests, by direction",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (direction, n) in [
            ("sent", read(&c.sent_bytes)),
            ("received", read(&c.received_bytes)),
        ] {
            ConstCounter::new(n).encode(family.encode_family(&DirectionLabels { direction })?)?;
        }
        Ok(())
    }
}
