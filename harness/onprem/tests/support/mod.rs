//! Helpers shared by the on-premises tests.

pub(crate) mod mocklab;
pub(crate) mod tls_server;
