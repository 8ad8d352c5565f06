//! The metrics recorder keeps each histogram sample only until it is folded into its buckets,
//! which kanband does on its own: memory stays flat for as long as nobody scrapes `/metrics`.
//!
//! A test binary of its own, so that its allocator counts only what this test allocates (the
//! one unsafe implementation in kanband's tests: a global allocator must be one).

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
    time::{Duration, Instant},
};

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only the count is added.
#[allow(
    unsafe_code,
    reason = "a global allocator is an unsafe trait; this one only counts"
)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: isize = 1024 * 1024;

#[test]
fn recorded_samples_are_folded_into_buckets_without_a_scrape() {
    kanband::metrics::handle().expect("kanband's recorder is the process's");
    let histogram = metrics::histogram!(kanband::metrics::COMMIT_DURATION);
    histogram.record(0.001);
    let before = LIVE.load(Ordering::Relaxed);
    // Kept as they are, a million samples take about 16 MiB (8-byte samples in the
    // recorder's blocks).
    for _ in 0..1_000_000 {
        histogram.record(0.001);
    }
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        // A sample a round: recording is also when freed blocks are collected.
        histogram.record(0.001);
        let held = LIVE.load(Ordering::Relaxed) - before;
        if held < MIB {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "{held} bytes still held 10 s after a million samples"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
