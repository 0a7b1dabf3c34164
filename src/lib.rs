//! zk-states: kazoo's `kazoo.protocol.states` model (ZooKeeper event types,
//! keeper states, kazoo's connection state, the watched event, the znode `Stat`)
//! and its watch/listener dispatch, for C and every language with a C FFI.
//!
//! The core (`status`, `event`, `state`, `stat`, `wire`, `path`, `session`,
//! `dispatch`) has no `unsafe` (the crate denies it): only the `ffi` module,
//! the thin C ABI over the core from which cbindgen generates
//! `include/zk_states.h`; `hint`, the prefetches and the huge-page
//! advice the dispatcher's read-ahead needs; and `simd`, the SSE2 loads that
//! classify a path's bytes for `path::validate`, may use it.
#![allow(non_camel_case_types)]
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod dispatch;
pub mod event;
#[allow(unsafe_code)]
pub mod ffi;
#[allow(unsafe_code)]
mod hint;
pub mod path;
pub mod session;
#[allow(unsafe_code)]
mod simd;
pub mod stat;
pub mod state;
pub mod status;
pub mod wire;

pub use event::{zk_event_type, zk_watched_event, ZK_ZXID_UNKNOWN};
pub use stat::{zk_stat, zk_stat_properties, ZK_STAT_FORMAT_MAX, ZK_STAT_WIRE_SIZE};
pub use state::{zk_kazoo_state, zk_keeper_state};
pub use status::zk_status;
