//! breakerbox's benchmarks (`benches/`, criterion, against failsafe, recloser,
//! tower-resilience and a mutex breaker), the latency and memory reports and the BENCHMARKS.md
//! writer (`examples/`), and the soak test (`tests/soak.rs`). A workspace member of its own so
//! that the library's examples and tests do not compile the peers and the tooling; nothing here
//! is published. Run it all with `bash benches/report.sh`.
