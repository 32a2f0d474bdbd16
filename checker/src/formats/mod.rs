//! Placeholder: filled by the formats work.
