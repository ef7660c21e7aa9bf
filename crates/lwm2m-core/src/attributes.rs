//! LwM2M attributes (digest §2).
