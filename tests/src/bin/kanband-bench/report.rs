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
}

impl Target {
    /// Whether `value` meets the target.
    pub(crate) fn met(self, value: f64) -> bool {
        match self {
            Target::AtLeast(bound) => value >= bound,
            Target::AtMost(bound) => value <= bound,
        }
    }

    fn describe(self) -> String {
        match self {
            Target::AtLeast(bound) => format!(">= {}", number(bound)),
            Target::AtMost(bound) => format!("<= {}", number(bound)),
        }
    }

    fn to_json(self) -> Value {
        match self {
            Target::AtLeast(bound) => json!({ "at_least": bound }),
            Target::AtMost(bound) => json!({ "at_most": bound }),
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
    /// The measured value, or why there is none. Never a made-up number.
    pub(crate) value: Result<f64, String>,
    /// How it was measured and what else was seen.
    pub(crate) notes: String,
    /// Machine-readable extras for `--json` (percentiles, counts).
    pub(crate) details: Map<String, Value>,
    /// Wall time of the whole scenario, set-up included.
    pub(crate) wall: Duration,
}

impl Row {
    /// `pass`, `miss`, or `error`.
    fn verdict(&self) -> &'static str {
        match self.value {
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
            Ok(_) => row.notes.clone(),
            Err(err) => format!("error: {err}"),
        };
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        line(&mut out, &cells, &rest);
    }
    out
}

/// The rows as one JSON object, with where and how they were measured.
pub(crate) fn json(rows: &[Row], target: &str, sizes: &Sizes) -> String {
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut object = json!({
                "scenario": row.scenario,
                "figure": row.figure,
                "unit": row.unit,
                "target": row.target.to_json(),
                "result": row.verdict(),
                "notes": row.notes,
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
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    json!({
        "kanband": target,
        "cpus": cpus,
        "sizes": sizes.to_json(),
        "rows": rows,
    })
    .to_string()
}
