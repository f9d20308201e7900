//! Fuzz the safetensors parser and loader: any byte string must give Ok or a typed error, never a
//! panic, an out-of-bounds read or an allocation driven by untrusted sizes.
//!
//!     cargo +nightly fuzz run safetensors_load fuzz/corpus/safetensors_load -- -max_total_time=60
//!
//! The deterministic mutation test in tests/safetensors.rs runs the same checks on stable in CI.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trilemma::io::safetensors::SafeTensors;
use trilemma::Device;

fuzz_target!(|data: &[u8]| {
    if let Ok(st) = SafeTensors::from_bytes("fuzz.safetensors", data.to_vec()) {
        let names: Vec<String> = st.names().map(String::from).collect();
        for name in names {
            let entry = st.entry(&name).expect("listed names resolve").clone();
            assert_eq!(st.bytes_of(&name).expect("listed names resolve").len(), entry.end - entry.start);
            let _ = st.load_any_shape(&name, &Device::Cpu);
        }
    }
});
