//! CoRE link format (40), RFC 6690, digest §8.8.
