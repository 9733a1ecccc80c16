//! Who may publish or play: tokens, signed URLs and rules ([`auth`]), and the HTTP callbacks that
//! an operator's service answers ([`hooks`]). Every protocol's admission calls it before a
//! stream is touched.

pub mod auth;
pub mod hooks;
