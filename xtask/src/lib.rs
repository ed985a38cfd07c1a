//! Project automation (`cargo xtask <task>`). The code generator is a library so that the
//! protocol crate's tests can run it in memory.

pub mod codegen;
