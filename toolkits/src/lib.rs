//! Not a library: the package holds the sea-orm examples (`examples/`) and tests (`tests/`) of
//! rds-iam-auth, which keep sea-orm out of the crate's own dependencies.
