//! Shared SenML logic for SenML JSON and SenML CBOR (digest §8.6).
