//! The Grafana dashboard in `deploy/grafana/kanband.json` reads only metrics kanband exports:
//! every `kanband_*` name in its queries (a histogram's `_bucket`, `_sum` and `_count` series
//! under the histogram's name) is in a scrape of a kanband that has done some work.

use std::path::Path;

use kanband_tests::{calls, metrics::scrape, spawn_service};

use crate::serial;

/// Every `kanband_*` metric name in `text`, with a histogram's series suffix taken off.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("kanband_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        names.push(base.to_owned());
    }
    names.sort_unstable();
    names.dedup();
    names
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_exported() {
    let _turn = serial().await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/kanband.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read the dashboard"))
            .expect("the dashboard is JSON");
    let queries: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| target["expr"].as_str().expect("a query").to_owned())
        .collect();
    let wanted = metric_names(&queries.join("\n"));
    assert!(
        wanted.len() >= 15,
        "the dashboard shows the metrics: {wanted:?}"
    );

    let svc = spawn_service().await;
    calls::create(&mut svc.tcp.clone(), "one call").await;
    let exported = scrape(&svc.board.url()).await.names();
    for name in &wanted {
        assert!(
            exported.contains(name),
            "the dashboard queries {name}, which kanband does not export"
        );
    }
}

#[test]
fn names_are_read_from_queries_with_histogram_suffixes_taken_off() {
    let names = metric_names(
        "rate(kanband_a_seconds_bucket[5m]) / kanband_b_total + kanband_a_seconds_count",
    );
    assert_eq!(names, ["kanband_a_seconds", "kanband_b_total"]);
}
