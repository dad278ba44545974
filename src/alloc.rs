//! The binaries' allocator settings (both `keyflow` and `keyflow-bench` allocate with mimalloc).

/// How long mimalloc keeps freed memory before it gives the pages back to the system, unless
/// `MIMALLOC_PURGE_DELAY` says otherwise. Its default is one second (jemalloc's ten). A
/// micro-batch's temporaries (decoded events, Arrow columns, rows) are freed about once a
/// second, so at one second the next batch found its pages gone and the kernel faulted and
/// zeroed them again: with ten, the engine bench ran 6-15% faster in four alternated pairs, for
/// 4-6% more RSS at its end (benches/RESULTS.md, 2026-12-07).
pub const PURGE_DELAY_MS: i64 = 10_000;

/// `mi_option_purge_delay`: its place in `mi_option_e` of the mimalloc v3 that
/// libmimalloc-sys 0.1.49 builds (`c_src/mimalloc/v3/include/mimalloc.h`). The crate's own
/// constants still follow v2, where 15 had another name and no constant is exported for it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Applies [`PURGE_DELAY_MS`]; call it first thing in `main`.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's global options, which it reads at each purge; no
        // memory is touched.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS as _) };
    }
}
