//! What the in-process tests share beyond the request builders of `kanband_tests::calls`:
//! waiting by condition (with a paused clock or a running one), the refusal check, and a full
//! disk, and making tokens.

pub(crate) mod clock;
pub(crate) mod disk;
pub(crate) mod keep_alive;
pub(crate) mod refusal;
pub(crate) mod tokens;
