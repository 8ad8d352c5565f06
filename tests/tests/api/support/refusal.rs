//! The one check for refused requests, used by every bad-input table: the code must be the one
//! expected; the message must name the field (an INVALID_ARGUMENT message starts with
//! `field:`) or the id, and carry no Rust Debug noise; an ABORTED lease refusal must carry the
//! `kanban-lease-lost` and `kanban-current-epoch` trailers.
//!
//! A table is a list of [`Case`]s over the test's own request type; [`run`] sends each and
//! collects every problem, so one run reports all that is wrong at once.

use std::future::Future;

use kanband_tests::calls::lost_reason;
use tonic::{Code, Status};

/// What the `kanban-lease-lost` trailer of an ABORTED refusal must say.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lost {
    /// Present, any reason.
    Any,
    /// This reason.
    Is(&'static str),
}

/// A request and how it must be answered.
#[derive(Debug)]
pub(crate) struct Case<C> {
    /// The RPC and what is wrong, for the failure report.
    pub(crate) what: String,
    /// The request.
    pub(crate) call: C,
    /// The code expected; `Code::Ok` for calls that take no input and must succeed.
    code: Code,
    /// For INVALID_ARGUMENT: the field the message must start with (`"<field>:"`).
    /// For other refusals: a text the message must contain (an id, a path).
    names: String,
    /// For ABORTED lease refusals: the lease-lost trailer.
    lost: Option<Lost>,
}

/// A request refused with INVALID_ARGUMENT naming `field`.
pub(crate) fn invalid<C>(what: impl Into<String>, field: &str, call: C) -> Case<C> {
    refused(what, Code::InvalidArgument, field, call)
}

/// A request refused with NOT_FOUND naming `name`.
pub(crate) fn not_found<C>(what: impl Into<String>, name: &str, call: C) -> Case<C> {
    refused(what, Code::NotFound, name, call)
}

/// A request refused with `code`, the message naming `names`.
pub(crate) fn refused<C>(what: impl Into<String>, code: Code, names: &str, call: C) -> Case<C> {
    Case {
        what: what.into(),
        call,
        code,
        names: names.to_owned(),
        lost: None,
    }
}

/// A holder call refused with ABORTED, the message naming `names`, with the lease-lost trailer.
pub(crate) fn aborted<C>(what: impl Into<String>, names: &str, lost: Lost, call: C) -> Case<C> {
    Case {
        lost: Some(lost),
        ..refused(what, Code::Aborted, names, call)
    }
}

/// A call that takes no input and must succeed.
pub(crate) fn succeeds<C>(what: impl Into<String>, call: C) -> Case<C> {
    refused(what, Code::Ok, "", call)
}

impl<C> Case<C> {
    /// What is wrong with one answer, if anything.
    pub(crate) fn check<T>(&self, result: Result<T, Status>) -> Option<String> {
        let status = match (result, self.code) {
            (Ok(_), Code::Ok) => return None,
            (Ok(_), code) => return Some(format!("{}: accepted, expected {code:?}", self.what)),
            (Err(status), _) => status,
        };
        let problems = problems(&status, self.code, &self.names, self.lost);
        (!problems.is_empty()).then(|| {
            format!(
                "{}: {} (code {:?}, message: {:?})",
                self.what,
                problems.join("; "),
                status.code(),
                status.message()
            )
        })
    }
}

/// What is wrong with a refusal (empty when nothing is).
fn problems(status: &Status, code: Code, names: &str, lost: Option<Lost>) -> Vec<String> {
    let message = status.message();
    let mut problems = Vec::new();
    if status.code() != code {
        problems.push(format!("code {:?}, expected {code:?}", status.code()));
    }
    if code == Code::InvalidArgument {
        if !message.starts_with(&format!("{names}:")) {
            problems.push(format!("message does not start with \"{names}:\""));
        }
    } else if !message.contains(names) {
        problems.push(format!("message does not name {names:?}"));
    }
    for noise in ["Error(", "{ ", "Some(", "None"] {
        if message.contains(noise) {
            problems.push(format!("message has Debug noise {noise:?}"));
        }
    }
    match (lost, lost_reason(status)) {
        (None, _) | (Some(Lost::Any), Some(_)) => {}
        (Some(Lost::Is(want)), Some(got)) if want == got => {}
        (Some(want), got) => problems.push(format!(
            "kanban-lease-lost trailer {got:?}, expected {want:?}"
        )),
    }
    if lost.is_some() && status.metadata().get("kanban-current-epoch").is_none() {
        problems.push("no kanban-current-epoch trailer".to_owned());
    }
    problems
}

/// Sends every case of a table in order with `send` (which owns a clone of the client, so the
/// future borrows nothing) and returns every problem found.
pub(crate) async fn run<C, F, Fut>(table: &[Case<C>], mut send: F) -> Vec<String>
where
    C: Clone,
    F: FnMut(C) -> Fut,
    Fut: Future<Output = Result<(), Status>>,
{
    let mut failures = Vec::new();
    for case in table {
        failures.extend(case.check(send(case.call.clone()).await));
    }
    failures
}

/// Panics with every problem, if there are any.
pub(crate) fn assert_none(failures: &[String], context: &str) {
    assert!(
        failures.is_empty(),
        "{context}: {} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Asserts one call was refused with `code`, its message naming `names`.
pub(crate) fn assert_refused<T>(what: &str, result: Result<T, Status>, code: Code, names: &str) {
    if let Some(problem) = refused(what, code, names, ()).check(result) {
        panic!("{problem}");
    }
}
