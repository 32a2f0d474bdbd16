//! The sans-IO Raft consensus core (being written).
