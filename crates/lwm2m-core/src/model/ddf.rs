//! OMA DDF XML loader.
