//! Any bytes as a graphite-web answer: each reader of the render client returns a value or
//! an error, and none panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    graphyte::bench_internals::read_render_answers(data);
});
