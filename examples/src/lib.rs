//! Examples that embed the Blyan node crates; see the `examples` targets of this package.
