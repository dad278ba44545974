//! The harness's allocator: mimalloc, as the product ships it, counting the bytes it hands out
//! once counting is switched on (the memory phase). Each owner's drop then shows as heap bytes
//! freed, beside the pages the RSS gives back: the difference is the allocator's rounding and
//! the fragmentation a drop leaves behind. Off, the cost is one relaxed load per call.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

use mimalloc::MiMalloc;

static ON: AtomicBool = AtomicBool::new(false);
/// Bytes asked for minus bytes freed since counting started (negative when more was freed of
/// what was allocated before it: only differences between two reads mean anything).
static LIVE: AtomicI64 = AtomicI64::new(0);

/// Mimalloc with an optional count of the bytes held.
pub struct Counting;

fn add(bytes: usize) {
    if ON.load(Relaxed) {
        LIVE.fetch_add(bytes as i64, Relaxed);
    }
}

fn sub(bytes: usize) {
    if ON.load(Relaxed) {
        LIVE.fetch_sub(bytes as i64, Relaxed);
    }
}

// SAFETY: every call is forwarded to mimalloc unchanged; the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as is.
        let p = unsafe { MiMalloc.alloc(layout) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        sub(layout.size());
        // SAFETY: as above.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            sub(layout.size());
            add(new_size);
        }
        p
    }
}

/// Starts counting (from here on, allocations and frees move [`live`]).
pub fn count() {
    ON.store(true, Relaxed);
}

/// Bytes held: see [`LIVE`].
pub fn live() -> i64 {
    LIVE.load(Relaxed)
}
