//! Registration engine (in progress).
