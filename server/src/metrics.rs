//! Prometheus metrics for `/metrics`: request counts and latencies per route.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

pub struct Metrics {
    started: Instant,
    ref_updates: std::sync::atomic::AtomicU64,
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            ref_updates: Default::default(),
            requests: Mutex::default(),
            latency: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Records one finished request. `route` is the matched route pattern,
    /// never the raw path, so label values stay few and hold no user data.
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        {
            let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            *requests
                .entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
        }
        let secs = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = latency.entry(route.to_string()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// Counts one pushed ref update.
    pub fn count_ref_update(&self) {
        self.ref_updates
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The Prometheus text exposition format.
    pub fn render(&self, users: i64) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP nubo_build_info Nubo version.\n# TYPE nubo_build_info gauge"
        );
        let _ = writeln!(
            out,
            "nubo_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(out, "# HELP nubo_uptime_seconds Seconds since this server started.\n# TYPE nubo_uptime_seconds gauge");
        let _ = writeln!(
            out,
            "nubo_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );
        let _ = writeln!(
            out,
            "# HELP nubo_users Number of user accounts.\n# TYPE nubo_users gauge"
        );
        let _ = writeln!(out, "nubo_users {users}");
        let _ = writeln!(out, "# HELP nubo_git_ref_updates_total Ref updates accepted from pushes.\n# TYPE nubo_git_ref_updates_total counter");
        let _ = writeln!(
            out,
            "nubo_git_ref_updates_total {}",
            self.ref_updates.load(std::sync::atomic::Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP nubo_http_requests_total HTTP requests by method, route and status.\n# TYPE nubo_http_requests_total counter");
        for ((method, route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "nubo_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let _ = writeln!(out, "# HELP nubo_http_request_duration_seconds HTTP request latency by route.\n# TYPE nubo_http_request_duration_seconds histogram");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let route = escape(route);
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "nubo_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "nubo_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "nubo_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "nubo_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_histograms_render() {
        let m = Metrics::default();
        m.record("GET", "/healthz", 200, Duration::from_millis(3));
        m.record("GET", "/healthz", 200, Duration::from_millis(30));
        let text = m.render(2);
        assert!(text.contains(
            "nubo_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "nubo_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.005\"} 1"
        ));
        assert!(text.contains("nubo_http_request_duration_seconds_count{route=\"/healthz\"} 2"));
        assert!(text.contains("nubo_users 2"));
    }
}
