//! Operations (placeholder until codegen).
