//! The web board: its JSON API and event stream over real HTTP (`http`), and the page in a
//! real headless Chromium (`browser`), against the in-process harness.

mod browser;
mod http;
