//! Built-in object models.
