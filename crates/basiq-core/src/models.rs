//! Models (placeholder until codegen).
