//! Any bytes as concatenated batches: the walk must stay in bounds and make progress.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut previous_end = 0usize;
    for item in freshet_records::split_batches(data) {
        let Ok((start, header)) = item else { break };
        assert_eq!(start, previous_end);
        previous_end = start + header.total_len();
        assert!(previous_end <= data.len());
        let _ = freshet_records::validate(&data[start..previous_end]);
    }
});
