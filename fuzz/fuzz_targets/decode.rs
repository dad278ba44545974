//! Kafka message bytes and an optional key into pipeline's Decoder; the input layout and the
//! properties checked live in `pipeline::decode::fuzz`, where a unit test replays the committed
//! crash inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pipeline::decode::fuzz::check(data));
