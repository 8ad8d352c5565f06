//! What the in-process tests share beyond the request builders of `kanband_tests::calls`:
//! waiting by condition (with a paused clock or a running one) and the refusal check.

pub(crate) mod clock;
pub(crate) mod keep_alive;
pub(crate) mod refusal;
