//! Scrapes of kanband's `/metrics`, parsed with a real Prometheus text-format parser
//! (`prometheus-parse`), and the values tests read from them.

use prometheus_parse::{Scrape as Parsed, Value};

/// One parsed scrape.
#[derive(Debug)]
pub struct Scrape(Parsed);

/// Scrapes `base/metrics` (`base` is the HTTP listener's `http://host:port`); panics unless
/// the answer is 200 in Prometheus's text format and parses.
pub async fn scrape(base: &str) -> Scrape {
    let response = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), reqwest::StatusCode::OK, "GET /metrics");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("the scrape's body");
    Scrape::parse(&text)
}

impl Scrape {
    /// Parses a text exposition.
    pub fn parse(text: &str) -> Scrape {
        let lines = text.lines().map(|line| Ok(line.to_owned()));
        Scrape(Parsed::parse(lines).expect("a valid Prometheus text exposition"))
    }

    /// The names of every metric in the scrape (a histogram under its own name).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0.samples.iter().map(|s| s.metric.clone()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The sum of the samples of `name` whose labels include `labels`: a counter's or gauge's
    /// value, a histogram's observation count. 0 when there is none.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                Value::Histogram(buckets) => buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map_or(0.0, |b| b.count),
                Value::Summary(_) => panic!("{name} is a summary; kanband exports histograms"),
            })
            .sum()
    }
}
