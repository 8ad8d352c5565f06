//! The rows the scenarios produce, printed as a table or as one JSON object.

use std::{fmt::Write as _, time::Duration};

use serde_json::{Map, Value, json};

use crate::scenarios::Sizes;

/// The target README gives for a figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Target {
    /// The figure must be at least this (throughput).
    AtLeast(f64),
    /// The figure must be at most this (latency, memory, time).
    AtMost(f64),
    /// No target: a reference figure (the status quo).
    Reference,
}

impl Target {
    /// Whether `value` meets the target.
    pub(crate) fn met(self, value: f64) -> bool {
        match self {
            Target::AtLeast(bound) => value >= bound,
            Target::AtMost(bound) => value <= bound,
            Target::Reference => true,
        }
    }

    fn describe(self) -> String {
        match self {
            Target::AtLeast(bound) => format!(">= {}", number(bound)),
            Target::AtMost(bound) => format!("<= {}", number(bound)),
            Target::Reference => "reference".into(),
        }
    }

    fn to_json(self) -> Value {
        match self {
            Target::AtLeast(bound) => json!({ "at_least": bound }),
            Target::AtMost(bound) => json!({ "at_most": bound }),
            Target::Reference => Value::Null,
        }
    }
}

/// One scenario's outcome: its figure, or the error that kept it from being measured.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Scenario name (`create`, `cycle`, ...).
    pub(crate) scenario: &'static str,
    /// What is measured, for people.
    pub(crate) figure: String,
    /// Unit of the value.
    pub(crate) unit: &'static str,
    /// The brief's target.
    pub(crate) target: Target,
    /// The measured value (the median of the runs), or why there is none. Never a made-up
    /// number.
    pub(crate) value: Result<f64, String>,
    /// Every run's value, in run order (one when the row is a single run).
    pub(crate) runs: Vec<f64>,
    /// How it was measured and what else was seen.
    pub(crate) notes: String,
    /// Machine-readable extras for `--json` (percentiles, counts).
    pub(crate) details: Map<String, Value>,
    /// Wall time of the whole scenario, set-up included.
    pub(crate) wall: Duration,
}

impl Row {
    /// The rows of several runs of one scenario as one: the median value (the run that gave
    /// it lends its notes and details), every run's value, and the first failure if any run
    /// failed (a figure is not made from fewer runs than asked).
    pub(crate) fn median_of(runs: Vec<Row>) -> Row {
        let count = runs.len();
        if let Some((n, failed)) = runs.iter().enumerate().find(|(_, row)| row.value.is_err()) {
            let mut failed = failed.clone();
            if count > 1 {
                failed.value = failed
                    .value
                    .map_err(|err| format!("run {} of {count}: {err}", n + 1));
            }
            return failed;
        }
        let values: Vec<f64> = runs
            .iter()
            .filter_map(|row| row.value.clone().ok())
            .collect();
        let mut order: Vec<usize> = (0..count).collect();
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        let wall = runs.iter().map(|row| row.wall).sum();
        let mut median = runs
            .into_iter()
            .nth(order[count / 2])
            .expect("at least one run");
        median.runs = values;
        median.wall = wall;
        median
    }

    /// `min..max` of the runs and the half-range in percent of the median, when there were
    /// several.
    pub(crate) fn spread(&self) -> Option<(f64, f64, f64)> {
        let median = *self.value.as_ref().ok()?;
        if self.runs.len() < 2 {
            return None;
        }
        let min = self.runs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let half = if median == 0.0 {
            0.0
        } else {
            (max - min) / 2.0 / median.abs() * 100.0
        };
        Some((min, max, half))
    }

    fn spread_note(&self) -> String {
        match self.spread() {
            Some((min, max, half)) => format!(
                "median of {} runs ({}), spread {}..{} (+/-{half:.1}%)",
                self.runs.len(),
                self.runs
                    .iter()
                    .map(|v| number(*v))
                    .collect::<Vec<_>>()
                    .join(", "),
                number(min),
                number(max)
            ),
            None => "one run".into(),
        }
    }

    /// `pass`, `miss`, `ref`, or `error`.
    fn verdict(&self) -> &'static str {
        match self.value {
            Ok(_) if self.target == Target::Reference => "ref",
            Ok(value) if self.target.met(value) => "pass",
            Ok(_) => "miss",
            Err(_) => "ERROR",
        }
    }

    /// The row on one line, for progress on stderr.
    pub(crate) fn one_line(&self) -> String {
        match &self.value {
            Ok(value) => format!(
                "{}: {} = {} {} (target {}, {}) in {:.1} s; {}",
                self.scenario,
                self.figure,
                number(*value),
                self.unit,
                self.target.describe(),
                self.verdict(),
                self.wall.as_secs_f64(),
                self.notes
            ),
            Err(err) => format!(
                "{}: {} FAILED after {:.1} s: {err}",
                self.scenario,
                self.figure,
                self.wall.as_secs_f64()
            ),
        }
    }
}

/// A value with precision that suits its size.
fn number(value: f64) -> String {
    if value.abs() >= 1000.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// The rows as a text table; notes (or the error) follow each row's figure.
pub(crate) fn table(rows: &[Row]) -> String {
    let header = ["scenario", "figure", "value", "unit", "target", "result"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            [
                row.scenario.to_owned(),
                row.figure.clone(),
                row.value.as_ref().map(|v| number(*v)).unwrap_or_default(),
                row.unit.to_owned(),
                row.target.describe(),
                row.verdict().to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str], rest: &str| {
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            // Numbers right-aligned, text left-aligned.
            if i == 2 {
                let _ = write!(out, "{cell:>width$}  ");
            } else {
                let _ = write!(out, "{cell:<width$}  ");
            }
        }
        let _ = writeln!(out, "{rest}");
    };
    line(&mut out, &header, "notes");
    for (row, cells) in rows.iter().zip(&cells) {
        let rest = match &row.value {
            Ok(_) => format!("{}; {}", row.spread_note(), row.notes),
            Err(err) => format!("error: {err}"),
        };
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        line(&mut out, &cells, &rest);
    }
    for (name, ratio) in ratios(rows) {
        let _ = writeln!(out, "{name}: {:.1}x", ratio.as_f64().unwrap_or(f64::NAN));
    }
    out
}

/// Figures over each other, for the rows both measured: kanband over the status quo for claim
/// -> complete cycles (`cycle` over `status-quo`) and creates (`create` over the status quo's
/// creates), and cycles on the large database over cycles on the small one (`cycle-large` over
/// `cycle`: the target is "within 20%", which only one invocation's pair can show).
pub(crate) fn ratios(rows: &[Row]) -> Map<String, Value> {
    let value = |name: &str| {
        rows.iter()
            .find(|row| row.scenario == name)
            .and_then(|row| row.value.clone().ok())
    };
    let status_quo = rows.iter().find(|row| row.scenario == "status-quo");
    let quo_creates = status_quo
        .filter(|row| row.value.is_ok())
        .and_then(|row| row.details.get("creates_per_s")?.as_f64());
    let mut ratios = Map::new();
    if let (Some(kanband), Some(quo)) = (value("cycle"), value("status-quo")) {
        ratios.insert(
            "cycles_kanband_over_status_quo".into(),
            json!(kanband / quo),
        );
    }
    if let (Some(kanband), Some(quo)) = (value("create"), quo_creates) {
        ratios.insert(
            "creates_kanband_over_status_quo".into(),
            json!(kanband / quo),
        );
    }
    if let (Some(large), Some(small)) = (value("cycle-large"), value("cycle")) {
        ratios.insert("cycles_large_over_cycles".into(), json!(large / small));
    }
    ratios
}

/// The rows as one JSON object, with where and how they were measured.
pub(crate) fn json(rows_in: &[Row], target: &str, sizes: &Sizes, machine: &Value) -> String {
    let rows: Vec<Value> = rows_in
        .iter()
        .map(|row| {
            let mut object = json!({
                "scenario": row.scenario,
                "figure": row.figure,
                "unit": row.unit,
                "target": row.target.to_json(),
                "result": row.verdict(),
                "notes": row.notes,
                "runs": row.runs,
                "spread": row.spread().map(|(min, max, half)| json!({
                    "min": min, "max": max, "half_range_percent": half
                })),
                "wall_seconds": row.wall.as_secs_f64(),
                "details": row.details,
            });
            match &row.value {
                Ok(value) => object["value"] = json!(value),
                Err(err) => object["error"] = json!(err),
            }
            object
        })
        .collect();
    json!({
        "kanband": target,
        "machine": machine,
        "sizes": sizes.to_json(),
        "rows": rows,
        "ratios": ratios(rows_in),
    })
    .to_string()
}
