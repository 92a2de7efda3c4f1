//! Shared test support.
#![allow(dead_code, unreachable_pub)]

pub mod reference;
pub mod vectors;
