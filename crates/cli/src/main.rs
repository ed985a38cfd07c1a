//! The `freshet` binary: wires the crates together; no logic of its own.

fn main() {}
