//! The data plane: what happens to each client request. Classification, the caller's credential,
//! the controller pools with their health, switchyard's own client to the controllers, the
//! per-request flow that ties them together, the listener every worker thread accepts on, and the
//! connection loop that parks idle clients cheaply between requests.

pub mod classify;
pub mod client_stream;
pub mod credential;
pub mod dns;
pub mod handover;
pub mod idle;
pub mod listener;
pub mod namespaces;
pub mod pools;
pub mod recent;
pub mod request_id;
pub mod service;
pub mod traffic;
pub mod upstream;
